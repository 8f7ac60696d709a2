"""Hierarchical metrics: hand-computed values, set-based brute force, the sibling quirk,
class/tree mismatches and the random-predictor sanity figures on the ImageNet tree."""
import itertools

import numpy as np
import pytest
import torch

from hyplib.evaluation import hierarchy as H
from hyplib.tree import Tree

#   root
#   |- a -- a1, a2
#   `- b -- b1, c -- c1
PARENT = {"root": None, "a": "root", "b": "root", "a1": "a", "a2": "a", "b1": "b", "c": "b", "c1": "c"}
LEAVES = ["a1", "a2", "b1", "c1"]


@pytest.fixture
def tree():
    return Tree(parent=dict(PARENT), leaves=list(LEAVES))


# (pred, target) -> hand-computed reference and corrected values
CASES = {
    ("a2", "a1"): {"reference": dict(TIE=2, LCA=1, J=1, P_H=1, R_H=1),
                   "corrected": dict(TIE=2, LCA=1, J=2 / 4, P_H=2 / 3, R_H=2 / 3)},
    ("c1", "a1"): {"reference": dict(TIE=5, LCA=3, J=1 / 4, P_H=1 / 3, R_H=1 / 2),
                   "corrected": dict(TIE=5, LCA=3, J=1 / 6, P_H=1 / 4, R_H=1 / 3)},
    ("a1", "c1"): {"reference": dict(TIE=5, LCA=2, J=1 / 4, P_H=1 / 2, R_H=1 / 3),
                   "corrected": dict(TIE=5, LCA=2, J=1 / 6, P_H=1 / 3, R_H=1 / 4)},
    ("b1", "c1"): {"reference": dict(TIE=3, LCA=1, J=2 / 3, P_H=1, R_H=2 / 3),
                   "corrected": dict(TIE=3, LCA=1, J=2 / 5, P_H=2 / 3, R_H=2 / 4)},
    ("c1", "c1"): {"reference": dict(TIE=0, LCA=1, J=1, P_H=1, R_H=1),
                   "corrected": dict(TIE=0, LCA=0, J=1, P_H=1, R_H=1)},
}


@pytest.mark.parametrize("mode", H.MODES)
def test_hand_computed_pairs(tree, mode):
    pairs = list(CASES)
    pred = np.array([LEAVES.index(p) for p, _ in pairs])
    target = np.array([LEAVES.index(t) for _, t in pairs])
    out = H.hierarchical_metrics(pred, target, tree, mode, per_image=True)
    for i, pair in enumerate(pairs):
        for k, v in CASES[pair][mode].items():
            assert out["per_image"][k][i] == pytest.approx(v), (pair, k)
    for k in H.KEYS:
        assert out[k] == pytest.approx(np.mean([CASES[p][mode][k] for p in pairs]))


def test_sibling_quirk(tree):
    pred, target = np.array([1]), np.array([0])  # a2 predicted for a1
    ref = H.hierarchical_metrics(pred, target, tree, "reference")
    cor = H.hierarchical_metrics(pred, target, tree, "corrected")
    for k in ("J", "P_H", "R_H", "LCA"):
        assert ref[k] == 1.0
    for k in ("J", "P_H", "R_H"):
        assert cor[k] < 1.0
    assert cor["LCA"] == 1.0 and H.hierarchical_metrics(target, target, tree, "corrected")["LCA"] == 0.0


def _random_tree(rng, n_nodes=40):
    parent = {"n0": None}
    for i in range(1, n_nodes):
        parent[f"n{i}"] = f"n{rng.integers(0, i)}"
    return Tree(parent=parent)


def _brute(tree, p, t, mode):
    """Sets and an explicit path walk, independent of the vectorised tables."""
    inc = mode == "corrected"
    ap, at = set(tree.ancestors(p, include_self=inc)), set(tree.ancestors(t, include_self=inc))
    path_p, path_t = tree.ancestors(p, include_self=True), tree.ancestors(t, include_self=True)
    lca = next(n for n in path_p if n in set(path_t))
    tie = path_p.index(lca) + path_t.index(lca)
    inter = len(ap & at)
    lca_m = len(ap) - inter + (0 if inc else 1)
    return dict(TIE=tie, LCA=lca_m, J=inter / len(ap | at), P_H=inter / len(ap), R_H=inter / len(at))


