"""Driver: run_all on a small benchmark folder with a tiny model, parity with the single
evaluators, write_metrics' hash, and mismatched classes/tree."""
import hashlib
import json

import numpy as np
import pytest
import torch

from hyplib import methods as M
from hyplib.data.benchmarks import write_benchmark
from hyplib.evaluation import _common as C
from hyplib.evaluation import driver as DR
from hyplib.evaluation import retrieval as R

TINY = dict(image_size=16, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2, text_width=32,
            text_layers=1, text_heads=2, context_length=16, embed_dim=16)
PARENT = {"root": None, "animal": "root", "thing": "root", "cat": "animal", "dog": "animal", "cup": "thing"}


def _imgs(rng, n):
    return rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    write_benchmark(d, "taxonomy", {}, {"parent": PARENT, "names": {}, "leaves": ["cat", "dog", "cup"]})
    write_benchmark(d, "zeroshot", {"images": _imgs(rng, 9), "labels": np.arange(9) % 3},
                    {"classnames": ["cat", "dog", "cup"], "class_ids": ["cat", "dog", "cup"],
                     "templates": ["a {}", "a photo of a {}"]})
    write_benchmark(d, "retrieval", {"images": _imgs(rng, 6), "caption_image": np.repeat(np.arange(6), 2)},
                    {"captions": [f"caption {i}" for i in range(12)]})
    write_benchmark(d, "pep", {"images": _imgs(rng, 3), "pairs": np.array([[1, 0, 0, 0], [0, 0, 1, 0], [1, 1, 0, 1],
                                                                         [1, 2, 0, 0]]),
                               "labels": np.array([1, 0, 1, 0])},
                    {"texts": ["a cat", "a dog", "a cup"], "pair_types": ["caption>image", "reversed",
                                                                          "caption>image", "cross"]})
    write_benchmark(d, "chains", {"whole": _imgs(rng, 4), "part": _imgs(rng, 4), "subpart": _imgs(rng, 4)},
                    {"text_chains": [["red", "red cup", "a red cup on a table"]] * 4})
    write_benchmark(d, "composition", {"images": _imgs(rng, 4)},
                    {"positives": ["a red cup"] * 4, "negatives": ["a blue cup"] * 4,
                     "subsets": ["replace_att", "replace_att", "swap_obj", "add_obj"],
                     "heldout": [True, False, False, False]})
    write_benchmark(d, "hierarcaps", {"images": _imgs(rng, 3)},
                    {"captions": [["thing", "cup", "red cup", "a red cup on a table"]] * 3})
    return d


def _model(name, **kw):
    from hyplib.models import build_model

    torch.manual_seed(0)
    method = M.get(name, k=4, d=4, **kw) if name == "phyclip" else M.get(name, embed_dim=16, **kw)
    return build_model(dict(TINY), method)


@pytest.mark.parametrize("name", ["meru", "phyclip", "clip"])
def test_run_all_every_protocol(bench_dir, name, tmp_path):
    model = _model(name)
    arrays, report = {}, {}
    with pytest.warns(UserWarning) if name == "clip" else _nullcontext():
        metrics = DR.run_all(model, bench_dir, arrays=arrays, report=report, traversal_images=2, traversal_steps=4)
    assert all(isinstance(v, float) for v in metrics.values())
    for key in ("zeroshot/mean_per_class_acc", "hierarchy/reference/TIE", "hierarchy/corrected/J",
                "retrieval/i2t_R@1", "chains/depth2_acc", "chains/text_depth1_acc", "composition/acc",
                "composition/acc_heldout", "hierarcaps/tau", "hierarcaps/hret/own_mean",
                "diagnostics/radius/image/mean", "diagnostics/radius/box_text/mean",
                "diagnostics/spectrum/text/effective_rank"):
        assert key in metrics, key
    if name == "clip":
        assert "pep" in report["skipped"] and not any(k.startswith("pep/") for k in metrics)
    else:
        assert 0.0 <= metrics["pep/auc"] <= 1.0 and "diagnostics/traversal_cone/found" in metrics
        assert arrays["traversal_idx"].shape == (2, 4)
    if name == "phyclip":
        assert arrays["factor_radius_image"].shape == (4,) and "diagnostics/factors/image/active" in metrics
    assert arrays["radius_image"].shape == (6,) and arrays["hierarcaps_radius"].shape == (3, 4)
    assert model.training  # the driver restores train mode
    # Parity: the retrieval numbers equal a direct evaluate_retrieval on the model.
    from hyplib.data.benchmarks import load_benchmark

    direct = R.evaluate_retrieval(model, load_benchmark(bench_dir, "retrieval"))
    for k, v in direct.items():
        assert metrics[f"retrieval/{k}"] == pytest.approx(v)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_run_all_explicit_protocols_and_errors(bench_dir, tmp_path):
    model = _model("meru")
    out = DR.run_all(model, bench_dir, protocols=["zeroshot"])
    assert set(out) == {"zeroshot/mean_per_class_acc", "zeroshot/top1", "zeroshot/chance", "time/zeroshot"}
    with pytest.raises(ValueError, match="unknown protocol"):
        DR.run_all(model, bench_dir, protocols=["bogus"])
    with pytest.raises(FileNotFoundError, match="retrieval"):
        DR.run_all(model, tmp_path, protocols=["retrieval"])
    from hyplib.tree import Tree

    wrong = Tree(parent={"r": None, "cat": "r", "dog": "r", "cow": "r"})
    with pytest.raises(ValueError, match="cow"):
        DR.run_all(model, bench_dir, protocols=["hierarchy"], tree=wrong)


