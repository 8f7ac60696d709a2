"""Real-data preparation (hyplib.data.real / prepare): tiny fake copies of every dataset in its own
format, prepared once; counts, skipped records, saved benchmarks, the loader on linked shards, the
evaluation's "not available for this data", path errors naming the config key."""
import csv
import io
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hyplib import workflow as wf
from hyplib.data import load_benchmark, make_loader, prepare_data, prepare_real, resolve_data_paths
from hyplib.data.captions import SUBSETS
from hyplib.data.pep_pairs import pep_from_chains
from hyplib.data.shards import write_shard
from hyplib.data.wordnet import imagenet_wnids

ROOT = Path(__file__).resolve().parents[1]
WNIDS = imagenet_wnids()
CHAINS = [["animal", "dog", "brown dog", "a brown dog runs on the grass"],
          ["vehicle", "car", "red car", "a red car parked by a wall"],
          ["food", "fruit", "green apple", "a green apple on a wooden table"]]
PATHS = {"train_shards": "redcaps/*.tar", "grit_shards": "grit", "imagenet_val": "imagenet/val",
         "coco_captions": "coco/annotations/captions_val2017.json", "coco_images": "coco/val2017",
         "flickr_karpathy": "flickr30k/dataset_flickr30k.json", "flickr_images": "flickr30k/images",
         "sugarcrepe": "sugarcrepe", "hierarcaps": "hierarcaps/test.csv",
         "hierarcaps_images": "hierarcaps/images"}


def _jpeg(seed, size=(40, 30)) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
    return path


def _caption_record(key, seed, caption):
    return {"__key__": key, "jpg": _jpeg(seed), "json": json.dumps({"caption": caption}).encode()}


def build_fake_real(root: Path) -> None:
    """One small copy of each dataset, in its reader's format, with known bad items."""
    # Training shards: 11 records, one undecodable image, one broken json -> 9 usable.
    write_shard(root / "redcaps/rc-000.tar", [_caption_record(f"a{i}", i, f"photo {i}") for i in range(5)])
    good = [_caption_record(f"b{i}", 10 + i, f"picture {i}") for i in range(4)]
    bad = [{"__key__": "bad1", "jpg": b"not a jpeg", "txt": b"x"},
           {"__key__": "bad2", "jpg": _jpeg(99), "json": b"{broken"}]
    write_shard(root / "redcaps/rc-001.tar", good + bad)
    # GRIT: 4 records, 3 with a usable box (> 32x32 px on a 64x64 image), one with a tiny one.
    grit = []
    for i in range(4):
        box = [0, 9, 0.1, 0.1, 0.9, 0.9, 0.9] if i < 3 else [0, 9, 0.0, 0.0, 0.2, 0.2, 0.9]
        meta = {"caption": f"a thing {i} on a table", "noun_chunks": [box], "ref_exps": []}
        grit.append({"__key__": f"g{i}", "jpg": _jpeg(20 + i, (64, 64)), "json": json.dumps(meta).encode()})
    write_shard(root / "grit/grit-000.tar", grit)
    # ImageNet: 3 classes x 2 images, plus one corrupt file.
    for c, wnid in enumerate(WNIDS[:3]):
        for j in range(2):
            _write(root / f"imagenet/val/{wnid}/ILSVRC2012_val_{c}{j}.JPEG", _jpeg(30 + 2 * c + j))
    _write(root / f"imagenet/val/{WNIDS[2]}/ILSVRC2012_val_bad.JPEG", b"truncated")
    # COCO: 4 images listed; #3's file missing, #4 has no caption.
    for i in (1, 2):
        _write(root / f"coco/val2017/{i:012d}.jpg", _jpeg(40 + i))
    coco = {"images": [{"id": i, "file_name": f"{i:012d}.jpg"} for i in (1, 2, 3, 4)],
            "annotations": [{"image_id": 1, "caption": "a cat"}, {"image_id": 1, "caption": "a cat asleep"},
                            {"image_id": 2, "caption": "a bus"}, {"image_id": 3, "caption": "gone"}]}
    _write(root / "coco/annotations/captions_val2017.json", json.dumps(coco))
    # Flickr30k Karpathy: two test images, one train image (not read).
    for name in ("f1.jpg", "f2.jpg", "f3.jpg"):
        _write(root / f"flickr30k/images/{name}", _jpeg(len(name) + ord(name[1])))
    karpathy = {"images": [{"filename": "f1.jpg", "split": "test", "sentences": [{"raw": "x"}, {"raw": "y"}]},
                           {"filename": "f2.jpg", "split": "test", "sentences": [{"raw": "z"}]},
                           {"filename": "f3.jpg", "split": "train", "sentences": [{"raw": "w"}]}]}
    _write(root / "flickr30k/dataset_flickr30k.json", json.dumps(karpathy))
    # SugarCrepe: two of the seven subsets; one item without its negative.
    _write(root / "sugarcrepe/add_obj.json", json.dumps({
        "0": {"filename": "000000000001.jpg", "caption": "a cat", "negative_caption": "a cat and a dog"},
        "1": {"filename": "000000000002.jpg", "caption": "a bus", "negative_caption": "a bus and a car"}}))
    _write(root / "sugarcrepe/swap_att.json", json.dumps({
        "0": {"filename": "000000000002.jpg", "caption": "a red bus"},
        "1": {"filename": "000000000001.jpg", "caption": "white cat, black mat",
              "negative_caption": "black cat, white mat"}}))
    # HierarCaps: 3 good rows, one with three levels.
    rows = [[i, " => ".join(c), f"http://x/val2014/h{i}.jpg"] for i, c in enumerate(CHAINS)]
    rows.append([3, "a => b => c", "http://x/val2014/h3.jpg"])
    for i in range(4):
        _write(root / f"hierarcaps/images/h{i}.jpg", _jpeg(60 + i))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "captions", "image_url"])
    writer.writerows(rows)
    _write(root / "hierarcaps/test.csv", buf.getvalue())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    build_fake_real(root / "data")
    out = root / "results" / "data"
    manifest = prepare_data("real", out, root=root / "data", paths=PATHS, image_size=16, seed=0, workers=1,
                            progress=False, size="paper", n_train=0)
    return root, out, manifest


