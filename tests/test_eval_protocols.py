"""Zero-shot, PEP, chains, composition and HierarCaps evaluators: hand-computed values,
brute-force parity, constructed embeddings with a known answer, and bad-input errors."""
import numpy as np
import pytest
import scipy.stats
import torch

from hyplib import lorentz
from hyplib import methods as M
from hyplib.evaluation import chains as CH
from hyplib.evaluation import composition as CO
from hyplib.evaluation import hierarcaps as HC
from hyplib.evaluation import pep as P
from hyplib.evaluation import zeroshot as Z

TINY = dict(image_size=16, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2, text_width=32,
            text_layers=1, text_heads=2, context_length=16, embed_dim=16)


def _tiny_model(name="meru", **overrides):
    from hyplib.models import build_model

    torch.manual_seed(0)
    return build_model(dict(TINY), M.get(name, embed_dim=16, **overrides) if name != "phyclip"
                       else M.get(name, k=4, d=4, **overrides))


def _radial(direction: torch.Tensor, r: torch.Tensor, curv: float = 1.0) -> torch.Tensor:
    """Points at root distance r (N,) along unit direction (D,) or (N, D)."""
    u = torch.nn.functional.normalize(direction, dim=-1)
    return (torch.sinh(np.sqrt(curv) * r) / np.sqrt(curv)).unsqueeze(-1) * u


# ----------------------------------------------------------------------------- zero-shot
def test_accuracy_metrics_hand_computed():
    scores = torch.tensor([[0.9, 0.1, 0.0, 0.0, 0.0, 0.0],   # label 0: correct
                           [0.1, 0.9, 0.0, 0.0, 0.0, 0.0],   # label 0: wrong, 0 is 2nd
                           [0.0, 0.0, 0.3, 0.2, 0.1, 0.4],   # label 2: wrong (5 wins), top5 ok
                           [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])  # label 5: correct
    labels = np.array([0, 0, 2, 5])
    out = Z.accuracy_metrics(scores, labels)
    assert out["top1"] == pytest.approx(2 / 4)
    assert out["mean_per_class_acc"] == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert out["chance"] == pytest.approx(1 / scores.shape[1])
    assert out["top5"] == pytest.approx(1.0)
    assert "top5" not in Z.accuracy_metrics(scores[:, :4], np.array([0, 0, 2, 3]))
    with pytest.raises(ValueError, match="labels"):
        Z.accuracy_metrics(scores, np.array([0, 0, 2, 6]))


def test_precomputed_class_embeddings():
    method = M.get("meru")
    dirs = torch.eye(3, 6, dtype=torch.float64)
    classes = _radial(dirs, torch.full((3,), 1.0))
    images = _radial(dirs[[2, 0, 1, 1]] + 0.1, torch.full((4,), 2.0))
    bench = {"labels": np.array([2, 0, 1, 0]), "classnames": ["a", "b", "c"]}
    out = Z.evaluate_zeroshot({"image": images, "classes": classes, "curv": 1.0}, bench, method=method)
    assert out["top1"] == pytest.approx(0.75)
    assert out["mean_per_class_acc"] == pytest.approx((0.5 + 1 + 1) / 3)
    with pytest.raises(ValueError, match="classnames"):
        Z.evaluate_zeroshot({"image": images, "classes": classes[:2], "curv": 1.0}, bench, method=method)


def test_prompts_averaged_in_tangent_space_then_lifted():
    model = _tiny_model("meru")
    names, templates = ["cat", "dog"], ["a {}", "a photo of a {}", "{} here"]
    got = Z.class_embeddings(model, names, templates, prompt_agg="tangent_mean")
    with torch.no_grad():
        feats = model.text_features(model.tokenize([t.format(n) for n in names for t in templates]))
        want = model.lift(feats.reshape(2, 3, -1).mean(1), "text")
        wrong = lorentz.einstein_midpoint(model.lift(feats, "text").reshape(2, 3, -1), curv=model.curv)
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, wrong, atol=1e-6)
    per_prompt = Z.class_embeddings(model, names, templates, prompt_agg="score_mean")
    assert per_prompt.shape == (2, 3, 16)
    torch.testing.assert_close(per_prompt.reshape(6, -1), model.lift(feats, "text").detach())


