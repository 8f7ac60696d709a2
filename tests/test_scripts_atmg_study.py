"""scripts/atmg_study.py: the commands it runs, its table and the steps-at-chance count."""
import json
import math
import sys
from pathlib import Path

import pytest

from hyplib import methods
from hyplib.training.config import parse_set

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import atmg_study  # noqa: E402


def test_every_variant_builds_and_its_command_carries_its_overrides():
    for name, (method, overrides, why) in atmg_study.VARIANTS.items():
        assert why
        methods.get(method, **overrides)  # a bad key or value would raise here
        cmd = atmg_study.train_command(name, 2, Path("run"), Path("data"), Path("cfg.yaml"), ("train.steps=5",))
        sets = parse_set(cmd[cmd.index("--set") + 1:])
        assert sets["method"] == method and sets["seed"] == 2 and sets["train"]["threads"] == 1
        assert sets["data"]["shards"] == str(Path("data") / "train") and sets["train"]["steps"] == 5
        assert sets.get("method_overrides", {}) == overrides
    # The old paper reading is pinned, so a later change of the defaults cannot move its rows.
    assert atmg_study.VARIANTS["paper"][1] == {"variant": "paper", "directions": "text_image", "centroid_weight": 1.0}


def test_steps_at_chance_reads_each_methods_term(tmp_path):
    rows = [{"step": 1, "loss": 9.0, "contrastive_text_image_neg_alpha": 4.2},
            {"step": 2, "loss": 8.0, "contrastive_text_image_neg_alpha": 3.6},
            {"step": 3, "loss": 7.0, "contrastive_text_image_neg_alpha": 3.4}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert atmg_study.steps_at_chance(tmp_path) == 3.0
    assert math.isnan(atmg_study.steps_at_chance(tmp_path, threshold=3.0))
    (tmp_path / "log.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0, "other": 1.0}) + "\n")
    with pytest.raises(ValueError, match="contrastive_text_image"):
        atmg_study.steps_at_chance(tmp_path)


def test_table_mean_and_sample_std():
    runs = [{"retrieval/i2t_R@1": 0.1, "train/steps_at_chance": 10.0, "precision/angle_err_max": 1e-6},
            {"retrieval/i2t_R@1": 0.3, "train/steps_at_chance": float("nan"), "precision/angle_err_max": 3e-6}]
    row = atmg_study.table({"x": runs}).splitlines()[2].split(" | ")
    head = atmg_study.table({"x": runs}).splitlines()[0].split(" | ")
    cell = dict(zip(head, row))
    assert cell["I2T R@1"] == f"0.200 ± {math.sqrt(0.02):.3f}"  # sample std of (0.1, 0.3)
    assert cell["steps at chance"] == "never" and cell["T2I R@1"] == "n/a"
    assert row[-1] == "3.0e-06 |"  # the largest float32 error, not a mean
