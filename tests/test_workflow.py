"""The workflow: its plan, config checks, dry runs of every config, parameter contracts with
the notebooks, and (marked `workflow`) the quick configuration end to end."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import write_real_data_stand_ins

from hyplib import workflow as wf

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def _config(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())


def _snakemake(*args, cwd=ROOT, timeout=600):
    # PATH without the venv's bin/: `make reproduce` must not rely on an activated environment.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if Path(p).resolve() != Path(sys.executable).parent.resolve())
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg", PATH=path)
    return subprocess.run([SNAKEMAKE, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_default_plan_covers_the_issue():
    """The default: 6 methods x 3 seeds, MERU and ATMG at the fixed curvatures claim 3a compares,
    PHyCLIP's k = 1 and linf variants against its main l1 runs (issue 13 trimmed the rest)."""
    runs = {r["name"]: r for r in wf.plan_runs(_config("default"))}
    for method in ("clip", "meru", "hycoclip", "atmg", "argent", "phyclip"):
        assert {f"{method}-base-s{s}" for s in (0, 1, 2)} <= set(runs)
    for method in ("meru", "atmg"):
        for c in ("0.1", "2"):
            run = runs[f"{method}-c{c}-s0"]
            assert run["overrides"] == {"curv_init": float(c), "learn_curv": False}
    assert runs["phyclip-k1-s0"]["overrides"] == {"k": 1}
    assert runs["phyclip-linf-s0"]["overrides"] == {"how": "linf"}
    assert set(runs["phyclip-base-s0"]["study"]) == {"main", "phyclip_ablation"}
    assert len(runs) == 18 + 4 + 2


def test_box_runs_train_first():
    """Training jobs outrank the rest (priority 0), the box methods' (the longest) the others'."""
    runs = {r["name"]: r for r in wf.plan_runs(_config("default"))}
    prio = {name: wf.train_priority(run) for name, run in runs.items()}
    assert {n for n, p in prio.items() if p == 2} == {
        f"{m}-base-s{s}" for m in ("hycoclip", "argent", "phyclip") for s in (0, 1, 2)} | {
        "phyclip-k1-s0", "phyclip-linf-s0"}
    assert {n for n, p in prio.items() if p == 1} == {
        f"{m}-{v}-s0" for m in ("meru", "atmg") for v in ("c0.1", "c2")} | {
        f"{m}-base-s{s}" for m in ("clip", "meru", "atmg") for s in (0, 1, 2)}
    boxes = wf.plan_runs({**_config("quick"), "results_dir": "r"})
    assert wf.train_priority(next(r for r in boxes if r["name"] == "meru-boxes-s0")) == 2


def test_runs_for_figure_selects_by_study_and_method():
    runs = wf.plan_runs(_config("default"))
    curv = wf.runs_for_figure(runs, "curvature_robustness")
    assert {r["method"] for r in curv} == {"meru", "atmg"}
    assert all("curvature" in r["study"] for r in curv) and len(curv) == 4
    assert len(wf.runs_for_figure(runs, "eigen_spectra")) == 18
    with pytest.raises(ValueError, match="unknown figure 'nope'"):
        wf.runs_for_figure(runs, "nope")


def test_duplicate_run_with_other_overrides_is_refused():
    cfg = _config("quick")
    cfg["studies"] = {
        "phyclip_ablation": {"variants": {"boxes": {"how": "l2"}}, "seeds": [0]},
        "boxes": {"methods": ["phyclip"], "seeds": [0], "overrides": {"use_boxes": True}},
    }
    with pytest.raises(ValueError, match="'phyclip-boxes-s0' is planned twice"):
        wf.plan_runs(cfg)


@pytest.mark.parametrize("mutate,key", [
    (lambda c: c["methods"].append("mereu"), "methods[6]"),
    (lambda c: c["studies"]["curvature"]["curvatures"].append(-1.0), "studies.curvature.curvatures[2]"),
    (lambda c: c["studies"]["curvature"]["methods"].append("nope"), "studies.curvature.methods[2]"),
    (lambda c: c["train"].update(run_config="config/runs/missing.yaml"), "train.run_config"),
    (lambda c: c["data"].update(source="real", paths={"imagenet_val": "/nonexistent/val"}), "data.paths.imagenet_val"),
])
def test_check_config_names_the_key(mutate, key):
    cfg = _config("quick")
    mutate(cfg)
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        wf.check_config(cfg)


def test_b64_params_round_trip():
    import base64
    params = {"runs": [{"name": "a", "overrides": {"k": 1}}], "out": "x.pdf"}
    assert yaml.safe_load(base64.b64decode(wf.b64_params(params))) == params


def test_every_notebook_has_one_parameters_cell_without_outputs():
    import nbformat
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for path in notebooks:
        params = wf.notebook_parameters(path)
        assert params, f"{path.name}: empty parameters cell"
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, path.name


