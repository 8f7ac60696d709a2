"""HierarCaps-style evaluation: 4-level caption chains per image (level 0 generic .. 3 specific).

1. **Radius order.** Per image, Kendall's tau-b between the captions' distance to the root and
   their level, averaged over images (``tau``; +1 = radius grows with specificity; an image
   whose four radii are equal counts 0). Also the fraction of images whose radii strictly
   increase with level (``order_acc``; a tie is a failure) and the mean radius per level.

2. **Hierarchical retrieval over radius thresholds** (protocol chosen here, documented since
   the HierarCaps paper's exact one is not reproduced): the candidates are all captions of
   all images at all levels. For thresholds ``tau_q`` = the ``q``-quantiles of the candidate
   radii (``q`` in ``quantiles``, the last 1.0 = no restriction), each image retrieves the
   best-scoring caption among those with radius ``<= tau_q``. Reported per ``q``:
   ``own@q`` (the retrieved caption is one of the image's own four) and ``level@q`` (mean
   level of the retrieved caption); summaries: ``own_mean`` (mean of ``own@q``),
   ``level_recall`` (distinct own levels retrieved over all thresholds / number of levels,
   averaged over images) and ``level_tau`` (Kendall tau-b between threshold rank and the
   retrieved caption's level, averaged over images, 0 where the level never changes: a good
   hierarchy retrieves more specific captions as the radius bound loosens). Ties between an
   image's own caption and another image's are broken against the own one
   (:data:`hyplib.evaluation._common.TIE_RULE`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from hyplib.evaluation import _common as C

QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def kendall_tau_b(x, y) -> np.ndarray:
    """Row-wise Kendall tau-b of (N, n) against (N, n) (or (n,) broadcast); NaN where a row
    is constant in either argument."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x, y = np.broadcast_arrays(np.atleast_2d(x), np.atleast_2d(y))
    iu = np.triu_indices(x.shape[1], k=1)
    sx = np.sign(x[:, :, None] - x[:, None, :])[:, iu[0], iu[1]]
    sy = np.sign(y[:, :, None] - y[:, None, :])[:, iu[0], iu[1]]
    num = (sx * sy).sum(1)
    den = np.sqrt((sx != 0).sum(1).astype(np.float64) * (sy != 0).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def radius_order_metrics(radii) -> dict:
    """(N, L) caption radii, column = level -> ``tau``, ``order_acc``, ``radius_L*``."""
    r = np.asarray(radii, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 2:
        raise ValueError(f"radii must be (N, L>=2), got shape {r.shape}")
    # An image whose captions all sit at one radius orders nothing: tau 0 (chance), not NaN.
    tau = np.nan_to_num(kendall_tau_b(r, np.arange(r.shape[1])), nan=0.0)
    out = {"tau": float(tau.mean()),
           "order_acc": float(np.all(np.diff(r, axis=1) > 0, axis=1).mean())}
    for lvl in range(r.shape[1]):
        out[f"radius_L{lvl}"] = float(r[:, lvl].mean())
    return out


def threshold_retrieval(image: Tensor, captions: Tensor, sim, curv, cap_radius, *, owner=None,
                        quantiles: Sequence[float] = QUANTILES, block_elems: int = 1 << 22) -> np.ndarray:
    """Index of the best caption within each radius threshold.

    Args:
        image: (N, D); captions: (M, D) candidates; cap_radius: (M,) their distance to root.
        sim: ``(b, D) x (M, D) -> (b, M)`` scores.
        owner: (M,) image index of each caption, or None. Given, ties are broken
            pessimistically (:data:`hyplib.evaluation._common.TIE_RULE`): when another image's
            caption scores as high as the image's best own one, the other's is retrieved.
            Without it, ties go to the caption retrieved by ``torch.cummax``.

    Returns:
        (N, Q) int caption indices (-1 where no caption lies under the threshold).
    """
    r = torch.as_tensor(np.asarray(cap_radius), dtype=torch.float64)
    order = torch.argsort(r, stable=True)
    thresholds = torch.quantile(r, torch.as_tensor(quantiles, dtype=torch.float64))
    counts = torch.searchsorted(r[order], thresholds, right=True)  # captions with radius <= tau
    out = np.full((image.shape[0], len(quantiles)), -1, dtype=np.int64)
    rows = max(1, block_elems // (max(1, captions.shape[0]) * getattr(sim, "width", 1)))
    own_sorted = None if owner is None else torch.as_tensor(np.asarray(owner), dtype=torch.long)[order]
    for s in range(0, image.shape[0], rows):
        S = sim(image[s:s + rows], captions, curv).float()[:, order]
        if own_sorted is None:
            _, arg = torch.cummax(S, dim=1)  # best among the first n sorted-by-radius captions
        else:
            right = own_sorted.unsqueeze(0) == torch.arange(s, s + S.shape[0]).unsqueeze(1)
            S_right, S_wrong = C.split_right_wrong(S, right)
            best_r, arg_r = torch.cummax(S_right, dim=1)
            best_w, arg_w = torch.cummax(S_wrong, dim=1)
            arg = torch.where(best_r > best_w, arg_r, arg_w)  # own caption only when strictly better
        for qi, n in enumerate(counts.tolist()):
            if n > 0:
                out[s:s + rows, qi] = order[arg[:, n - 1]].numpy()
    return out


def threshold_metrics(retrieved: np.ndarray, owner: np.ndarray, level: np.ndarray,
                      quantiles: Sequence[float] = QUANTILES, n_levels: int = 4) -> dict:
    """Summaries of :func:`threshold_retrieval`'s (N, Q) indices given each caption's owning
    image ``owner`` (M,) and ``level`` (M,)."""
    n = retrieved.shape[0]
    valid = retrieved >= 0
    idx = np.where(valid, retrieved, 0)
    own = valid & (owner[idx] == np.arange(n)[:, None])
    lvl = np.where(valid, level[idx], np.nan)
    out = {}
    for qi, q in enumerate(quantiles):
        out[f"own@{q:g}"] = float(own[:, qi].mean())
        out[f"level@{q:g}"] = float(np.nanmean(lvl[:, qi])) if valid[:, qi].any() else float("nan")
    out["own_mean"] = float(own.mean())
    recalled = [len(set(lvl[i, own[i]].astype(int).tolist())) / n_levels for i in range(n)]
    out["level_recall"] = float(np.mean(recalled))
    # Retrieving one level at every threshold shows no trend: tau 0 (chance), not left out.
    tau = np.nan_to_num(kendall_tau_b(np.arange(len(quantiles)), np.where(valid, lvl, -1.0)), nan=0.0)
    out["level_tau"] = float(tau.mean())
    return out


def evaluate_hierarcaps(source, benchmark: Mapping, *, method=None, curv=None, score: str = "method",
                        quantiles: Sequence[float] = QUANTILES, batch_size: int = 128) -> dict:
    """HierarCaps benchmark -> radius-order and threshold-retrieval metrics.

    ``source``: a model, or ``{"image": (N, D), "captions": (N, L, D), "curv"}``.
    ``benchmark``: ``images``, meta ``captions`` [[level0 .. level3], ...].
    Keys: ``tau, order_acc, radius_L*`` and ``hret/own@q, hret/level@q, hret/own_mean,
    hret/level_recall, hret/level_tau``.
    """
    method = C.resolve_method(source, method)
    curv = C.resolve_curv(source, curv)
    image = C.embeddings(source, "image", lambda: C.encode_images(source, benchmark["images"], batch_size=batch_size))
    if C.is_model(source):
        chains = [list(c) for c in benchmark["captions"]]
        if not chains or any(len(c) != len(chains[0]) for c in chains):
            raise ValueError("hierarcaps captions must be equal-length lists of levels")
        caps = C.encode_texts(source, [t for c in chains for t in c], batch_size=2 * batch_size)
        caps = caps.reshape(len(chains), len(chains[0]), -1)
    else:
        caps = C.as_float(source["captions"], "captions")
    if caps.dim() != 3 or caps.shape[0] != image.shape[0]:
        raise ValueError(f"caption embeddings must be (N={image.shape[0]}, L, D), got {tuple(caps.shape)}")
    n, L, d = caps.shape
    flat = caps.reshape(n * L, d)
    C.check_pair(image, flat, method, curv)
    radius = C.distance_to_root(method, flat, curv)
    out = radius_order_metrics(radius.reshape(n, L).numpy())
    owner, level = np.repeat(np.arange(n), L), np.tile(np.arange(L), n)
    retrieved = threshold_retrieval(image, flat, C.similarity_fn(method, score), curv, radius.numpy(),
                                    owner=owner, quantiles=quantiles)
    for k, v in threshold_metrics(retrieved, owner, level, quantiles, L).items():
        out[f"hret/{k}"] = v
    return out
