"""scripts/shape_sweep.py: its look-alike blocks and a tiny end-to-end run."""
import sys
from pathlib import Path

import pytest

from hyplib.data import generate_all
from hyplib.data.genconfig import GenConfig
from hyplib.data.taxonomy import BACKGROUNDS, colours

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import shape_sweep  # noqa: E402


def test_blocks_are_flagged_look_alikes_or_mixed():
    blocks, alike = shape_sweep.make_blocks(8, 6, 0.5, seed=2)
    assert len(blocks) == 8 and all(len(b) == 6 for b in blocks) and 0 < alike.sum() < 8
    for block, flag in zip(blocks, alike):
        captions = [text for _, text in block]
        colour = {next(c for c in colours() if f" {c} " in f" {t} ") for t in captions}
        ground = {next(b for b in BACKGROUNDS.values() if t.endswith(b)) for t in captions}
        if flag:
            assert len(colour) == 1 and len(ground) == 1
            assert not any(w in t for t in captions for w in (" and ", " left of ", " above "))
        else:
            assert len(colour) > 1 or len(ground) > 1


@pytest.mark.slow
def test_tiny_curriculum_run_prints_zero_shot_and_probe(tmp_path, capsys):
    generate_all(tmp_path, GenConfig.preset("quick", zeroshot_per_class=5), progress=False,
                 benchmarks=("zeroshot",))
    assert shape_sweep.main(["--steps", "4", "--block", "32", "--look-alike", "0.5", "--curriculum",
                             "--bench", str(tmp_path / "bench")]) == 0
    out = capsys.readouterr().out
    assert "look-alikes first" in out and out.count("zero-shot") == 4
    assert "linear probe " in out and "(chance 0.033)" in out


import recipe_study  # noqa: E402


def test_recipe_captions_are_the_generators_wording(tmp_path):
    import numpy as np
    generate_all(tmp_path, GenConfig.preset("quick", n_train=64, shard_size=32), progress=False, benchmarks=())
    images, metas = recipe_study.load_pool(str(tmp_path / "train"), str(tmp_path / "pool.npz"))
    again, _ = recipe_study.load_pool("unused: read from the cache", str(tmp_path / "pool.npz"))
    assert images.shape == (64, 32, 32, 3) and (again == images).all()
    rng = np.random.default_rng(0)
    assert all(recipe_study.caption(m, rng, 1.0, 1.0) == m["caption"] for m in metas)
    for m in metas:
        plain = recipe_study.caption(m, rng, 0.0, 0.0)
        assert not set(plain.split()) & set(colours()) and not plain.endswith(BACKGROUNDS[m["background"]])
        assert all(o["label"] in plain for o in m["objects"])


@pytest.mark.slow
def test_tiny_recipe_run_with_the_resnet_tower(tmp_path, capsys):
    generate_all(tmp_path, GenConfig.preset("quick", n_train=64, shard_size=32, zeroshot_per_class=5),
                 progress=False, benchmarks=("zeroshot",))
    assert recipe_study.main(["--steps", "4", "--batch", "16", "--tower", "resnet", "--resnet-width", "8",
                              "--colour", "0.5", "--train", str(tmp_path / "train"), "--cache", "",
                              "--bench", str(tmp_path / "bench")]) == 0
    out = capsys.readouterr().out
    assert out.count("zero-shot") == 4 and '"tower": "resnet"' in out and '"colour": 0.5' in out


def test_recipe_towers_are_explicit_whatever_the_run_config(tmp_path, capsys):
    """``--tower vit8`` builds the first wave's ViT and ``--text-width`` its text tower even though
    config/runs/default.yaml now names the ResNet and a 64-wide text tower."""
    vit = {**recipe_study.tower_config("vit8", 16)}
    assert vit == {"vision_tower": "vit", "vision_width": 96, "vision_layers": 2, "vision_heads": 3, "patch_size": 8}
    generate_all(tmp_path, GenConfig.preset("quick", n_train=64, shard_size=32, zeroshot_per_class=5),
                 progress=False, benchmarks=("zeroshot",))
    assert recipe_study.main(["--steps", "4", "--batch", "8", "--tower", "vit4", "--text-width", "32",
                              "--train", str(tmp_path / "train"), "--cache", "",
                              "--bench", str(tmp_path / "bench")]) == 0
    out = capsys.readouterr().out
    assert '"tower": "vit4"' in out and '"text_width": 32' in out