def test_zeroshot_with_model_and_atmg_score_mean():
    model = _tiny_model("atmg")
    rng = np.random.default_rng(0)
    bench = {"images": rng.integers(0, 255, (6, 16, 16, 3), dtype=np.uint8), "labels": np.array([0, 1, 2, 0, 1, 2]),
             "classnames": ["red", "green", "blue"], "templates": ["a {} thing", "{}"]}
    scores, labels = Z.zeroshot_scores(model, bench)
    # ATMG: auto -> the per-class mean of the scores of each prompt.
    img = torch.from_numpy(bench["images"])
    with torch.no_grad():
        from hyplib.evaluation import _common as C
        x = C.encode_images(model, bench["images"])
        prompts = [t.format(n) for n in bench["classnames"] for t in bench["templates"]]
        t = model.encode_text(model.tokenize(prompts))
        want = model.method.similarity(x, t, curv=model.curv).reshape(6, 3, 2).mean(-1)
    torch.testing.assert_close(scores, want)
    assert img.shape[0] == 6 and model.training  # eval mode restored afterwards


# ----------------------------------------------------------------------------- PEP
def test_pep_metrics_hand_computed():
    phi = np.array([0.1, 0.5, 0.3, 0.9])
    omega = np.array([1.0, 1.0, 0.1, 1.0])
    labels = np.array([1, 1, 0, 0])
    types = ["caption>image", "caption>image", "reversed", "cross"]
    out = P.pep_metrics(phi, omega, labels, types)
    assert out["auc"] == pytest.approx(0.75)
    assert out["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert out["auc_norm"] == pytest.approx(1.0)  # ratios 0.1, 0.5 | 3, 0.9
    assert out["caption>image/auc"] == pytest.approx(0.75)
    assert out["reversed/auc"] == pytest.approx(0.5)
    assert out["cross/auc"] == pytest.approx(1.0)
    assert out["in_cone_pos"] == 1.0 and out["in_cone_neg"] == pytest.approx(0.5)
    assert out["reversed/n"] == 1.0
    with pytest.raises(ValueError, match="both"):
        P.pep_metrics(phi, omega, np.ones(4))


def test_evaluate_pep_constructed_cones():
    method = M.get("meru")
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(8, 6, generator=g, dtype=torch.float64)
    text = _radial(dirs, torch.full((8,), 0.5))   # generic, near the root
    image = _radial(dirs + 0.05 * torch.randn(8, 6, generator=g, dtype=torch.float64), torch.full((8,), 3.0))
    pos = np.stack([np.ones(8), np.arange(8), np.zeros(8), np.arange(8)], 1)       # text > its image
    rev = np.stack([np.zeros(8), np.arange(8), np.ones(8), np.arange(8)], 1)       # image > its text
    cross = np.stack([np.ones(8), np.arange(8), np.zeros(8), (np.arange(8) + 1) % 8], 1)
    bench = {"pairs": np.concatenate([pos, rev, cross]).astype(np.int64),
             "labels": np.r_[np.ones(8), np.zeros(16)].astype(np.int64),
             "pair_types": ["caption>image"] * 8 + ["reversed"] * 8 + ["cross"] * 8}
    out = P.evaluate_pep({"image": image, "text": text, "curv": 1.0}, bench, method=method)
    assert out["auc"] == 1.0 and out["ap"] == 1.0 and out["auc_norm"] == 1.0
    assert out["reversed/auc"] == 1.0 and out["in_cone_pos"] == 1.0 and out["reversed/in_cone"] == 0.0
    with pytest.raises(ValueError, match="euclidean"):
        P.evaluate_pep({"image": image, "text": text, "curv": 1.0}, bench, method=M.get("clip"))
    prod = M.get("phyclip", k=4, d=4)
    with pytest.raises(ValueError, match="not divisible"):
        P.evaluate_pep({"image": image, "text": text, "curv": torch.ones(4)}, bench, method=prod)
    wide = torch.cat([image, image[:, :2]], 1)  # D = 8: divisible by k = 4 but not k*d = 16
    with pytest.raises(ValueError, match="k\\*d"):
        P.evaluate_pep({"image": wide, "text": wide, "curv": torch.ones(4)}, bench, method=prod)
    x16 = torch.zeros(8, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="curvature"):
        P.evaluate_pep({"image": x16, "text": x16, "curv": torch.ones(3)}, bench, method=prod)
    with pytest.raises(ValueError, match="product embeddings passed"):
        P.evaluate_pep({"image": image, "text": text, "curv": torch.ones(4)}, bench, method=method)


def test_pep_product_factors_average():
    prod = M.get("phyclip", k=2, d=3)
    g = torch.Generator().manual_seed(2)
    parent = torch.randn(5, 6, generator=g, dtype=torch.float64)
    child = torch.randn(5, 6, generator=g, dtype=torch.float64)
    curv = torch.tensor([0.5, 2.0], dtype=torch.float64)
    phi, omega = P.pair_angles(parent, child, prod, curv)
    assert phi.shape == (5, 2)
    want = lorentz.exterior_angle(parent[:, 3:], child[:, 3:], curv=2.0)
    torch.testing.assert_close(phi[:, 1], want)


# ----------------------------------------------------------------------------- chains
def test_chain_accuracy_hand_computed():
    radii = np.array([[1.0, 2.0, 3.0],    # outward, both depths
                      [1.0, 2.0, 1.5],    # depth 1 only
                      [2.0, 1.0, 0.5],    # inward
                      [1.0, 1.0, 2.0]])   # tie: never correct
    out = CH.chain_metrics(radii, "outward")
    assert out["depth1_acc"] == 0.5 and out["depth2_acc"] == 0.25
    assert out["depth1_acc_opposite"] == 0.25 and out["depth2_acc_opposite"] == 0.25
    assert out["radius_L2"] == pytest.approx(7 / 4)
    assert out["gap_L01"] == pytest.approx((1 + 1 - 1 + 0) / 4)
    assert CH.chain_metrics(radii, "inward")["depth1_acc"] == 0.25
    with pytest.raises(ValueError, match="direction"):
        CH.chain_accuracy(radii, "sideways")


def test_evaluate_chains_embeddings():
    method = M.get("meru")
    d = torch.randn(5, 4, dtype=torch.float64)
    src = {"whole": _radial(d, torch.full((5,), 1.0)), "part": _radial(d, torch.tensor([2.0, 2, 2, 0.5, 2])),
           "subpart": _radial(d, torch.tensor([3.0, 1, 3, 3, 3])),
           "text_chains": torch.stack([_radial(d, torch.full((5,), r)) for r in (0.2, 0.4, 0.3)], 1), "curv": 1.0}
    out = CH.evaluate_chains(src, {}, method=method, direction="outward")
    assert out["depth1_acc"] == pytest.approx(4 / 5) and out["depth2_acc"] == pytest.approx(3 / 5)
    assert out["text_depth1_acc"] == 1.0 and out["text_depth2_acc"] == 0.0
    inward = CH.evaluate_chains(src, {}, method=method, direction="inward")
    assert inward["depth1_acc"] == pytest.approx(1 / 5)


# ----------------------------------------------------------------------------- composition
def test_composition_hand_computed():
    pos = np.array([1.0, 2.0, 0.0, 5.0, 1.0])
    neg = np.array([0.0, 3.0, 0.0, 1.0, 0.5])  # correct: T F F(tie) T T
    subsets = ["add_obj", "add_obj", "swap_att", "swap_att", "replace_rel"]
    heldout = [True, False, True, False, False]
    out = CO.composition_metrics(pos, neg, subsets, heldout)
    assert out["acc"] == pytest.approx(3 / 5)
    assert out["acc/add_obj"] == 0.5 and out["acc/swap_att"] == 0.5 and out["acc/replace_rel"] == 1.0
    assert out["acc_macro"] == pytest.approx(2 / 3)
    assert out["acc_heldout"] == 0.5 and out["acc_seen"] == pytest.approx(2 / 3)
    assert out["n/add_obj"] == 2.0


def test_evaluate_composition_uses_paired_scores():
    method = M.get("clip")
    g = torch.Generator().manual_seed(3)
    img = torch.nn.functional.normalize(torch.randn(700, 8, generator=g), dim=-1)
    pos = torch.nn.functional.normalize(img + 0.3 * torch.randn(700, 8, generator=g), dim=-1)
    neg = torch.nn.functional.normalize(torch.randn(700, 8, generator=g), dim=-1)
    bench = {"subsets": ["add_obj"] * 700, "heldout": [False] * 700}
    out = CO.evaluate_composition({"image": img, "positive": pos, "negative": neg, "curv": 1.0}, bench, method=method)
    want = ((img * pos).sum(1) > (img * neg).sum(1)).double().mean()
    assert out["acc"] == pytest.approx(float(want)) and out["acc"] > 0.9


# ----------------------------------------------------------------------------- hierarcaps
def test_kendall_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 6))
    y = rng.integers(0, 3, size=(20, 6)).astype(float)  # ties in y
    ours = HC.kendall_tau_b(x, y)
    ref = [scipy.stats.kendalltau(a, b).statistic for a, b in zip(x, y)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert np.isnan(HC.kendall_tau_b(np.ones(4), np.arange(4)))[0]


def test_radius_order_metrics():
    r = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], [1.0, 3.0, 2.0, 4.0]])
    out = HC.radius_order_metrics(r)
    assert out["tau"] == pytest.approx((1 - 1 + 4 / 6) / 3)
    assert out["order_acc"] == pytest.approx(1 / 3)


