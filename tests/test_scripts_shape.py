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
