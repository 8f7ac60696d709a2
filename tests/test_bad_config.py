"""Bad configuration values fail with one line naming the key, before any run directory or job
exists (issue 19, part 2): every case of scripts/set_audit.py on the training CLI, and the
workflow's study overrides."""
import importlib.util
from pathlib import Path

import pytest

from hyplib.data import generate_all
from hyplib.data.genconfig import GenConfig

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("set_audit", ROOT / "scripts" / "set_audit.py")
set_audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(set_audit)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    generate_all(out, GenConfig.preset("quick", n_train=64, shard_size=64), progress=False, benchmarks=())
    return out / "train"


@pytest.mark.parametrize("value,key", set_audit.CASES, ids=[c[0] for c in set_audit.CASES])
def test_bad_set_value_is_one_clear_line(value, key, shards, tmp_path):
    assert set_audit.run_case(value, key, shards, tmp_path) == "clear"


def test_audit_values_are_accepted_when_valid(shards, tmp_path):
    """The audit's classifier can tell an accepted value: a valid override trains."""
    assert set_audit.run_case("train.steps=2", "train.steps", shards, tmp_path) == "accepted"


# ----------------------------------------------------------------------------- the workflow
import yaml  # noqa: E402

from hyplib import workflow as wf  # noqa: E402


def _config(name):
    return yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())


QUICK = ["argent-base-s0", "atmg-base-s0", "atmg-c0.1-s0", "atmg-c1-s0", "clip-base-s0", "hycoclip-base-s0",
         "meru-base-s0", "meru-boxes-s0", "meru-c0.1-s0", "meru-c1-s0", "phyclip-base-s0", "phyclip-linf-s0"]
PAPER = ["argent-base-s0", "atmg-base-s0", "atmg-c0.1-s0", "atmg-c0.5-s0", "atmg-c1-s0", "atmg-c2-s0",
         "clip-base-s0", "clip-boxes-s0", "hycoclip-base-s0", "meru-base-s0", "meru-boxes-s0", "meru-c0.1-s0",
         "meru-c0.5-s0", "meru-c1-s0", "meru-c2-s0", "phyclip-base-s0", "phyclip-k1-s0", "phyclip-l2-s0",
         "phyclip-linf-s0"]
DEFAULT = sorted([f"{m}-base-s{s}" for m in ("clip", "meru", "hycoclip", "atmg", "argent", "phyclip")
                  for s in (0, 1, 2)] + [f"{m}-c{c}-s0" for m in ("meru", "atmg") for c in ("0.1", "2")]
                 + ["phyclip-k1-s0", "phyclip-linf-s0"])


@pytest.mark.parametrize("name,expected", [("quick", QUICK), ("default", DEFAULT), ("long", DEFAULT), ("paper", PAPER)])
def test_every_shipped_config_plans_exactly_what_it_lists(name, expected):
    runs = wf.plan_runs(_config(name))
    assert sorted(r["name"] for r in runs) == expected
    assert len(runs) == {"quick": 12, "default": 24, "long": 24, "paper": 19}[name]


def test_long_is_the_default_at_600_steps_in_its_own_results_dir():
    """config/long.yaml must not drift from the default: only its run configuration (600 steps)
    and its results folder differ, in the workflow file and in the run file."""
    default, long = _config("default"), _config("long")
    assert long.pop("results_dir") == "results_long" and "results_dir" not in default
    assert long["train"].pop("run_config") == "config/runs/long.yaml"
    assert default["train"].pop("run_config") == "config/runs/default.yaml"
    assert long == default
    runs = {n: yaml.safe_load((ROOT / "config" / "runs" / f"{n}.yaml").read_text()) for n in ("default", "long")}
    assert (runs["default"]["train"].pop("steps"), runs["long"]["train"].pop("steps")) == (300, 600)
    assert (runs["default"].pop("name"), runs["long"].pop("name")) == ("default", "long")
    assert runs["long"] == runs["default"]


def test_a_config_without_studies_plans_only_its_methods_and_seeds():
    cfg = _config("quick")
    cfg["studies"] = {}
    assert sorted(r["name"] for r in wf.plan_runs(cfg)) == sorted(f"{m}-base-s0" for m in cfg["methods"])


def _variant(overrides):
    return lambda c: c["studies"]["phyclip_ablation"]["variants"].update(bad=overrides)


@pytest.mark.parametrize("mutate,words", [
    (_variant({"hwo": "linf"}), ["studies.phyclip_ablation.variants.bad", "phyclip-bad-s0", "hwo"]),
    (_variant({"k": 0}), ["studies.phyclip_ablation.variants.bad", "k = 0", "integer >= 1"]),
    (_variant({"how": "l3"}), ["studies.phyclip_ablation.variants.bad", "'l3'", "valid"]),
    (_variant({"curv_init": -1.0}), ["studies.phyclip_ablation.variants.bad", "curv_init = -1.0"]),
    (_variant({"train.steps": 0}), ["studies.phyclip_ablation.variants.bad", "train.steps", "positive integer"]),
    (lambda c: c["studies"]["boxes"].update(overrides={"use_boxs": True}), ["studies.boxes.overrides", "use_boxs"]),
    (lambda c: c["studies"]["curvature"].update(methods=["clip"]), ["studies.curvature", "clip-c0.1-s0", "curv_init"]),
])
def test_bad_study_override_stops_the_plan_naming_the_key(mutate, words):
    cfg = _config("quick")
    mutate(cfg)
    with pytest.raises(ValueError) as err:
        wf.check_config(cfg)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message