def test_threshold_retrieval_matches_brute_force():
    method = M.get("meru")
    g = torch.Generator().manual_seed(4)
    img = torch.randn(9, 5, generator=g, dtype=torch.float64)
    caps = torch.randn(30, 5, generator=g, dtype=torch.float64)
    sim = lambda a, b, c: method.similarity(a, b, curv=c)  # noqa: E731
    radius = lorentz.dist0(caps, curv=1.0).numpy()
    qs = (0.2, 0.5, 1.0)
    got = HC.threshold_retrieval(img, caps, sim, torch.tensor(1.0), radius, quantiles=qs, block_elems=60)
    S = sim(img, caps, 1.0).numpy()
    for qi, q in enumerate(qs):
        tau = np.quantile(radius, q)
        masked = np.where(radius[None] <= tau, S, -np.inf)
        np.testing.assert_array_equal(got[:, qi], masked.argmax(1))


def test_evaluate_hierarcaps_perfect_hierarchy():
    """Captions along each image's direction at growing radius, images beyond them: radius
    order is perfect and loosening the threshold retrieves ever more specific own captions."""
    method = M.get("meru")
    n, L = 6, 4
    dirs = torch.eye(n, 8, dtype=torch.float64)
    caps = torch.stack([_radial(dirs, torch.full((n,), 0.5 + 0.5 * lvl)) for lvl in range(L)], 1)
    img = _radial(dirs, torch.full((n,), 3.0))
    out = HC.evaluate_hierarcaps({"image": img, "captions": caps, "curv": 1.0}, {}, method=method,
                                 quantiles=(0.25, 0.5, 0.75, 1.0))
    assert out["tau"] == 1.0 and out["order_acc"] == 1.0
    assert out["hret/own_mean"] == 1.0 and out["hret/level_recall"] == 1.0
    assert out["hret/level_tau"] == pytest.approx(1.0)
    assert out["hret/level@1"] == 3.0 and out["hret/level@0.25"] == 0.0


