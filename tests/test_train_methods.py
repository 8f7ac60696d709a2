"""Every method learns on the generator's quick data through the real entry point ``train()``."""
import math

import pytest
import torch

from hyplib import methods
from hyplib.train import load_trained, train
from hyplib.training.logging import read_log

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
QUICK = ROOT / "config" / "runs" / "quick.yaml"


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from hyplib.data.genconfig import GenConfig
    from hyplib.data.generate import generate_all

    out = tmp_path_factory.mktemp("quickdata")
    generate_all(out, GenConfig.preset("quick", n_train=256, shard_size=128), progress=False, benchmarks=())
    return str(out / "train")


@pytest.mark.slow
@pytest.mark.parametrize("name", methods.names())
def test_loss_falls_and_final_checkpoint_loads(tmp_path, shards, name):
    steps = 30
    summary = train(QUICK, tmp_path, overrides={"method": name, "data.shards": shards, "train.steps": steps,
                                                "train.progress": False, "train.checkpoint_every": 100})
    assert summary["completed"] and summary["steps_done"] == steps
    losses = [r["loss"] for r in read_log(tmp_path / "log.jsonl")]
    assert len(losses) == steps and all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < first - 0.03 * abs(first), f"{name}: loss {first:.3f} -> {last:.3f}"
    stats = (tmp_path / "data_stats.json").read_text()
    assert "records_read" in stats

    model, method, cfg = load_trained(tmp_path / "final.pt")
    assert method.name == name and cfg["method"] == name and not model.training
    images = torch.zeros(2, 3, 32, 32)
    tokens = model.tokenize(["a red square", "a blue circle"])
    with torch.no_grad():
        sim = method.similarity(model.encode_image(images), model.encode_text(tokens), curv=model.curv)
    assert sim.shape == (2, 2) and torch.isfinite(sim).all()


@pytest.mark.slow
def test_method_overrides_reach_the_method(tmp_path, shards):
    fixed = {"curv_init": 0.5, "learn_curv": False}
    train(QUICK, tmp_path, overrides={"method": "meru", "method_overrides": fixed, "data.shards": shards,
                                      "train.steps": 2, "train.progress": False})
    log = read_log(tmp_path / "log.jsonl")
    assert all(r["curv"] == pytest.approx(0.5) for r in log)
    with pytest.raises(ValueError, match="unknown override key"):
        train(QUICK, tmp_path / "bad", overrides={"method": "meru", "method_overrides": {"curvature": 1.0},
                                                  "data.shards": shards})


def test_resnet_tower_trains_through_the_entry_point_and_reloads(tmp_path, shards):
    """``model.vision_tower: resnet`` (a named key among integer ones) passes the config check,
    feeds the loader its image size, and the checkpoint rebuilds the same tower."""
    from open_clip.modified_resnet import ModifiedResNet

    resnet = {"model.vision_tower": "resnet", "model.vision_width": 8, "model.vision_layers": 1,
              "model.vision_heads": 4}
    summary = train(QUICK, tmp_path, overrides={"method": "hycoclip", "data.shards": shards, "train.steps": 2,
                                                "train.progress": False, **resnet})
    assert summary["completed"] and summary["steps_done"] == 2
    model, _, cfg = load_trained(tmp_path / "final.pt")
    assert isinstance(model.visual, ModifiedResNet) and model.image_size == 32
    assert cfg["model"]["vision_tower"] == "resnet"
    with torch.no_grad():
        assert model.encode_image(torch.zeros(3, 3, 32, 32)).shape[0] == 3