@pytest.mark.workflow
@pytest.mark.slow
@pytest.mark.parametrize("config", ["quick", "default", "paper"])
def test_dry_run(config, tmp_path):
    # --forceall: plan every job even where a checkout already holds up-to-date results.
    args = ["-n", "--forceall", "--quiet", "rules", "--configfile", f"config/{config}.yaml"]
    if config == "paper":
        # Real-data paths must exist before any job starts: point them at minimal stand-ins of
        # their kind (a shard, a folder or a file; hyplib.data.real.PATHS) whose contents pass
        # the checks made before any job (JSON top-level keys, csv header, a SugarCrepe subset).
        cfg = _config("paper")
        write_real_data_stand_ins(cfg["data"]["paths"], tmp_path / "data")
        cfg["data"]["root"] = str(tmp_path / "data")
        (tmp_path / "paper.yaml").write_text(yaml.safe_dump(cfg))
        args[-1] = str(tmp_path / "paper.yaml")
    # Every rule's params function runs in a dry run, and with it the notebook-key check.
    out = _snakemake(*args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "train" in out.stdout and "figure" in out.stdout
    # The config file replaces config/default.yaml: exactly its own runs are trained.
    counts = dict(line.split()[:2] for line in out.stdout.splitlines() if len(line.split()) == 2)
    assert int(counts["train"]) == len(wf.plan_runs(_config(config)))


@pytest.mark.workflow
@pytest.mark.slow
def test_results_dir_keeps_two_datasets_apart(tmp_path):
    """results_dir moves every output of the plan and of the rules under it."""
    cfg = _config("quick")
    assert wf.results_dir(cfg) == "results"
    cfg["results_dir"] = "results/clipart/"
    runs = wf.plan_runs(cfg)
    assert runs and all(r["train_dir"].startswith("results/clipart/train/") for r in runs)
    assert all(r["eval_dir"] == f"results/clipart/eval/{r['name']}" for r in runs)
    with pytest.raises(ValueError, match="config key results_dir"):
        wf.check_config({**cfg, "results_dir": "."})
    (tmp_path / "clipart.yaml").write_text(yaml.safe_dump(cfg))
    out = _snakemake("-n", "--forceall", "--configfile", str(tmp_path / "clipart.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    for target in ("results/clipart/data/manifest.json", "results/clipart/tables/claims.md",
                   f"results/clipart/train/{runs[0]['name']}/final.pt", "results/clipart/propositions.json"):
        assert target in out.stdout, target
    assert "results/train/" not in out.stdout and "results/data/" not in out.stdout


@pytest.mark.workflow
@pytest.mark.slow
def test_invalid_config_fails_before_any_job(tmp_path):
    cfg = _config("quick")
    cfg["studies"]["curvature"]["curvatures"] = [0.1, -2.0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = _snakemake("-n", "--configfile", str(bad))
    assert out.returncode != 0
    assert "curvatures" in out.stdout + out.stderr

    cfg = _config("quick")
    cfg["methods"] = ["clip", "hyperclip"]
    bad.write_text(yaml.safe_dump(cfg))
    out = _snakemake("-n", "--configfile", str(bad))
    assert out.returncode != 0 and "hyperclip" in out.stdout + out.stderr


@pytest.mark.workflow
@pytest.mark.slow
def test_quick_end_to_end(tmp_path):
    """The quick configuration from nothing, in a scratch copy of the repository."""
    work = tmp_path / "repo"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".venv", ".git", "results", ".snakemake",
                                                              "__pycache__", "*.egg-info"))
    start = time.perf_counter()
    out = _snakemake("--cores", "2", "--configfile", "config/quick.yaml", cwd=work, timeout=1200)
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    for name in wf.config_figures(_config("quick")):
        assert (work / "results/figures" / f"{name}.pdf").stat().st_size > 0
        assert (work / "results/figures" / f"{name}.png").stat().st_size > 0
    claims = (work / "results/tables/claims.md").read_text()
    assert "holds" in claims.lower()
    assert (work / "results/propositions.json").stat().st_size > 0
    print(f"quick workflow: {elapsed:.0f} s")
    again = _snakemake("-n", "--configfile", "config/quick.yaml", cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_report_caption_covers_every_figure():
    from hyplib.figures import CAPTIONS
    text = (ROOT / "workflow/report/figure.rst").read_text()
    for name in wf.FIGURE_NEEDS:
        assert f'snakemake.wildcards.name == "{name}"' in text
        assert name in CAPTIONS


def test_study_seeds_merge_over_the_default_and_add_only_study_runs():
    """config/studies/study_seeds.yaml, merged over the default as Snakemake merges config files,
    keeps every default run and adds seeds 1 and 2 of the four curvature runs and the two
    PHyCLIP ablations (l1 is the base run, already on three seeds)."""
    from snakemake.utils import update_config

    merged = _config("default")
    update_config(merged, yaml.safe_load((ROOT / "config" / "studies" / "study_seeds.yaml").read_text()))
    default = {r["name"] for r in wf.plan_runs(_config("default"))}
    runs = {r["name"] for r in wf.plan_runs(merged)}
    assert default < runs
    assert runs - default == {f"{m}-{c}-s{s}" for m in ("meru", "atmg") for c in ("c0.1", "c2") for s in (1, 2)} | {
        f"phyclip-{v}-s{s}" for v in ("k1", "linf") for s in (1, 2)}