# ----------------------------------------------------------------------------- ties
def test_zeroshot_ties_are_misses():
    scores = torch.tensor([[0.5, 0.5, 0.0],    # label 0 ties class 1: miss, predicted 1
                           [0.2, 0.7, 0.7],    # label 2 ties class 1: miss, predicted 1
                           [0.1, 0.3, 0.2],    # label 1 strictly best: hit
                           [0.4, 0.4, 0.4]])   # label 1, all tie: miss, predicted 0
    labels = np.array([0, 2, 1, 1])
    out = Z.accuracy_metrics(scores, labels)
    assert out["top1"] == 0.25 and out["mean_per_class_acc"] == pytest.approx((0 + 0.5 + 0) / 3)
    np.testing.assert_array_equal(Z.predictions(scores, labels).numpy(), [1, 1, 1, 0])
    # top-5 counts the wrong classes reaching the true score: all six tie -> rank 5 -> miss
    flat = torch.zeros(3, 6)
    out = Z.accuracy_metrics(flat, np.array([0, 3, 5]))
    assert out["top1"] == 0.0 and out["top5"] == 0.0 and out["mean_per_class_acc"] == 0.0
    # NaN: a NaN true score loses, a NaN wrong score wins
    nan = torch.tensor([[torch.nan, 0.0], [1.0, torch.nan]])
    assert Z.accuracy_metrics(nan, np.array([0, 0]))["top1"] == 0.0
    np.testing.assert_array_equal(Z.predictions(nan, np.array([0, 0])).numpy(), [1, 1])


