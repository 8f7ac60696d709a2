"""notebooks/04_train.ipynb: committed without outputs, plain parameters, a papermill run."""
from pathlib import Path

import pytest
from conftest import committed_parameters

from hyplib.train import split_overrides
from hyplib.training import checkpoint as ckpt
from hyplib.training.logging import read_log

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks" / "04_train.ipynb"
# what workflow/rules/train.smk passes
WORKFLOW_KEYS = {"config", "method", "overrides", "seed", "run_dir", "shards", "device"}


def test_committed_without_outputs_and_plain_parameters():
    ns = committed_parameters(NB)
    assert set(ns) == WORKFLOW_KEYS
    assert isinstance(ns["overrides"], dict)


def test_split_overrides():
    run, method = split_overrides({"train.steps": 5, "curv_init": 0.1, "k": 1, "model.vision_layers": 1})
    assert run == {"train.steps": 5, "model.vision_layers": 1} and method == {"curv_init": 0.1, "k": 1}


@pytest.mark.slow
def test_notebook_trains_and_writes_only_run_dir(tmp_path):
    papermill = pytest.importorskip("papermill")
    from hyplib.data.genconfig import GenConfig
    from hyplib.data.generate import generate_all

    data = tmp_path / "data"
    generate_all(data, GenConfig.preset("quick", n_train=128, shard_size=128), progress=False, benchmarks=())
    run_dir = tmp_path / "runs" / "r"
    papermill.execute_notebook(
        str(NB), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False, cwd=str(ROOT),
        parameters={"config": str(ROOT / "config/runs/quick.yaml"), "method": "hycoclip",
                    "overrides": {"entail_weight": 0.1, "train.steps": 3, "train.progress": False},
                    "run_dir": str(run_dir), "shards": str(data / "train"), "seed": 3, "device": "cpu"})
    final = ckpt.load(run_dir / "final.pt")
    cfg = final["config"]
    assert final["step"] == 3 and cfg["method"] == "hycoclip" and cfg["seed"] == 3
    assert cfg["method_overrides"] == {"entail_weight": 0.1} and cfg["model"]["vision_layers"] == 2
    assert len(read_log(run_dir / "log.jsonl")) == 3
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.yaml", "data_stats.json",
                                                         "final.pt", "log.jsonl"]