@pytest.mark.parametrize("mode", H.MODES)
def test_matches_set_brute_force_and_expectation(mode):
    rng = np.random.default_rng(0)
    tree = _random_tree(rng)
    L = len(tree.leaves)
    pred, target = rng.integers(0, L, 200), rng.integers(0, L, 200)
    out = H.hierarchical_metrics(pred, target, tree, mode)
    brute = [_brute(tree, tree.leaves[p], tree.leaves[t], mode) for p, t in zip(pred, target)]
    for k in H.KEYS:
        assert out[k] == pytest.approx(np.mean([b[k] for b in brute]), rel=1e-12)
    exp = H.expected_random_metrics(tree, mode)
    allp = [_brute(tree, a, b, mode) for a, b in itertools.product(tree.leaves, tree.leaves)]
    for k in H.KEYS:
        assert exp[k] == pytest.approx(np.mean([b[k] for b in allp]), rel=1e-12)


def test_large_tree_path_without_table(monkeypatch):
    rng = np.random.default_rng(1)
    tree = _random_tree(rng, 60)
    pred, target = rng.integers(0, len(tree.leaves), 50), rng.integers(0, len(tree.leaves), 50)
    with_table = H.hierarchical_metrics(pred, target, tree, "corrected")
    H._CACHE.clear()
    monkeypatch.setattr(H, "MAX_TABLE_LEAVES", 1)
    without = H.hierarchical_metrics(pred, target, tree, "corrected")
    H._CACHE.clear()
    assert with_table == pytest.approx(without)


def test_evaluate_hierarchy_maps_class_ids(tree):
    class_ids = ["c1", "a1", "b1", "a2"]  # permuted order
    pred_class = np.array([3, 0])  # a2, c1
    labels = np.array([1, 2])  # a1, b1
    out = H.hierarchy_from_predictions(pred_class, labels, class_ids, tree, modes=("reference",))
    # (a2 | a1): TIE 2;  (c1 | b1): TIE 3
    assert out["reference/TIE"] == pytest.approx(2.5)
    assert out["reference/LCA"] == pytest.approx((1 + 2) / 2)
    # The same through evaluate_hierarchy on precomputed embeddings: images sit on their
    # predicted class's direction, so the top-1 predictions are a2 and c1.
    from hyplib import methods as M

    dirs = torch.eye(4, dtype=torch.float64)
    classes = 0.5 * dirs
    images = 2.0 * dirs[[3, 0]]
    bench = {"labels": labels, "class_ids": class_ids, "classnames": class_ids}
    got = H.evaluate_hierarchy({"image": images, "classes": classes, "curv": 1.0}, bench, tree=tree,
                               method=M.get("meru"), modes=("reference",))
    assert got == pytest.approx(out)
    with pytest.raises(ValueError, match="cow"):
        H.evaluate_hierarchy({"image": images, "classes": classes, "curv": 1.0},
                             {**bench, "class_ids": ["c1", "a1", "b1", "cow"]}, tree=tree, method=M.get("meru"))


def test_class_tree_mismatch_names_ids(tree):
    with pytest.raises(ValueError, match="'a'.*internal|internal"):
        H.leaf_index_map(["a1", "a2", "b1", "a"], tree)
    with pytest.raises(ValueError, match="c1"):
        H.leaf_index_map(["a1", "a2", "b1"], tree)
    with pytest.raises(ValueError, match="repeat"):
        H.leaf_index_map(["a1", "a1", "b1", "c1"], tree)
    with pytest.raises(ValueError, match="outside"):
        H.hierarchical_metrics(np.array([4]), np.array([0]), tree)
    with pytest.raises(ValueError, match="mode"):
        H.hierarchical_metrics(np.array([0]), np.array([0]), tree, "bogus")


def test_imagenet_random_predictor():
    wordnet = pytest.importorskip("hyplib.data.wordnet", reason="hyplib.data.wordnet (issue 4) not present")
    tree = wordnet.imagenet_tree()
    assert len(tree.leaves) == 1000
    ref = H.expected_random_metrics(tree, "reference")
    assert ref["TIE"] == pytest.approx(11.4, abs=0.15)
    assert ref["LCA"] == pytest.approx(5.7, abs=0.1)
    assert ref["J"] == pytest.approx(0.31, abs=0.015)
    assert ref["P_H"] == pytest.approx(0.47, abs=0.02)
    assert ref["R_H"] == pytest.approx(0.47, abs=0.02)
    # A seeded sample of a uniform-random predictor agrees with the exact expectation.
    rng = np.random.default_rng(0)
    sample = H.hierarchical_metrics(rng.integers(0, 1000, 20000), rng.integers(0, 1000, 20000), tree)
    for k in H.KEYS:
        assert sample[k] == pytest.approx(ref[k], rel=0.02)
