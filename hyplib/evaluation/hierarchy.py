"""Hierarchical classification metrics (HyCoCLIP): zero-shot predictions mapped onto a tree.

With ``A(v)`` the ancestor set of leaf ``v``:

* ``reference`` mode (HyCoCLIP's code, for comparison with published numbers): ``A(v)``
  **excludes** the leaf and **includes** the root.
* ``corrected`` mode: ``A(v)`` includes the leaf as well.

Per image (``p`` predicted leaf, ``t`` true leaf), then averaged over images:

* ``TIE`` = tree path length (edges) between ``p`` and ``t`` (mode-independent; 0 if correct).
* ``LCA``: reference ``|A_p| - |A_p & A_t| + 1``; corrected ``|A_p| - |A_p & A_t|``. Both
  count the edges from ``p`` up to the lowest common ancestor when ``p != t``; the
  corrected form is 0 for a correct prediction, the reference form is 1 (as for a sibling).
* ``J`` = ``|A_p & A_t| / |A_p | A_t|``, ``P_H`` = ``|A_p & A_t| / |A_p|``,
  ``R_H`` = ``|A_p & A_t| / |A_t|``.

Ties (:func:`hierarchy_from_scores`): the true class counts as predicted only when it scores
strictly above every wrong class; otherwise the metrics are the mean over the wrong classes
sharing the top score (the expectation under a random draw among them), so a tie is never an
exact hit and a constant model scores at or below :func:`expected_random_metrics`.

Quirk of the reference mode: a sibling confusion scores ``J = P_H = R_H = LCA = 1``, the
same as a correct prediction; the corrected mode scores it below 1 (``LCA = 1`` edges).

All tables are numpy: an ancestor indicator matrix (leaves x nodes) and, for trees of up
to :data:`MAX_TABLE_LEAVES` leaves, per-leaf-pair tables of shared-ancestor counts.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hyplib.tree import Tree

MODES = ("reference", "corrected")
KEYS = ("TIE", "LCA", "J", "P_H", "R_H")
#: Above this many leaves the (L, L) table is skipped and pairs are computed per image.
MAX_TABLE_LEAVES = 4096

_CACHE: dict[int, tuple[Tree, dict]] = {}


def _tables(tree: Tree) -> dict:
    """Per-tree arrays, cached by identity: ``depth`` (L,) edges root->leaf, ``anc`` (L, N)
    uint8 indicator of ancestors excluding the leaf (root included), and when small enough
    ``common`` (L, L) int32 counts of shared ancestors excluding the leaves themselves."""
    hit = _CACHE.get(id(tree))
    if hit is not None and hit[0] is tree:
        return hit[1]
    nodes = list(tree.parent)
    index = {n: i for i, n in enumerate(nodes)}
    L = len(tree.leaves)
    anc = np.zeros((L, len(nodes)), dtype=np.uint8)
    for i, leaf in enumerate(tree.leaves):
        anc[i, [index[a] for a in tree.ancestors(leaf)]] = 1
    depth = anc.sum(1).astype(np.int64)
    if np.any(depth == 0):
        raise ValueError("the tree's root is a leaf: a single-node tree has no hierarchy to score")
    out = {"depth": depth, "anc": anc}
    if L <= MAX_TABLE_LEAVES:
        a = anc.astype(np.float32)
        # float32 sums of 0/1 are exact far beyond any tree depth.
        out["common"] = np.rint(a @ a.T).astype(np.int32)
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[id(tree)] = (tree, out)
    return out


def _shared(tab: dict, p: np.ndarray, t: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """|A_p & A_t| (excluding the leaves) for index arrays p, t (n,) -> (n,) int64."""
    if "common" in tab:
        return tab["common"][p, t].astype(np.int64)
    out = np.empty(len(p), dtype=np.int64)
    for s in range(0, len(p), chunk):
        out[s:s + chunk] = (tab["anc"][p[s:s + chunk]] & tab["anc"][t[s:s + chunk]]).sum(1)
    return out


def _pair_metrics(depth: np.ndarray, p: np.ndarray, t: np.ndarray, shared: np.ndarray, mode: str) -> dict:
    """Per-pair metric arrays from leaf depths and shared-ancestor counts (leaf excluded)."""
    same = (p == t).astype(np.int64)
    size_p, size_t = depth[p], depth[t]
    # Shared set including the leaves: a leaf is never an ancestor of another leaf, so the
    # leaf itself is shared only when p == t.
    shared_incl = shared + same
    depth_lca = np.where(same == 1, size_p, shared - 1)  # shared ancestors = root..lca
    tie = size_p + size_t - 2 * depth_lca
    if mode == "reference":
        inter, ap, at = shared, size_p, size_t
        lca = ap - inter + 1
    elif mode == "corrected":
        inter, ap, at = shared_incl, size_p + 1, size_t + 1
        lca = ap - inter
    else:
        raise ValueError(f"mode={mode!r} unknown; choose one of {MODES}")
    union = ap + at - inter
    return {"TIE": tie.astype(np.float64), "LCA": lca.astype(np.float64), "J": inter / union,
            "P_H": inter / ap, "R_H": inter / at}


def _indices(x, L: int, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array of leaf indices, got shape {arr.shape} "
                         f"dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= L):
        raise ValueError(f"{name} has leaf indices outside [0, {L}): min {arr.min()}, max {arr.max()}")
    return arr.astype(np.int64)


def hierarchical_metrics(pred, target, tree: Tree, mode: str = "reference", *, per_image: bool = False) -> dict:
    """Tree metrics of leaf predictions, averaged over images.

    Args:
        pred: (N,) int predicted leaf indices into ``tree.leaves``.
        target: (N,) int true leaf indices into ``tree.leaves``.
        tree: the taxonomy.
        mode: ``"reference"`` (leaf excluded from A(v)) or ``"corrected"`` (included).
        per_image: also return the (N,) arrays under ``"per_image"``.

    Returns:
        ``{"TIE", "LCA", "J", "P_H", "R_H"}`` floats (means over images).
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} unknown; choose one of {MODES}")
    L = len(tree.leaves)
    p, t = _indices(pred, L, "pred"), _indices(target, L, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target differ in length: {p.shape[0]} vs {t.shape[0]}")
    if p.size == 0:
        raise ValueError("no predictions to score")
    tab = _tables(tree)
    arrays = _pair_metrics(tab["depth"], p, t, _shared(tab, p, t), mode)
    out = {k: float(arrays[k].mean()) for k in KEYS}
    if per_image:
        out["per_image"] = arrays
    return out


def expected_random_metrics(tree: Tree, mode: str = "reference") -> dict:
    """Exact expectation of :func:`hierarchical_metrics` for a uniform-random predictor and a
    uniform target (each leaf equally likely, independently): the mean over all (L, L) pairs."""
    tab = _tables(tree)
    L = len(tree.leaves)
    p, t = np.repeat(np.arange(L), L), np.tile(np.arange(L), L)
    sums = dict.fromkeys(KEYS, 0.0)
    step = 1 << 20
    for s in range(0, L * L, step):
        ps, ts = p[s:s + step], t[s:s + step]
        arrays = _pair_metrics(tab["depth"], ps, ts, _shared(tab, ps, ts), mode)
        for k in KEYS:
            sums[k] += float(arrays[k].sum())
    return {k: v / (L * L) for k, v in sums.items()}


def leaf_index_map(class_ids: Sequence[str], tree: Tree) -> np.ndarray:
    """(C,) indices into ``tree.leaves`` of a benchmark's ``class_ids``.

    Raises ValueError naming the mismatch unless the class ids are exactly the tree's leaves
    (any order; the map reorders).
    """
    class_ids = [str(c) for c in class_ids]
    leaves = [str(v) for v in tree.leaves]
    if len(set(class_ids)) != len(class_ids):
        dup = sorted({c for c in class_ids if class_ids.count(c) > 1})
        raise ValueError(f"class_ids repeat ids {dup[:5]}")
    leaf_set, class_set = set(leaves), set(class_ids)
    not_leaves = [c for c in class_ids if c not in leaf_set]
    missing = [v for v in leaves if v not in class_set]
    if not_leaves or missing:
        internal = [c for c in not_leaves if c in tree.parent]
        raise ValueError(
            f"benchmark classes do not match the tree's leaves: {len(not_leaves)} class_ids are not leaves "
            f"(e.g. {not_leaves[:5]}; {len(internal)} of them are internal nodes), {len(missing)} leaves have "
            f"no class (e.g. {missing[:5]})")
    pos = {v: i for i, v in enumerate(leaves)}
    return np.array([pos[c] for c in class_ids], dtype=np.int64)


def hierarchy_from_predictions(pred_class, labels, class_ids: Sequence[str], tree: Tree,
                               modes: Sequence[str] = MODES) -> dict:
    """Hierarchical metrics of zero-shot class predictions.

    Args:
        pred_class: (N,) predicted class indices into ``class_ids``.
        labels: (N,) true class indices into ``class_ids``.
        class_ids: (C,) tree leaf ids of the classes.
        tree: the taxonomy; its leaves must be exactly ``class_ids``.
        modes: which modes to report.

    Returns:
        flat dict ``"<mode>/<metric>"`` (e.g. ``"reference/TIE"``).
    """
    mapping = leaf_index_map(class_ids, tree)
    C = len(mapping)
    pc, lab = _indices(pred_class, C, "pred_class"), _indices(labels, C, "labels")
    out = {}
    for mode in modes:
        for k, v in hierarchical_metrics(mapping[pc], mapping[lab], tree, mode).items():
            out[f"{mode}/{k}"] = v
    return out


def _tied_blocks(scores, labels, block_elems: int = 1 << 22):
    """Blocks of :func:`tied_predictions`' triples, a few million pairs at most each."""
    import torch

    from hyplib.evaluation import _common as C

    s = torch.as_tensor(np.asarray(scores) if not isinstance(scores, torch.Tensor) else scores)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    n, c = s.shape
    rows = max(1, block_elems // max(1, c))
    for b in range(0, n, rows):
        right = torch.nn.functional.one_hot(y[b:b + rows], c).bool()
        r, w = C.split_right_wrong(s[b:b + rows], right)
        best_w = w.amax(1, keepdim=True)
        hit = (r.amax(1, keepdim=True) > best_w) | ~(~right).any(1, keepdim=True)
        chosen = torch.where(hit, right, (w == best_w) & ~right)
        i, k = chosen.nonzero(as_tuple=True)
        yield i.numpy() + b, k.numpy(), 1.0 / chosen.sum(1)[i].double().numpy()


def tied_predictions(scores, labels, block_elems: int = 1 << 22):
    """Where ties leave the prediction open: ``(image, class, weight)`` triples.

    An image whose true class scores strictly above every wrong class is predicted right
    (weight 1). Otherwise its prediction is one of the wrong classes sharing the top wrong
    score, each with weight ``1/#tied``: the expectation under a random draw among them.
    The true class never wins a tie (:data:`hyplib.evaluation._common.TIE_RULE`).

    Returns:
        three (P,) arrays: image index, class index (int64), weight (float64); the weights of
        each image sum to 1.
    """
    blocks = list(_tied_blocks(scores, labels, block_elems))
    return tuple(np.concatenate([b[j] for b in blocks]) for j in range(3))


def hierarchy_from_scores(scores, labels, class_ids: Sequence[str], tree: Tree, modes: Sequence[str] = MODES,
                          block_elems: int = 1 << 22) -> dict:
    """Hierarchical metrics of zero-shot scores (N, C), ties resolved as in
    :func:`tied_predictions`: a tie with the true class is never an exact hit, and a tie among
    wrong classes scores the mean over them. A constant score matrix therefore gets the mean
    over all *wrong* leaves, which is at or below the uniform-random baseline
    (:func:`expected_random_metrics`) on every metric. Memory stays bounded: the (image,
    class) pairs are scored in blocks of about ``block_elems``.

    Returns:
        flat dict ``"<mode>/<metric>"``, as :func:`hierarchy_from_predictions`.
    """
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} unknown; choose one of {MODES}")
    mapping = leaf_index_map(class_ids, tree)
    n_cls = len(mapping)
    lab = _indices(labels, n_cls, "labels")
    shape = tuple(np.shape(scores))
    if shape != (len(lab), n_cls):
        raise ValueError(f"scores must be (N={len(lab)}, C={n_cls}), got shape {shape}")
    if lab.size == 0:
        raise ValueError("no predictions to score")
    tab = _tables(tree)
    sums = {mode: dict.fromkeys(KEYS, 0.0) for mode in modes}
    for img, cls, wt in _tied_blocks(scores, lab, block_elems):
        p, t = mapping[cls], mapping[lab[img]]
        shared = _shared(tab, p, t)
        for mode in modes:
            arrays = _pair_metrics(tab["depth"], p, t, shared, mode)
            for k in KEYS:
                sums[mode][k] += float(arrays[k] @ wt)
    return {f"{mode}/{k}": v / len(lab) for mode in modes for k, v in sums[mode].items()}


def evaluate_hierarchy(source, benchmark: Mapping, *, tree: Tree | None = None, modes: Sequence[str] = MODES,
                       **zeroshot_kw) -> dict:
    """Zero-shot benchmark -> hierarchical metrics of the top-1 predictions.

    Ties are resolved by :func:`hierarchy_from_scores`: never in favour of the true class.

    Args:
        source: a model or precomputed embeddings, as for
            :func:`hyplib.evaluation.zeroshot.zeroshot_scores` (``zeroshot_kw`` go there:
            ``method``, ``curv``, ``score``, ``prompt_agg``, ``batch_size``).
        benchmark: ``load_benchmark(dir, "zeroshot")`` (needs ``class_ids``).
        tree: the taxonomy (e.g. ``Tree`` from the ``taxonomy`` benchmark or
            ``hyplib.data.wordnet.imagenet_tree()``); default ``benchmark["tree"]``.
    """
    from hyplib.evaluation.zeroshot import zeroshot_scores

    tree = tree if tree is not None else benchmark.get("tree")
    if tree is None:
        raise ValueError("evaluate_hierarchy needs the taxonomy: pass tree=... or put a Tree under benchmark['tree']")
    if "class_ids" not in benchmark:
        raise ValueError("the zeroshot benchmark lacks 'class_ids' (tree leaf id of each class)")
    leaf_index_map(benchmark["class_ids"], tree)  # fail on a class/tree mismatch before encoding
    scores, labels = zeroshot_scores(source, benchmark, **zeroshot_kw)
    return hierarchy_from_scores(scores, labels, benchmark["class_ids"], tree, modes)
