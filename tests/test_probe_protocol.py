"""scripts/probe_protocol.py: both probes of a trained run, on the workflow's own features."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import probe_protocol  # noqa: E402


@pytest.mark.slow
def test_rows_hold_the_fixed_and_the_searched_probe_of_each_run(tmp_path, capsys):
    from hyplib.data import generate_all
    from hyplib.data.genconfig import GenConfig
    from hyplib.evaluation import _common as C
    from hyplib.evaluation.driver import load_model
    from hyplib.evaluation.probe import linear_probe
    from hyplib.train import train

    generate_all(tmp_path, GenConfig.preset("quick", n_train=64, shard_size=32, zeroshot_per_class=5),
                 progress=False, benchmarks=("zeroshot",))
    run = tmp_path / "run"
    train(ROOT / "config/runs/quick.yaml", run, overrides={"method": "meru", "data.shards": str(tmp_path / "train"),
                                                          "train.steps": 2, "train.batch_size": 8,
                                                          "train.progress": False})
    out = tmp_path / "rows.jsonl"
    assert probe_protocol.main([str(run), "--bench", str(tmp_path / "bench"), "--out", str(out)]) == 0
    row = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out.strip()) == row
    assert (row["run"], row["method"], row["seed"]) == (str(run), "meru", 0)

    bench = np.load(tmp_path / "bench" / "zeroshot.npz", allow_pickle=True)
    feats = C.image_features(load_model(run)[0], bench["images"]).numpy()
    fixed, searched = (linear_probe(feats, bench["labels"], cost=c) for c in (1.0, "sweep"))
    assert row["fixed"] == round(fixed["acc"], 4) and row["sweep"] == round(searched["acc"], 4)
    assert row["cost"] == searched["cost"] and row["fixed_s"] >= 0 and row["sweep_s"] >= 0


def test_a_missing_benchmark_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no zero-shot benchmark at .*zeroshot.npz"):
        probe_protocol.compare(tmp_path / "run", tmp_path / "bench")
