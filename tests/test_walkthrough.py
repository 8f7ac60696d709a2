"""The README's "Your own data" walk-through, run line by line on a tiny fixture: captioned
images and a taxonomy -> shards -> the workflow -> tables. Also the folder converter on its own."""
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hyplib.data import folders
from hyplib.data.benchmarks import load_benchmark
from hyplib.data.shards import iter_records

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {"cat_face": "a cat face", "dog": "a dog", "hammer": "a hammer", "saw": "a saw"}
TAXONOMY = "child,parent,name\nanimals,,\ntools,,\ncat_face,animals,cat face\ndog,animals,\nhammer,tools,\nsaw,tools,\n"


def _image(path: Path, seed: int, fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    path.write_bytes(buf.getvalue())


def build_mydata(root: Path, n_train: int = 48) -> None:
    """The README's layout: train/ and heldout/ captioned images, classes/, taxonomy.csv."""
    names = list(CLASSES)
    for i in range(n_train):
        c = names[i % len(names)]
        _image(root / f"train/{c}/{i:03d}.jpg", i)
        (root / f"train/{c}/{i:03d}.txt").write_text(f"{CLASSES[c]} number {i}\n")
    for i in range(6):
        c = names[i % len(names)]
        _image(root / f"heldout/h{i}.png", 100 + i, "PNG")
        (root / f"heldout/h{i}.txt").write_text(f"{CLASSES[c]}\n\nanother view of {CLASSES[c]} {i}\n")
    for j, c in enumerate(names):
        for k in range(2):
            _image(root / f"classes/{c}/{k}.jpg", 200 + 2 * j + k)
    (root / "taxonomy.csv").write_text(TAXONOMY)


def test_folders_convert_and_count_what_they_skip(tmp_path):
    build_mydata(tmp_path, n_train=5)
    _image(tmp_path / "train/orphan.jpg", 9)                     # no caption file
    _image(tmp_path / "train/blank.jpg", 10)
    (tmp_path / "train/blank.txt").write_text("\n  \n")          # only blank lines
    (tmp_path / "train/lonely.txt").write_text("no image here")  # caption without image
    stats = folders.write_shards(tmp_path / "train", tmp_path / "shards", per_shard=2)
    assert stats["images"] == 5 and stats["shards"] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    assert stats["skipped"] == {"no_caption_file": 1, "empty_caption": 1, "caption_without_image": 1}
    records = list(iter_records(tmp_path / "shards"))
    metas = [json.loads(f["json"]) for _, f in records]
    assert [m["source"] for m in metas] == ["cat_face/000.jpg", "cat_face/004.jpg", "dog/001.jpg", "hammer/002.jpg",
                                            "saw/003.jpg"]
    assert metas[0]["caption"] == "a cat face number 0"
    assert records[0][1]["jpg"] == (tmp_path / "train/cat_face/000.jpg").read_bytes()
    coco = folders.write_coco(tmp_path / "heldout", tmp_path / "caps.json")
    assert coco == {"images": 6, "captions": 12, "skipped": {}}
    data = json.loads((tmp_path / "caps.json").read_text())
    assert data["images"][0] == {"id": 1, "file_name": "h0.png"}
    captions = [a["caption"] for a in data["annotations"] if a["image_id"] == 1]
    assert captions == ["a cat face", "another view of a cat face 0"]
    with pytest.raises(ValueError, match="no captioned images"):
        folders.write_coco(tmp_path / "classes", tmp_path / "x.json")


def _walkthrough_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert block, "README lacks the walk-through block"
    return [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@pytest.mark.workflow
@pytest.mark.slow
def test_readme_walkthrough(tmp_path):
    """Every line of the README block, in a scratch copy of the checkout, with the fixture in mydata/."""
    work = tmp_path / "repo"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".venv", ".git", "results", ".snakemake", "mydata",
                                                              "__pycache__", "*.egg-info"))
    build_mydata(work / "mydata")
    venv_bin = str(Path(sys.executable).parent)
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg", PYTHONPATH=str(work), HYPLIB_ROOT=str(work))
    outputs = []
    for line in _walkthrough_lines():
        cmd = line.replace(".venv/bin/", venv_bin + "/")
        done = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, f"{line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    assert "48 images in 1 shard(s)" in outputs[0] and "6 images, 12 captions" in outputs[1]
    res = work / "results/mydata"
    manifest = json.loads((res / "data/manifest.json").read_text())
    assert manifest["benchmarks"]["zeroshot"] == 8 and manifest["benchmarks"]["retrieval"] == 6
    assert manifest["duplicate_captions"]["retrieval"]["captions"] == 12
    assert "taxonomy" not in manifest["unavailable"] and "composition" in manifest["unavailable"]
    tax = load_benchmark(res / "data/bench", "taxonomy")
    assert tax["leaves"] == sorted(CLASSES)
    for run in ("clip-base-s0", "meru-base-s0"):
        rec = json.loads((res / f"eval/{run}/metrics.json").read_text())
        m = rec["metrics"]
        assert m["zeroshot/chance"] == pytest.approx(0.25)
        for key in ("hierarchy/reference/TIE", "hierarchy/corrected/J", "hierarchy/corrected/P_H",
                    "retrieval/i2t_R@1", "retrieval/captions_distinct"):
            assert key in m, (run, key)
        assert rec["skipped"]["chains"].startswith("not available for this data")
    claims = (res / "tables/claims.md").read_text()
    assert "not available for this data" in claims
    assert not (work / "results/data").exists() and not (work / "results/train").exists()
    assert "CLIP" in outputs[-1] and "claim" in outputs[-1].lower()
