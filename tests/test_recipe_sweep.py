"""scripts/recipe_sweep.py: the grid is checked, runs are planned in grid order, a run trains and
evaluates through the workflow's own code, and a rerun skips the rows already written."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import recipe_sweep as sweep  # noqa: E402


def write_grid(tmp_path, grid: dict) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


GRID = {"methods": ["clip", "meru"], "seeds": [0, 1],
        "datasets": {"a": {"caption_colour": 0.1}, "b": {"n_train": 300}},
        "recipes": {"first": {"data": "a", "set": {"train.steps": 3}},
                    "second": {"data": "b", "methods": ["meru", "atmg"]}}}


def test_committed_grid_loads_and_every_recipe_names_a_dataset():
    grid = sweep.load_grid(ROOT / "config/studies/recipe_sweep.yaml")
    assert "base" in grid["recipes"]
    jobs = sweep.plan(grid, None, None, None)
    assert {j["data"] for j in jobs} <= set(grid["datasets"])


def test_plan_keeps_grid_order_and_intersects_recipe_methods(tmp_path):
    grid = sweep.load_grid(write_grid(tmp_path, GRID))
    jobs = sweep.plan(grid, None, None, None)
    assert [(j["recipe"], j["method"], j["seed"]) for j in jobs] == [
        ("first", "clip", 0), ("first", "meru", 0), ("first", "clip", 1), ("first", "meru", 1),
        ("second", "meru", 0), ("second", "atmg", 0), ("second", "meru", 1), ("second", "atmg", 1)]
    assert jobs[0]["set"] == {"train.steps": 3} and jobs[-1]["set"] == {}
    only = sweep.plan(grid, ["second"], ["clip", "meru"], [5])
    assert [(j["recipe"], j["method"], j["seed"]) for j in only] == [("second", "meru", 5)]


@pytest.mark.parametrize("bad, message", [
    ({"recipes": {"r": {"data": "missing"}}}, "names dataset 'missing'"),
    ({"recipes": {"r": {"data": "a", "steps": 3}}}, "unknown keys"),
    ({"datasets": {}}, "'datasets' must be a non-empty mapping"),
])
def test_bad_grid_names_the_offending_key(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        sweep.load_grid(write_grid(tmp_path, {**GRID, **bad}))


def test_unknown_recipe_is_named(tmp_path):
    grid = sweep.load_grid(write_grid(tmp_path, GRID))
    with pytest.raises(ValueError, match="unknown recipe"):
        sweep.plan(grid, ["third"], None, None)


@pytest.mark.slow
def test_sweep_trains_evaluates_and_resumes(tmp_path):
    grid = write_grid(tmp_path, {"methods": ["clip"], "seeds": [0],
                                 "datasets": {"tiny": {"n_train": 400}},
                                 "recipes": {"r": {"data": "tiny",
                                                   "set": {"train.steps": 3, "train.batch_size": 16,
                                                           "train.checkpoint_every": 3}}}})
    out, work = tmp_path / "rows.jsonl", tmp_path / "work"
    args = ["--grid", str(grid), "--out", str(out), "--work", str(work), "--jobs", "1"]
    assert sweep.main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["recipe"] == "r" and rows[0]["method"] == "clip"
    assert 0.0 <= rows[0]["zeroshot"] <= 1.0 and 0.0 <= rows[0]["probe"] <= 1.0 and rows[0]["tie"] >= 0.0
    assert json.loads((work / "runs/r-clip-s0/log.jsonl").read_text().splitlines()[-1])["step"] == 3
    assert sweep.main(args) == 0  # nothing left to run: the row is not written twice
    assert len(out.read_text().splitlines()) == 1