def test_manifest_counts_what_was_written(prepared):
    root, out, m = prepared
    assert m["source"] == "real" and json.loads((out / "manifest.json").read_text()) == m
    assert m["train"]["shards"] == ["train/train-000000.tar", "train/train-000001.tar"]
    assert m["train"]["records"] == 11 and m["train"]["images"] == 9
    assert m["skipped"]["train"] == {"bad_image": 1, "bad_json": 1}
    assert {Path(k).name: v for k, v in m["train"]["skipped_by_shard"].items()} == {
        "rc-001.tar": {"bad_image": 1, "bad_json": 1}}
    assert m["grit"]["images"] == 4 and m["grit"]["with_boxes"] == 3 and m["skipped"]["grit"] == {}
    for name in ("train-000000", "train-000001"):
        link = out / "train" / f"{name}.tar"
        assert link.is_symlink() and link.resolve().parent == (root / "data/redcaps").resolve()
    assert m["benchmarks"] == {"zeroshot": 6, "retrieval": 2, "retrieval_flickr30k": 2, "composition": 3,
                               "hierarcaps": 3, "pep": 3}
    assert m["skipped"]["zeroshot"] == {"bad_image": 1}
    assert m["skipped"]["retrieval"] == {"missing_image": 1, "no_captions": 1}
    assert m["skipped"]["retrieval_flickr30k"] == {}
    assert m["skipped"]["composition"] == {"bad_item": 1}
    assert m["skipped"]["hierarcaps"] == {"bad_row": 1}
    assert m["benchmark_sources"]["composition"]["missing_subsets"] == [s for s in SUBSETS
                                                                        if s not in ("add_obj", "swap_att")]
    assert set(m["unavailable"]) == {"chains"} and m["loader"]["min_box_size"] == 32.0
    # three distinct COCO captions; Flickr's three distinct as well
    assert m["duplicate_captions"]["retrieval"] == {"captions": 3, "distinct": 3, "repeated": 0,
                                                    "shared_across_images": 0, "largest_group": 1}
    assert m["duplicate_captions"]["retrieval_flickr30k"]["distinct"] == 3


