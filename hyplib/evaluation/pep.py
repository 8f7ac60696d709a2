"""PEP (ARGENT): separating entailing from non-entailing (parent, child) pairs by the cone.

Score of a pair = ``-phi(parent, child)``, the exterior angle at the parent towards the child
(smaller angle = deeper inside the parent's cone = more entailing). Two variants:

* ``raw``: ``-phi``;
* ``norm``: ``-phi / omega(parent)``, the angle in units of the parent's half-aperture
  (< -1 means outside the cone).

For product embeddings both are averaged over factors (``phi_i`` and ``phi_i / omega_i``).
AUC-ROC and average precision come from scikit-learn; they depend only on the ranking, so
what matters is the pair set and the choice of variant. Ties need no rule of ours: AUC gives a
tied (positive, negative) pair half credit by definition and AP scores a tied block at its
precision, so a constant score gets AUC 0.5 and AP = the share of positives (chance).
Euclidean (CLIP) embeddings have no entailment cones: ValueError.

Per pair type (``meta["pair_types"]``): a type holding both labels is scored on its own; a
positive-only type is scored against all negatives, a negative-only type against all
positives (so each entry answers "how well are these pairs separated from the other
class"). ``in_cone`` is the fraction of the type's pairs with ``phi <= omega(parent)``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import Tensor

from hyplib.evaluation import _common as C

KINDS = {0: "image", 1: "text"}


def pair_angles(parent: Tensor, child: Tensor, method, curv, min_radius: float = 0.1) -> tuple[Tensor, Tensor]:
    """Exterior angle and parent half-aperture of row-aligned pairs.

    Args:
        parent, child: (P, D) embeddings.

    Returns:
        ``phi`` (P,) or (P, k) for product, ``omega`` of the same shape.
    """
    if not C.space(method).hyperbolic:
        raise ValueError(f"PEP needs hyperbolic embeddings (exterior angle, cone aperture); method "
                         f"{method.name!r} is {method.geometry}")
    return C.space(method).cone_angles(parent, child, curv=curv, min_radius=min_radius)


def _auc_ap(labels: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    if labels.min() == labels.max():
        return float("nan"), float("nan")
    return float(roc_auc_score(labels, score)), float(average_precision_score(labels, score))


def pep_metrics(phi, omega, labels, pair_types: Sequence[str] | None = None) -> dict:
    """AUC-ROC / AP of raw and aperture-normalised angles, overall and per pair type.

    Args:
        phi: (P,) or (P, k) exterior angles (factor axis averaged).
        omega: same shape, parent half-apertures.
        labels: (P,) 1 = entailing, 0 = not.
        pair_types: (P,) type names or None.

    Returns:
        ``auc, ap, auc_norm, ap_norm, in_cone_pos, in_cone_neg`` and, per type ``t``,
        ``<t>/auc, <t>/ap, <t>/auc_norm, <t>/ap_norm, <t>/in_cone, <t>/n``.
    """
    phi = np.asarray(phi, dtype=np.float64)
    omega = np.asarray(omega, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if set(np.unique(y)) - {0, 1}:
        raise ValueError(f"labels must be 0/1, got values {np.unique(y)[:5]}")
    if phi.shape != omega.shape or phi.shape[0] != y.shape[0]:
        raise ValueError(f"phi {phi.shape}, omega {omega.shape} and labels {y.shape} disagree")
    if y.min() == y.max():
        raise ValueError("PEP needs both entailing and non-entailing pairs")
    ratio = phi / omega
    inside = (phi <= omega).astype(np.float64)
    if phi.ndim == 2:
        phi, ratio, inside = phi.mean(1), ratio.mean(1), (ratio.mean(1) <= 1).astype(np.float64)
    raw, norm = -phi, -ratio
    out = {}
    out["auc"], out["ap"] = _auc_ap(y, raw)
    out["auc_norm"], out["ap_norm"] = _auc_ap(y, norm)
    out["in_cone_pos"] = float(inside[y == 1].mean())
    out["in_cone_neg"] = float(inside[y == 0].mean())
    if pair_types is not None:
        types = np.asarray([str(t) for t in pair_types])
        if types.shape != y.shape:
            raise ValueError(f"{types.shape[0]} pair_types for {y.shape[0]} pairs")
        for t in sorted(set(types)):
            m = types == t
            if y[m].min() != y[m].max():
                sel = m
            elif y[m][0] == 1:
                sel = m | (y == 0)
            else:
                sel = m | (y == 1)
            out[f"{t}/auc"], out[f"{t}/ap"] = _auc_ap(y[sel], raw[sel])
            out[f"{t}/auc_norm"], out[f"{t}/ap_norm"] = _auc_ap(y[sel], norm[sel])
            out[f"{t}/in_cone"] = float(inside[m].mean())
            out[f"{t}/n"] = float(m.sum())
    return out


def _gather(pairs: np.ndarray, col: int, image: Tensor, text: Tensor) -> Tensor:
    kind, idx = pairs[:, col], pairs[:, col + 1]
    bad = set(np.unique(kind).tolist()) - set(KINDS)
    if bad:
        raise ValueError(f"pair kinds must be 0 (image) or 1 (text), got {sorted(bad)}")
    for k, emb in ((0, image), (1, text)):
        sel = idx[kind == k]
        if sel.size and (sel.min() < 0 or sel.max() >= emb.shape[0]):
            raise ValueError(f"pairs index {KINDS[k]}s outside [0, {emb.shape[0]})")
    out = torch.empty(len(pairs), image.shape[1], dtype=image.dtype)
    m = torch.from_numpy(kind == 0)
    out[m] = image[torch.from_numpy(idx[kind == 0])]
    out[~m] = text[torch.from_numpy(idx[kind == 1])]
    return out


def evaluate_pep(source, benchmark: Mapping, *, method=None, curv=None, batch_size: int = 128,
                 min_radius: float = 0.1) -> dict:
    """PEP benchmark -> AUC/AP dict (see :func:`pep_metrics`).

    ``source``: a model, or ``{"image": (Ni, D), "text": (Nt, D), "curv": ...}``.
    ``benchmark``: ``pairs`` (P, 4) int (parent_kind, parent_idx, child_kind, child_idx),
    ``labels`` (P,), ``images``, ``texts`` [Nt], ``pair_types`` [P].
    """
    C.need(benchmark, ["pairs", "labels"], "the pep benchmark")
    method = C.resolve_method(source, method)
    curv = C.resolve_curv(source, curv)
    if not C.space(method).hyperbolic:
        raise ValueError(f"PEP needs hyperbolic embeddings; method {method.name!r} is {method.geometry}")
    image = C.embeddings(source, "image", lambda: C.encode_images(source, benchmark["images"], batch_size=batch_size))
    text = C.embeddings(source, "text", lambda: C.encode_texts(source, benchmark["texts"], batch_size=2 * batch_size))
    C.check_pair(image, text, method, curv)
    pairs = np.asarray(benchmark["pairs"]).astype(np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 4:
        raise ValueError(f"pairs must be (P, 4), got shape {pairs.shape}")
    parent, child = _gather(pairs, 0, image, text), _gather(pairs, 2, image, text)
    phi, omega = pair_angles(parent, child, method, curv, min_radius)
    return pep_metrics(phi.numpy(), omega.numpy(), benchmark["labels"], benchmark.get("pair_types"))