def test_hierarchy_ties_never_hit_and_average_the_wrong_classes():
    from hyplib.evaluation import hierarchy as H
    from hyplib.tree import Tree

    tree = Tree(parent={"r": None, "a": "r", "b": "r", "x": "a", "y": "a", "z": "b"})
    labels = np.array([0, 1, 2])  # leaves sorted: x, y, z
    # constant scores: each image averages its two wrong leaves. TIE: x->{y 2, z 4}, y->{x 2, z 4},
    # z->{x 4, y 4}; reference J: x->{1, 1/3}, y->{1, 1/3}, z->{1/3, 1/3}
    out = H.hierarchy_from_scores(torch.zeros(3, 3), labels, tree.leaves, tree, modes=("reference",))
    assert out["reference/TIE"] == pytest.approx(10 / 3) and out["reference/J"] == pytest.approx(5 / 9)
    rand = H.expected_random_metrics(tree)
    assert out["reference/TIE"] > rand["TIE"] and out["reference/J"] < rand["J"]
    # image 0 right (strictly), image 1 beaten by z, image 2 tied between x and y above its own z
    scores = torch.tensor([[0.9, 0.1, 0.1], [0.2, 0.2, 0.9], [0.3, 0.3, 0.1]])
    img, cls, wt = H.tied_predictions(scores, labels)
    assert list(zip(img.tolist(), cls.tolist(), wt.tolist())) == [(0, 0, 1.0), (1, 2, 1.0), (2, 0, 0.5), (2, 1, 0.5)]
    out = H.hierarchy_from_scores(scores, labels, tree.leaves, tree)
    assert out["reference/TIE"] == pytest.approx((0 + 4 + 4) / 3)
    assert out["corrected/J"] == pytest.approx((1 + 1 / 5 + 1 / 5) / 3)
    # without ties it equals the metrics of the plain argmax
    strict = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.9], [0.5, 0.3, 0.1]])
    assert H.hierarchy_from_scores(strict, labels, tree.leaves, tree) == pytest.approx(
        H.hierarchy_from_predictions(strict.argmax(1).numpy(), labels, tree.leaves, tree))


def test_threshold_retrieval_ties_go_to_another_image():
    # two images, two captions each; image 0's own caption 1 ties image 1's caption 2
    S = torch.tensor([[0.1, 0.9, 0.9, 0.0],
                      [0.0, 0.2, 0.8, 0.1]])
    sim = lambda a, b, c: S[a[:, 0].long()]  # noqa: E731
    img = torch.tensor([[0.0], [1.0]])
    owner = np.array([0, 0, 1, 1])
    radius = np.array([1.0, 2.0, 3.0, 4.0])
    got = HC.threshold_retrieval(img, torch.zeros(4, 1), sim, None, radius, owner=owner, quantiles=(0.0, 1.0))
    # q=0: only caption 0 -> retrieved (own for image 0, other's for image 1)
    # q=1: image 0: own 0.9 ties other 0.9 -> caption 2 (a miss); image 1: own 0.8 strictly best -> 2
    np.testing.assert_array_equal(got, [[0, 2], [0, 2]])
    m = HC.threshold_metrics(got, owner, np.array([0, 1, 0, 1]), quantiles=(0.0, 1.0), n_levels=2)
    assert m["own@0"] == 0.5 and m["own@1"] == 0.5


def test_radius_order_constant_radii_is_chance():
    out = HC.radius_order_metrics(np.ones((3, 4)))
    assert out["tau"] == 0.0 and out["order_acc"] == 0.0


def test_collapsed_embeddings_score_chance_or_below():
    """Every embedding the same point: each ranking protocol at or below chance."""
    method = M.get("meru")
    v = torch.full((1, 6), 0.3, dtype=torch.float64)
    n = 12
    curv = 1.0
    zs = Z.evaluate_zeroshot({"image": v.expand(n, 6), "classes": v.expand(4, 6), "curv": curv},
                             {"labels": np.arange(n) % 4}, method=method)
    assert zs["mean_per_class_acc"] == 0.0 <= zs["chance"]
    co = CO.evaluate_composition({"image": v.expand(n, 6), "positive": v.expand(n, 6), "negative": v.expand(n, 6),
                                  "curv": curv}, {}, method=method)
    assert co["acc"] == 0.0
    ch = CH.evaluate_chains({**{k: v.expand(n, 6) for k in ("whole", "part", "subpart")}, "curv": curv}, {},
                            method=method)
    assert ch["depth1_acc"] == ch["depth2_acc"] == ch["depth1_acc_opposite"] == 0.0
    hc = HC.evaluate_hierarcaps({"image": v.expand(n, 6), "captions": v.expand(n, 4, 6), "curv": curv}, {},
                                method=method)
    assert hc["tau"] == 0.0 and hc["order_acc"] == 0.0
    assert hc["hret/own_mean"] == 0.0 and hc["hret/level_tau"] == 0.0