def test_saved_benchmarks_load_back(prepared):
    _, out, _ = prepared
    zs = load_benchmark(out / "bench", "zeroshot")
    assert zs["images"].shape == (6, 16, 16, 3) and zs["images"].dtype == np.uint8
    assert zs["labels"].tolist() == [0, 0, 1, 1, 2, 2] and zs["class_ids"] == WNIDS
    ret = load_benchmark(out / "bench", "retrieval")
    assert ret["captions"] == ["a cat", "a cat asleep", "a bus"]
    assert ret["caption_image"].tolist() == [0, 0, 1]
    fl = load_benchmark(out / "bench", "retrieval_flickr30k")
    assert fl["images"].shape == (2, 16, 16, 3) and fl["caption_image"].tolist() == [0, 0, 1]
    comp = load_benchmark(out / "bench", "composition")
    assert comp["subsets"] == ["add_obj", "add_obj", "swap_att"]
    assert comp["negatives"][2] == "black cat, white mat"
    hc = load_benchmark(out / "bench", "hierarcaps")
    assert hc["captions"] == CHAINS and hc["images"].shape == (3, 16, 16, 3)
    pep = load_benchmark(out / "bench", "pep")
    assert pep["texts"] == [t for c in CHAINS for t in c] and pep["pairs"].shape == (len(pep["labels"]), 4)
    types = np.array(pep["pair_types"])
    assert (pep["labels"][types == "caption>image"] == 1).all() and (types == "caption>image").sum() == 12
    assert (types == "generic>specific").sum() == 18 and (pep["labels"][types == "reversed"] == 0).all()
    assert not (out / "bench" / "chains.json").exists()


