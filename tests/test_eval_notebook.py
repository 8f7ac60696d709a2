"""notebooks/05_evaluate.ipynb: committed without outputs, a plain parameters cell, and an
end-to-end papermill run on a tiny checkpoint and benchmark folder."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import committed_parameters

NB = Path(__file__).resolve().parent.parent / "notebooks" / "05_evaluate.ipynb"
TINY = dict(image_size=16, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2, text_width=32,
            text_layers=1, text_heads=2, context_length=16, embed_dim=16)


def test_committed_without_outputs_and_plain_parameters():
    ns = committed_parameters(NB)
    assert {"checkpoint", "bench_dir", "out_json", "out_npz", "device", "seed"} <= set(ns)


@pytest.mark.slow
def test_notebook_runs_end_to_end(tmp_path):
    papermill = pytest.importorskip("papermill")
    from hyplib import methods as M
    from hyplib.data.benchmarks import write_benchmark
    from hyplib.models import build_model

    rng = np.random.default_rng(0)
    bench = tmp_path / "bench"
    write_benchmark(bench, "retrieval", {"images": rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8),
                                         "caption_image": np.arange(4)}, {"captions": ["a", "b", "c", "d"]})
    write_benchmark(bench, "hierarcaps", {"images": rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)},
                    {"captions": [["thing", "cup", "red cup", "a red cup"]] * 2})
    torch.manual_seed(0)
    cfg = {"method": "meru", "method_overrides": {"embed_dim": 16}, "model": dict(TINY), "seed": 4}
    model = build_model(dict(TINY), M.get("meru", embed_dim=16))
    run = tmp_path / "train" / "r"
    run.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": cfg, "step": 1}, run / "final.pt")
    (run / "log.jsonl").write_text(json.dumps({"step": 1, "curv": 1.0, "alphas": {"image": 0.2}}) + "\n")
    out_json, out_npz = tmp_path / "eval" / "metrics.json", tmp_path / "eval" / "embeddings.npz"
    papermill.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                               parameters={"checkpoint": str(run / "final.pt"), "bench_dir": str(bench),
                                           "out_json": str(out_json), "out_npz": str(out_npz)})
    rec = json.loads(out_json.read_text())
    assert rec["seed"] == 4 and rec["config"] == cfg and len(rec["config_hash"]) == 64
    assert "retrieval/i2t_R@1" in rec["metrics"] and "diagnostics/traj/curv/last" in rec["metrics"]
    with np.load(out_npz) as z:
        assert z["radius_image"].shape == (4,) and z["hierarcaps_radius"].shape == (2, 4)
        assert str(z["method"]) == "meru"
    with np.load(out_npz.with_name("figure_inputs.npz")) as z:  # MERU: only the training log's copy
        assert set(z.files) == {"train_log"} and str(z["train_log"]) == (run / "log.jsonl").read_text()
