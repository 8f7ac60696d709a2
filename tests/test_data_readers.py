"""Real-data readers on tiny fixtures written here; the registry's error messages."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from hyplib.data import dataset_names, load_benchmark, read_dataset, save_benchmark, write_benchmark
from hyplib.data.shards import write_shard


def _img(path, colour, size=(48, 36)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def test_registry_lists_valid_names():
    expected = {"cc3m", "redcaps", "grit", "imagenet", "coco", "flickr30k", "sugarcrepe", "hierarcaps"}
    assert expected <= set(dataset_names())
    with pytest.raises(ValueError, match="unknown dataset 'laion'.*valid.*coco"):
        read_dataset("laion", "/x")


def test_caption_and_grit_shards(tmp_path):
    jpg = _img(tmp_path / "a.jpg", (200, 0, 0), (100, 50)).read_bytes()
    cc = [{"__key__": "000", "jpg": jpg, "txt": b"a red thing"},
          {"__key__": "001", "jpg": jpg, "json": json.dumps({"caption": "red again"}).encode()},
          {"__key__": "002", "jpg": b"broken", "txt": b"x"}]
    write_shard(tmp_path / "cc" / "cc-000.tar", cc)
    got = list(read_dataset("cc3m", tmp_path / "cc"))
    assert [s.caption for s in got] == ["a red thing", "red again"] and got[0].image.size == (100, 50)
    meta = {"caption": "a dog on a sofa", "noun_chunks": [[0, 5, 0.1, 0.2, 0.5, 1.0, 0.9]],
            "ref_exps": [[0, 15, 0.0, 0.0, 1.0, 1.0, 0.8]]}
    write_shard(tmp_path / "grit" / "g.tar", [{"__key__": "g0", "jpg": jpg, "json": json.dumps(meta).encode()}])
    s, = read_dataset("grit", tmp_path / "grit")
    assert [b["phrase"] for b in s.boxes] == ["a dog", "a dog on a sofa"]
    assert s.boxes[0]["box"] == pytest.approx([10, 10, 50, 50])


def test_imagenet_folders(tmp_path):
    _img(tmp_path / "in" / "n01440764" / "a.JPEG", (10, 20, 30))
    _img(tmp_path / "in" / "n01443537" / "b.JPEG", (40, 50, 60))
    _img(tmp_path / "in" / "n01443537" / "c.JPEG", (40, 50, 60))
    bench = read_dataset("imagenet", tmp_path / "in", image_size=16)
    assert bench["images"].shape == (3, 16, 16, 3) and bench["labels"].tolist() == [0, 1, 1]
    assert bench["class_ids"][:2] == ["n01440764", "n01443537"] and bench["classnames"][0] == "tench"
    assert len(bench["templates"]) == 80 and all("{}" in t for t in bench["templates"])
    save_benchmark(tmp_path / "bench", "zeroshot", bench)
    assert load_benchmark(tmp_path / "bench", "zeroshot")["labels"].tolist() == [0, 1, 1]
    _img(tmp_path / "in" / "n99999999" / "z.jpg", (0, 0, 0))
    with pytest.raises(ValueError, match="n99999999"):
        read_dataset("imagenet", tmp_path / "in")


def test_coco_and_flickr_retrieval(tmp_path):
    _img(tmp_path / "val2017" / "1.jpg", (1, 1, 1))
    _img(tmp_path / "val2017" / "2.jpg", (2, 2, 2))
    coco = {"images": [{"id": 2, "file_name": "2.jpg"}, {"id": 1, "file_name": "1.jpg"}],
            "annotations": [{"image_id": 1, "caption": "one a"}, {"image_id": 2, "caption": "two a"},
                            {"image_id": 1, "caption": "one b "}]}
    (tmp_path / "captions_val2017.json").write_text(json.dumps(coco))
    bench = read_dataset("coco", tmp_path / "captions_val2017.json", tmp_path / "val2017", image_size=8)
    assert bench["images"].shape == (2, 8, 8, 3)
    assert bench["captions"] == ["one a", "one b", "two a"] and bench["caption_image"].tolist() == [0, 0, 1]
    karpathy = {"images": [{"filename": "1.jpg", "split": "test", "sentences": [{"raw": "s1"}, {"raw": "s2"}]},
                           {"filename": "2.jpg", "split": "train", "sentences": [{"raw": "t"}]}]}
    (tmp_path / "k.json").write_text(json.dumps(karpathy))
    bench = read_dataset("flickr30k", tmp_path / "k.json", tmp_path / "val2017", image_size=8)
    assert len(bench["images"]) == 1 and bench["captions"] == ["s1", "s2"]
    with pytest.raises(ValueError, match="split 'val'"):
        read_dataset("flickr30k", tmp_path / "k.json", tmp_path / "val2017", split="val")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_dataset("coco", tmp_path / "missing.json", tmp_path / "val2017")


def test_sugarcrepe_json(tmp_path):
    _img(tmp_path / "img" / "x.jpg", (5, 5, 5))
    for sub in ("add_obj", "swap_att"):
        (tmp_path / "sc" / f"{sub}.json").parent.mkdir(exist_ok=True)
        (tmp_path / "sc" / f"{sub}.json").write_text(json.dumps(
            {"0": {"filename": "x.jpg", "caption": f"pos {sub}", "negative_caption": f"neg {sub}"}}))
    bench = read_dataset("sugarcrepe", tmp_path / "sc", tmp_path / "img", image_size=8,
                                subsets=("add_obj", "swap_att"))
    assert bench["subsets"] == ["add_obj", "swap_att"] and bench["negatives"] == ["neg add_obj", "neg swap_att"]
    assert bench["heldout"] == [False, False] and bench["images"].shape == (2, 8, 8, 3)
    with pytest.raises(FileNotFoundError, match="add_att"):
        read_dataset("sugarcrepe", tmp_path / "sc", tmp_path / "img")


def test_hierarcaps_csv(tmp_path):
    _img(tmp_path / "img" / "COCO_val2014_000000000001.jpg", (9, 9, 9))
    with open(tmp_path / "h.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "captions", "image_url"])
        w.writerow([0, "bird => blue bird => blue bird on branch => A blue bird sitting on a branch, in autumn",
                    "http://x/val2014/COCO_val2014_000000000001.jpg"])
    bench = read_dataset("hierarcaps", tmp_path / "h.csv", tmp_path / "img", image_size=8)
    assert bench["captions"] == [["bird", "blue bird", "blue bird on branch",
                                  "A blue bird sitting on a branch, in autumn"]]
    assert bench["images"].shape == (1, 8, 8, 3)


def test_benchmark_format_checks(tmp_path):
    with pytest.raises(ValueError, match="lacks required keys"):
        write_benchmark(tmp_path, "retrieval", {"images": np.zeros((1, 2, 2, 3), np.uint8)}, {})
    with pytest.raises(ValueError, match="uint8"):
        write_benchmark(tmp_path, "hierarcaps", {"images": np.zeros((1, 2, 2, 3))}, {"captions": [["a"] * 4]})
    with pytest.raises(FileNotFoundError, match="pep"):
        load_benchmark(tmp_path, "pep")
