"""Generated world: determinism, seed streams, taxonomy, boxes, truth of captions and negatives."""
import hashlib
import json
import tarfile

import numpy as np
import pytest

from hyplib.data import generate_all, load_benchmark
from hyplib.data.captions import SUBSETS, composition_pair, level_texts, levels, paraphrases
from hyplib.data.genconfig import STREAMS, GenConfig
from hyplib.data.scene import Obj, Scene, random_scene, render
from hyplib.data.semantics import Desc, Mention, describes
from hyplib.data.shapes import DRAWERS
from hyplib.data.taxonomy import colour_tree, heldout_pairs, leaves, object_tree

QUICK = GenConfig.preset("quick")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    manifest = generate_all(out, QUICK, progress=False)
    return out, manifest


def _shard_records(out):
    for tar in sorted((out / "train").glob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf:
                if m.name.endswith(".json"):
                    yield json.loads(tf.extractfile(m).read())


def test_taxonomy_depth_and_leaves():
    t = object_tree()
    assert len(t.leaves) >= 24 and len(set(t.leaves)) == len(t.leaves)
    assert all(t.depth(leaf) >= 3 for leaf in t.leaves)
    assert set(DRAWERS) == set(t.leaves)
    assert colour_tree().root == "colour" and len(colour_tree().leaves) == 11


def test_same_seed_identical_bytes(tmp_path):
    cfg = GenConfig.preset("quick", n_train=48, shard_size=24)
    digests = []
    for run in ("a", "b"):
        generate_all(tmp_path / run, cfg, progress=False, benchmarks=())
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted((tmp_path / run / "train").glob("*.tar"))])
    assert digests[0] == digests[1] and len(digests[0]) == 2
    generate_all(tmp_path / "c", GenConfig.preset("quick", n_train=48, shard_size=24, seed=1),
                 progress=False, benchmarks=())
    other = [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / "c" / "train").glob("*.tar"))]
    assert not set(other) & set(digests[0])


def test_seed_streams_disjoint(world):
    out, manifest = world
    assert len(set(STREAMS.values())) == len(STREAMS)
    train = set()
    for tar in sorted((out / "train").glob("*.tar")):
        with tarfile.open(tar) as tf:
            train |= {hashlib.sha1(tf.extractfile(m).read()).hexdigest() for m in tf if m.name.endswith(".png")}
    from hyplib.data.generate import png_bytes
    for name in ("zeroshot", "retrieval", "hierarcaps", "composition"):
        imgs = load_benchmark(out / "bench", name)["images"]
        bench = {hashlib.sha1(png_bytes(im)).hexdigest() for im in imgs}
        assert not bench & train, name


def test_manifest_and_benchmark_shapes(world):
    out, manifest = world
    assert manifest["train"]["images"] == QUICK.n_train
    z = load_benchmark(out / "bench", "zeroshot")
    assert z["images"].shape == (30 * QUICK.zeroshot_per_class, 32, 32, 3) and z["images"].dtype == np.uint8
    assert z["class_ids"] == object_tree().leaves and all("{}" in t for t in z["templates"])
    r = load_benchmark(out / "bench", "retrieval")
    assert len(r["captions"]) == 5 * len(r["images"]) == len(r["caption_image"])
    dup = manifest["duplicate_captions"]["retrieval"]
    texts = [str(c) for c in r["captions"]]
    assert dup["captions"] == len(texts) and dup["distinct"] == len(set(texts))
    assert dup["shared_across_images"] == sum(
        len({int(o) for t2, o in zip(texts, r["caption_image"]) if t2 == t}) > 1 for t in texts)
    h = load_benchmark(out / "bench", "hierarcaps")
    assert all(len(c) == 4 for c in h["captions"]) and len(h["captions"]) == len(h["images"])
    c = load_benchmark(out / "bench", "chains")
    assert c["whole"].shape == c["part"].shape == c["subpart"].shape and len(c["text_chains"]) == len(c["whole"])
    assert all(ch[0] in ch[1] and ch[1] in ch[2] for ch in c["text_chains"])
    t = load_benchmark(out / "bench", "taxonomy")
    assert t["leaves"] == object_tree().leaves