def test_write_metrics_hash(tmp_path):
    cfg = {"method": "meru", "model": {"embed_dim": 16}, "seed": 3}
    path = DR.write_metrics(tmp_path / "eval" / "metrics.json", {"a/b": 0.5, "c": float("nan")}, cfg, seed=3)
    rec = json.loads(path.read_text())
    canonical = '{"method":"meru","model":{"embed_dim":16},"seed":3}'
    assert rec["config_hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert rec["seed"] == 3 and rec["metrics"] == {"a/b": 0.5, "c": None}
    # Key order does not change the hash.
    assert DR.config_hash({"seed": 3, "model": {"embed_dim": 16}, "method": "meru"}) == rec["config_hash"]


def test_encoding_batches_agree(bench_dir):
    from hyplib.data.benchmarks import load_benchmark

    model = _model("meru")
    imgs = load_benchmark(bench_dir, "retrieval")["images"]
    a = C.encode_images(model, imgs, batch_size=2)
    b = C.encode_images(model, imgs, batch_size=64)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_load_model_roundtrip(tmp_path):
    model = _model("meru")
    with torch.no_grad():
        model.log_curv.fill_(-0.3)
    cfg = {"method": "meru", "method_overrides": {"embed_dim": 16}, "model": dict(TINY), "seed": 1}
    torch.save({"model": model.state_dict(), "config": cfg, "step": 5}, tmp_path / "final.pt")
    loaded, got_cfg = DR.load_model(tmp_path / "final.pt")
    assert got_cfg == cfg and not loaded.training
    assert float(loaded.curv.detach()) == pytest.approx(float(np.exp(-0.3)), rel=1e-6)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(loaded.encode_image(x), model.eval().encode_image(x))
    with pytest.raises(FileNotFoundError):
        DR.load_model(tmp_path / "nope.pt")


def test_encode_texts_dedupes_and_caches():
    model = _model("meru")
    calls = []
    orig = model.text_features

    def counting(tokens):
        calls.append(tokens.shape[0])
        return orig(tokens)

    model.text_features = counting
    cache = {}
    a = C.encode_texts(model, ["x y", "a b", "x y"], cache=cache)
    b = C.encode_texts(model, ["a b", "new"], cache=cache)
    assert calls == [2, 1]
    torch.testing.assert_close(a[0], a[2])
    torch.testing.assert_close(a[1], b[0])
    model.text_features = orig
    with torch.no_grad():
        want = model.eval().encode_text(model.tokenize(["x y", "a b", "x y"]))
    torch.testing.assert_close(a, want, rtol=1e-5, atol=1e-6)


def test_real_imagenet_layout_uses_wordnet_tree(tmp_path):
    """A real-ImageNet zero-shot file (class ids = the 1,000 wnids, no taxonomy file): the
    hierarchy metrics run on the WordNet tree without being given it."""
    wordnet = pytest.importorskip("hyplib.data.wordnet")
    wnids = wordnet.imagenet_wnids()
    rng = np.random.default_rng(0)
    write_benchmark(tmp_path, "zeroshot", {"images": _imgs(rng, 4), "labels": np.array([0, 1, 500, 999])},
                    {"classnames": [f"class {i}" for i in range(1000)], "class_ids": wnids, "templates": ["{}"]})
    out = DR.run_all(_model("meru"), tmp_path, protocols=["zeroshot", "hierarchy"])
    assert {"hierarchy/reference/TIE", "hierarchy/corrected/LCA"} <= set(out)
    assert 0.0 <= out["hierarchy/reference/J"] <= 1.0 and out["hierarchy/reference/TIE"] >= 0.0


@pytest.mark.parametrize("name", ["meru", "clip"])
def test_collapsed_model_scores_chance_or_below(bench_dir, name):
    """A model whose image and text features are one constant vector: every ranking metric at
    or below chance (ties are misses), none at the 1.0 a tie-in-favour rule gave."""
    model = _model(name)
    const = torch.full((1, 16), 0.05)
    model.image_features = lambda x: const.expand(x.shape[0], -1).to(x.device)
    model.text_features = lambda t: const.expand(t.shape[0], -1).to(t.device)
    metrics = DR.run_all(model, bench_dir, traversal_images=2, traversal_steps=4)
    assert metrics["zeroshot/mean_per_class_acc"] == 0.0 and metrics["zeroshot/top1"] == 0.0
    for k in (1, 5, 10):  # 6 images x 2 captions: 10 wrong captions, 5 wrong images
        assert metrics[f"retrieval/i2t_R@{k}"] == 0.0
    assert metrics["retrieval/t2i_R@1"] == metrics["retrieval/t2i_R@5"] == 0.0
    assert metrics["retrieval/t2i_R@10"] == 1.0  # K > N - 1: every image is in the top 10 of 6
    for key in ("composition/acc", "chains/depth1_acc", "chains/depth2_acc", "chains/text_depth1_acc",
                "hierarcaps/order_acc", "hierarcaps/tau", "hierarcaps/hret/own_mean", "hierarcaps/hret/level_tau"):
        assert metrics[key] == 0.0, key
    from hyplib.evaluation.hierarchy import expected_random_metrics
    from hyplib.tree import Tree

    random = expected_random_metrics(Tree(parent=PARENT, leaves=["cat", "dog", "cup"]))
    assert metrics["hierarchy/reference/TIE"] >= random["TIE"]
    assert metrics["hierarchy/reference/J"] <= random["J"]
    if name == "meru":
        assert metrics["pep/auc"] == pytest.approx(0.5) and metrics["pep/ap"] == pytest.approx(0.5)
        assert metrics["diagnostics/traversal/own"] == 0.0