def test_pep_pairs_point_the_right_way():
    images = np.zeros((3, 4, 4, 3), np.uint8)
    bench, info = pep_from_chains(images, CHAINS, seed=1, cross_per_image=5)
    texts = bench["texts"]
    for (pk, pi, ck, ci), label, kind in zip(bench["pairs"], bench["labels"], bench["pair_types"]):
        if kind == "generic>specific":
            assert pk == ck == 1 and pi // 4 == ci // 4 and pi < ci and label == 1
        if kind == "cross":
            assert pk == 1 and pi % 4 == 3 and label == 0 and (ci if ck == 0 else ci // 4) != pi // 4
    assert info["pair_types"]["cross"] > 0 and texts[3] == CHAINS[0][3]
    # Chains sharing a caption below the root level give no cross pair.
    shared = [["animal", "dog", "a", "b"], ["animal", "dog", "c", "d"]]
    bench, info = pep_from_chains(np.zeros((2, 4, 4, 3), np.uint8), shared, cross_per_image=8)
    assert "cross" not in info["pair_types"]


def test_loader_trains_from_the_linked_shards(prepared):
    _, out, _ = prepared

    def tokenize(texts):
        return torch.tensor([[len(t)] * 4 for t in texts])

    loader = make_loader(out / "train", batch_size=4, image_size=16, tokenize=tokenize, seed=0, epochs=1)
    assert loader.stats["records_indexed"] == 11 and loader.min_box_size == 32.0
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["image"].shape == (4, 3, 16, 16)
    assert batches[0]["text"].shape == (4, 4)
    boxed = next(iter(make_loader(out / "grit", batch_size=4, image_size=16, tokenize=tokenize,
                                  with_boxes=True, seed=0)))
    assert boxed["image_box"].shape == (4, 3, 16, 16) and boxed["has_box"].sum() == 3


def test_sample_grid_from_real_shards(prepared, tmp_path):
    from hyplib.data import preview

    _, out, _ = prepared
    path = preview.save_grid(out / "train", tmp_path / "grid.png", n=16)
    with Image.open(path) as im:  # 9 readable records, 40x30 images -> 4 columns of 192-px tiles
        assert im.size == (4 * (192 + 8), 3 * (192 + 80 + 8))


def test_evaluation_names_what_is_not_available(prepared, tmp_path):
    from test_eval_driver import _model

    from hyplib.evaluation import run_all

    _, out, _ = prepared
    data = tmp_path / "data"
    shutil.copytree(out / "bench", data / "bench", ignore=shutil.ignore_patterns("zeroshot.*"))
    shutil.copy(out / "manifest.json", data / "manifest.json")
    report = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = run_all(_model("meru"), data / "bench", report=report, traversal_images=0)
    assert any("'chains' skipped: not available for this data" in str(w.message) for w in caught)
    assert report["skipped"]["chains"].startswith("not available for this data: chains (needs whole")
    assert "zeroshot" in report["skipped"] and "not available" not in report["skipped"]["zeroshot"]
    for key in ("retrieval/i2t_R@1", "retrieval_flickr30k/t2i_R@1", "pep/auc", "composition/acc",
                "hierarcaps/tau"):
        assert key in metrics, key
    with pytest.raises(FileNotFoundError, match="protocol 'chains': not available for this data"):
        run_all(_model("meru"), data / "bench", protocols=["chains"])


def test_missing_path_names_the_key(tmp_path):
    build_fake_real(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data\.paths\.train_shards: no shards match the pattern "
                                                + str(tmp_path / "nope")):
        prepare_real(tmp_path / "out", root=tmp_path, paths={"train_shards": "nope/*.tar"})
    with pytest.raises(FileNotFoundError, match=r"paths\.imagenet_val: folder .*imagenet/train does not"):
        resolve_data_paths(tmp_path, {"train_shards": "redcaps", "imagenet_val": "imagenet/train"})
    with pytest.raises(FileNotFoundError, match=r"data\.paths\.hierarcaps: file .*hierarcaps is not a file"):
        resolve_data_paths(tmp_path, {"train_shards": "redcaps", "hierarcaps": "hierarcaps"})
    with pytest.raises(ValueError, match=r"paths\.coco_images: not set, but data\.paths\.coco_captions"):
        resolve_data_paths(tmp_path, {"train_shards": "redcaps", "coco_captions": PATHS["coco_captions"]})
    with pytest.raises(ValueError, match=r"data\.paths\.train_shards: not set"):
        resolve_data_paths(tmp_path, {"imagenet_val": "imagenet/val"})
    with pytest.raises(ValueError, match=r"data\.paths\.imagenet: unknown key; valid keys"):
        resolve_data_paths(tmp_path, {"train_shards": "redcaps", "imagenet": "imagenet/val"})
    with pytest.raises(ValueError, match="inside the output folder"):
        prepare_real(tmp_path, root=tmp_path, paths={"train_shards": "grit"}, progress=False)
    assert (tmp_path / "grit/grit-000.tar").is_file()  # the refusal removed nothing


def test_check_config_reuses_the_path_check(tmp_path):
    import yaml

    build_fake_real(tmp_path)
    cfg = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    cfg["data"].update(root=str(tmp_path), paths=dict(PATHS))
    wf.check_config(cfg)
    runs = {r["name"]: r for r in wf.plan_runs(cfg)}
    assert wf.run_shards(cfg, runs["hycoclip-base-s0"]) == "results/data/grit"
    assert wf.run_shards(cfg, runs["meru-boxes-s0"]) == "results/data/grit"
    assert wf.run_shards(cfg, runs["meru-base-s0"]) == "results/data/train"
    cfg["data"]["paths"]["flickr_images"] = "flickr30k/missing"
    with pytest.raises(ValueError, match=r"data\.paths\.flickr_images: folder .*flickr30k/missing does not"):
        wf.check_config(cfg)
    cfg["data"]["paths"] = {"train_shards": "redcaps/*.tar"}
    with pytest.raises(ValueError, match=r"data\.paths\.grit_shards: not set, but runs \['hycoclip-base-s0'"):
        wf.check_config(cfg)


@pytest.mark.slow
def test_switching_sources_leaves_no_stale_files(tmp_path):
    build_fake_real(tmp_path / "data")
    out = tmp_path / "out"
    gen = prepare_data("generated", out, size="quick", n_train=8, image_size=16, workers=1, progress=False)
    assert "chains" in gen["benchmarks"] and (out / "bench/chains.json").is_file()
    real = prepare_data("real", out, root=tmp_path / "data", paths={"train_shards": "redcaps"}, image_size=16,
                        progress=False)
    assert sorted(os.listdir(out / "bench")) == [] and real["benchmarks"] == {}
    # the shard links and the index the data step saved of them (hyplib.data.shards.INDEX_CACHE)
    assert sorted(os.listdir(out / "train")) == [".shard-index.npz", "train-000000.tar", "train-000001.tar"]
    assert set(real["unavailable"]) == {"zeroshot", "retrieval", "retrieval_flickr30k", "composition",
                                        "hierarcaps", "pep", "chains", "taxonomy"}
    prepare_data("generated", out, size="quick", n_train=8, image_size=16, workers=1, progress=False)
    assert not any(p.is_symlink() for p in (out / "train").iterdir())
    with pytest.raises(ValueError, match="unknown data source 'laion'.*generated.*real"):
        prepare_data("laion", out)


def test_notebook_declares_the_rule_keys():
    from conftest import committed_parameters

    params = committed_parameters(ROOT / "notebooks/03_prepare_data.ipynb")
    assert params["source"] == "generated" and params["paths"] == {} and params["verify_shards"] is True
    assert {"out_dir", "size", "n_train", "image_size", "seed", "root", "sample_grid",
            "workers"} <= set(params)


@pytest.mark.slow
def test_notebook_prepares_real_files(tmp_path):
    """03_prepare_data with source='real', as the workflow runs it (papermill -b), writes the
    manifest and the sample grid from the real training shards."""
    import subprocess
    import sys

    build_fake_real(tmp_path / "data")
    params = {"out_dir": str(tmp_path / "out"), "source": "real", "root": str(tmp_path / "data"), "paths": PATHS,
              "image_size": 16, "workers": 2, "sample_grid": str(tmp_path / "grid.png")}
    papermill = str(Path(sys.executable).parent / "papermill")
    done = subprocess.run([papermill, "--no-progress-bar", "--cwd", str(ROOT), "-k", "python3",
                           str(ROOT / "notebooks/03_prepare_data.ipynb"), str(tmp_path / "run.ipynb"),
                           "-b", wf.b64_params(params)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["train"]["images"] == 9 and manifest["skipped"]["train"] == {"bad_image": 1, "bad_json": 1}
    assert (tmp_path / "grid.png").stat().st_size > 0


# ----------------------------------------------------------------------------- your own classes
CLIPART_TAXONOMY = """child,parent,name
animals,,
tools,,
cat_face,animals,cat face
dog,animals,
hammer,tools,
"""


def build_own_classes(root: Path) -> None:
    """Class folders with non-WordNet names, a taxonomy (two top-level nodes) and templates."""
    for c, name in enumerate(("cat_face", "dog", "hammer")):
        for j in range(2):
            _write(root / f"clipart/{name}/{name}-{j}.png", _jpeg(70 + 2 * c + j))
    _write(root / "clipart/taxonomy.csv", CLIPART_TAXONOMY)
    _write(root / "clipart/templates.txt", "# clip art\na drawing of a {}.\n\nclip art: {}\n")


def test_own_class_folders_taxonomy_and_templates(tmp_path):
    from test_eval_driver import _model

    from hyplib.evaluation import run_all

    build_fake_real(tmp_path)
    build_own_classes(tmp_path)
    paths = {"train_shards": "redcaps", "class_folders": "clipart", "taxonomy": "clipart/taxonomy.csv",
             "templates": "clipart/templates.txt"}
    m = prepare_real(tmp_path / "out", root=tmp_path, paths=paths, image_size=16, progress=False)
    assert m["benchmarks"]["zeroshot"] == 6 and "taxonomy" not in m["unavailable"]
    assert m["benchmark_sources"]["zeroshot"]["dataset"] == "classes"
    zs = load_benchmark(tmp_path / "out/bench", "zeroshot")
    assert zs["class_ids"] == ["cat_face", "dog", "hammer"] and zs["classnames"] == ["cat face", "dog", "hammer"]
    assert zs["templates"] == ["a drawing of a {}.", "clip art: {}"] and zs["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    tax = load_benchmark(tmp_path / "out/bench", "taxonomy")
    assert tax["leaves"] == zs["class_ids"] and tax["parent"]["animals"] == "__root__"
    assert tax["parent"]["cat_face"] == "animals" and tax["parent"]["__root__"] is None
    metrics = run_all(_model("meru"), tmp_path / "out/bench", protocols=["zeroshot", "hierarchy"])
    assert metrics["zeroshot/chance"] == pytest.approx(1 / 3)
    assert {"hierarchy/reference/TIE", "hierarchy/corrected/LCA", "hierarchy/corrected/J",
            "hierarchy/reference/P_H", "hierarchy/corrected/R_H"} <= set(metrics)
    # without a taxonomy: zero-shot runs, the hierarchy metrics are "not available for this data"
    del paths["taxonomy"], paths["templates"]
    m = prepare_real(tmp_path / "out", root=tmp_path, paths=paths, image_size=16, progress=False)
    assert "data.paths.taxonomy not set" in m["unavailable"]["taxonomy"]
    assert load_benchmark(tmp_path / "out/bench", "zeroshot")["templates"][0] == "a photo of a {}."
    report = {}
    with pytest.warns(UserWarning, match="'hierarchy' skipped: not available for this data"):
        metrics = run_all(_model("meru"), tmp_path / "out/bench", report=report, traversal_images=0)
    assert "zeroshot/top1" in metrics and not any(k.startswith("hierarchy/") for k in metrics)
    assert report["skipped"]["hierarchy"].startswith("not available for this data: taxonomy (data.paths.taxonomy")
    with pytest.raises(FileNotFoundError, match="protocol 'hierarchy': not available for this data"):
        run_all(_model("meru"), tmp_path / "out/bench", protocols=["hierarchy"])


@pytest.mark.parametrize("bad, key, match", [
    ("cat_face,animals\ndog,animals\n", "class_folders", r"1 class folder\(s\) .* not in it, e\.g\. \['hammer'\]"),
    ("cat_face,animals\ndog,animals\nhammer,tools\nsaw,tools\n", "class_folders",
     r"leaves without a folder: \['saw'\]"),
    ("cat_face,animals\ndog,animals\nhammer,dog\n", "class_folders", r"internal nodes: \['dog'\]"),
    ("cat_face,animals\ncat_face,tools\n", "taxonomy", r"taxonomy\.csv:2: node 'cat_face' has two parents"),
    ("cat_face\n", "taxonomy", r"taxonomy\.csv:1: expected 'child,parent'"),
    ("a,b\nb,a\ncat_face,a\ndog,a\nhammer,a\n", "class_folders", r"taxonomy"),
])
def test_bad_taxonomy_names_key_and_line(tmp_path, bad, key, match):
    build_own_classes(tmp_path)
    _write(tmp_path / "redcaps/rc.tar", b"")
    _write(tmp_path / "clipart/taxonomy.csv", bad)
    with pytest.raises(ValueError, match=rf"config key data\.paths\.{key} .*{match}"):
        resolve_data_paths(tmp_path, {"train_shards": "redcaps", "class_folders": "clipart",
                                      "taxonomy": "clipart/taxonomy.csv"})


def test_content_errors_come_before_any_shard_is_read(tmp_path):
    """A bad class folder, templates file, JSON or csv fails in resolve_data_paths, which
    check_config and prepare_real call before linking or verifying a shard."""
    build_fake_real(tmp_path)
    build_own_classes(tmp_path)
    base = {"train_shards": "redcaps"}
    _write(tmp_path / "imagenet/val/not_a_wnid/x.JPEG", _jpeg(1))
    with pytest.raises(ValueError, match=r"data\.paths\.imagenet_val .*'not_a_wnid'.*set data\.paths\.class_folders"):
        prepare_real(tmp_path / "out", root=tmp_path, paths={**base, "imagenet_val": "imagenet/val"}, progress=False)
    assert not (tmp_path / "out/train").exists()  # nothing linked, nothing verified
    _write(tmp_path / "clipart/bad_templates.txt", "a photo\n")
    with pytest.raises(ValueError, match=r"data\.paths\.templates .*bad_templates\.txt:1: template 'a photo' has no"):
        resolve_data_paths(tmp_path, {**base, "class_folders": "clipart", "templates": "clipart/bad_templates.txt"})
    with pytest.raises(ValueError, match=r"data\.paths\.class_folder.*set together with data\.paths\.imagenet_val"):
        resolve_data_paths(tmp_path, {**base, "class_folders": "clipart", "imagenet_val": "imagenet/val"})
    with pytest.raises(ValueError, match=r"data\.paths\.taxonomy: not set, but|data\.paths\.class_folders: not set"):
        resolve_data_paths(tmp_path, {**base, "taxonomy": "clipart/taxonomy.csv"})
    _write(tmp_path / "coco/annotations/broken.json", '{"images": []}')
    with pytest.raises(ValueError,
                       match=r"data\.paths\.coco_captions .*lacks the top-level key\(s\) \['annotations'\]"):
        resolve_data_paths(tmp_path, {**base, "coco_captions": "coco/annotations/broken.json",
                                      "coco_images": "coco/val2017"})
    _write(tmp_path / "hierarcaps/bad.csv", "id,caption,url\n")
    with pytest.raises(ValueError, match=r"data\.paths\.hierarcaps .*lacks 'captions' and 'image_url'"):
        resolve_data_paths(tmp_path, {**base, "hierarcaps": "hierarcaps/bad.csv",
                                      "hierarcaps_images": "hierarcaps/images"})
    _write(tmp_path / "lonely/only/x.png", _jpeg(2))
    with pytest.raises(ValueError,
                       match=r"data\.paths\.class_folders .*1 class folder\(s\); zero-shot needs at least two"):
        resolve_data_paths(tmp_path, {**base, "class_folders": "lonely"})