def test_boxes_inside_images_and_json_fields(world):
    out, _ = world
    n = 0
    for rec in _shard_records(out):
        assert len(rec["captions"]) == 4 and rec["caption"] == rec["captions"][-1]
        kinds = {b["kind"] for b in rec["boxes"]}
        assert "object" in kinds and "part" in kinds
        for b in rec["boxes"]:
            x0, y0, x1, y1 = b["box"]
            assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32, b
            assert b["label"] in rec["labels"]
        n += 1
    assert n == QUICK.n_train


@pytest.mark.slow
def test_look_alike_blocks_differ_only_in_shape(tmp_path):
    cfg = GenConfig.preset("quick", n_train=256, group_size=16, look_alike_blocks=0.5)
    manifest = generate_all(tmp_path, cfg, progress=False, benchmarks=())
    assert manifest["loader"]["group_size"] == 16
    recs = list(_shard_records(tmp_path))
    blocks = [recs[i:i + 16] for i in range(0, len(recs), 16)]  # quick shards hold 128 = 8 blocks, 16 in all
    alike = [b for b in blocks if all(len(r["objects"]) == 1 for r in b)
             and len({(r["objects"][0]["colour"], r["background"]) for r in b}) == 1]
    assert 0 < len(alike) < len(blocks)
    assert all(len({r["labels"][0] for r in b}) > 3 for b in alike)
    mixed = [b for b in blocks if b not in alike]
    assert all(len({r["background"] for r in b}) > 1 for b in mixed)
    held = {tuple(p) for p in manifest["heldout_pairs"]}
    assert not {(o["colour"], o["label"]) for r in recs for o in r["objects"]} & held
    with pytest.raises(ValueError, match="group_size=48 must .* divide shard_size=128"):
        generate_all(tmp_path / "bad", GenConfig.preset("quick", group_size=48), progress=False, benchmarks=())


def test_default_world_is_unblocked(world):
    assert world[1]["loader"]["group_size"] == 1


def test_heldout_pairs_absent_from_training(world):
    out, manifest = world
    held = {tuple(p) for p in manifest["heldout_pairs"]}
    assert len(held) == len(leaves()) and {c for c, _ in held} == set(colour_tree().leaves)
    seen = {(o["colour"], o["label"]) for rec in _shard_records(out) for o in rec["objects"]}
    assert seen and not seen & held
    comp = load_benchmark(out / "bench", "composition")
    assert any(comp["heldout"]) and not all(comp["heldout"])
    assert sorted(set(comp["subsets"])) == sorted(SUBSETS)


@pytest.mark.slow
def test_composition_negatives_never_true():
    rng = np.random.default_rng(5)
    counts = dict.fromkeys(SUBSETS, 0)
    for _ in range(120):
        _, scene = random_scene(rng, 32)
        for subset in SUBSETS:
            pair = composition_pair(subset, scene, rng)
            if pair:
                assert describes(pair[0], scene) and not describes(pair[1], scene), (subset, pair)
                counts[subset] += 1
    assert all(v > 0 for v in counts.values()), counts


def test_captions_true_and_levels_entail():
    rng = np.random.default_rng(2)
    for _ in range(60):
        _, scene = random_scene(rng, 32)
        descs = levels(scene)
        assert all(describes(d, scene) for d in descs)
        assert all(describes(d, scene) for d in paraphrases(scene))
        assert len(set(level_texts(scene))) == 4


def test_describes_on_hand_built_scene():
    scene = Scene([Obj("car", "red", [0, 10, 10, 20]), Obj("pine tree", "green", [20, 0, 30, 30])], "grass", 32)
    car, tree = Mention("car", "red"), Mention("pine tree", "green")
    assert describes(Desc((car, tree), ((0, "left of", 1),), "grass"), scene)
    assert describes(Desc((Mention("vehicle"), Mention("plant", "cool colour"))), scene)
    assert not describes(Desc((car, tree), ((1, "left of", 0),)), scene)
    assert not describes(Desc((car, tree), ((0, "above", 1),)), scene)  # overlapping rows: not strictly above
    assert not describes(Desc((Mention("car", "blue"),)), scene)
    assert not describes(Desc((car, Mention("car"))), scene)  # two mentions need two objects
    assert not describes(Desc((car,), (), "snow"), scene)


def test_pep_pairs_well_formed(world):
    out, _ = world
    p = load_benchmark(out / "bench", "pep")
    pairs, labels, types = p["pairs"], p["labels"], p["pair_types"]
    assert pairs.shape == (len(labels), 4) and len(types) == len(labels)
    assert set(types) == {"caption>image", "generic>specific", "reversed", "cross"}
    assert 0.3 < labels.mean() < 0.7
    for (pk, pi, ck, ci), lab in zip(pairs, labels):
        assert pi < (len(p["images"]) if pk == 0 else len(p["texts"]))
        assert ci < (len(p["images"]) if ck == 0 else len(p["texts"]))
        if pk == 0:
            assert lab == 0  # an image is never the general side


def test_drawers_stay_in_frame():
    rng = np.random.default_rng(0)
    for leaf, fn in DRAWERS.items():
        aspect, shapes = fn(rng)
        pts = np.concatenate([s[2] for s in shapes])
        assert pts.min() >= -0.02 and pts[:, 1].max() <= 1.02 and pts[:, 0].max() <= aspect + 0.02, leaf


def test_render_size_configurable():
    img, scene = render([("car", "red"), ("fish", "blue")], "sky", 64, np.random.default_rng(0))
    assert img.shape == (64, 64, 3)
    assert all(0 <= v <= 64 for o in scene.objects for v in o.box)


def test_heldout_pairs_depend_only_on_seed():
    assert heldout_pairs(0) == heldout_pairs(0) and heldout_pairs(0) != heldout_pairs(1)


def test_larger_images_and_chains(tmp_path):
    cfg = GenConfig.preset("quick", n_train=8, shard_size=8, image_size=64, chain_items=4)
    generate_all(tmp_path, cfg, progress=False, benchmarks=("chains",))
    c = load_benchmark(tmp_path / "bench", "chains")
    assert c["whole"].shape == (4, 64, 64, 3)
    rec = next(_shard_records(tmp_path))
    assert all(0 <= v <= 64 for b in rec["boxes"] for v in b["box"])


def test_notebook_parameters_cell_plain_and_no_outputs():
    from pathlib import Path

    import nbformat
    nb = nbformat.read(Path(__file__).parents[1] / "notebooks/03_prepare_data.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    names = {line.split("=")[0].strip() for line in code[0].source.splitlines() if "=" in line}
    assert {"out_dir", "n_train", "image_size", "seed", "size", "sample_grid"} <= names
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)


def _images(out):
    for tar in sorted((out / "train").glob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf:
                if m.name.endswith(".png"):
                    yield hashlib.sha256(tf.extractfile(m).read()).hexdigest()


def test_caption_wording_leaves_scenes_and_truth_alone(tmp_path):
    base = GenConfig.preset("quick", n_train=200, shard_size=100)
    plain = GenConfig.preset("quick", n_train=200, shard_size=100, caption_colour=0.5, caption_background=0.25)
    generate_all(tmp_path / "base", base, progress=False, benchmarks=())
    generate_all(tmp_path / "plain", plain, progress=False, benchmarks=())
    assert list(_images(tmp_path / "base")) == list(_images(tmp_path / "plain"))
    named_colour = named_background = 0
    for full, rec in zip(_shard_records(tmp_path / "base"), _shard_records(tmp_path / "plain")):
        assert rec["objects"] == full["objects"] and rec["background"] == full["background"]
        relations = tuple((i, r, j) for i, r, j in rec["relations"])
        wordings = {Desc(tuple(Mention(o["label"], o["colour"] if c else None) for o in rec["objects"]), relations,
                         rec["background"] if b else None).text(): (c, b) for c in (0, 1) for b in (0, 1)}
        has_colour, has_background = wordings[rec["caption"]]
        named_colour += has_colour
        named_background += has_background
        assert rec["caption"] == rec["captions"][-1]
        if has_colour and has_background:
            assert rec == full
        for box in rec["boxes"]:   # object box phrases name the colour exactly when the caption does
            if box["kind"] == "object":
                colour = rec["objects"][box["object"]]["colour"]
                assert (colour in box["phrase"].split()) == bool(has_colour), (box, rec["caption"])
    assert 70 < named_colour < 130 and 20 < named_background < 80   # 200 records at p = 0.5 and 0.25
    with pytest.raises(ValueError, match="caption_colour=1.5 must lie in"):
        generate_all(tmp_path / "bad", GenConfig.preset("quick", caption_colour=1.5), progress=False, benchmarks=())
    with pytest.raises(ValueError, match=r"unknown generator setting\(s\) \['caption_color'\]"):
        GenConfig.preset("quick", caption_color=0.5)
