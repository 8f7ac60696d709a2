"""Diagnostics: where the embeddings sit, how many directions they use, and how they move.

* :func:`radius_summary` / :func:`radii_by_kind`: distance to the root per input kind
  (``image``, ``text``, ``box_image``, ``box_text``): summaries and raw arrays (histograms).
* :func:`eigen_spectrum` / :func:`spectrum_summary`: eigenvalues of the covariance of the
  tangent features (``logmap0``; per factor for product), effective rank.
* :func:`factor_norms`: per-factor distance to the root (PHyCLIP), which factors are used.
* :func:`traverse_to_root`: points on the geodesic from each image to the root and the
  nearest text at each step, optionally only among texts whose entailment cone contains the
  image (MERU's filter).
* :func:`read_log` / :func:`trajectory_summary`: curvature, alpha and logit-scale
  trajectories from a training ``log.jsonl``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from hyplib.evaluation import _common as C

KINDS = ("image", "text", "box_image", "box_text")


# --------------------------------------------------------------------------- radii
def radius_summary(r) -> dict:
    """(N,) radii -> mean, std, min, p05, median, p95, max."""
    r = np.asarray(r, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no radii to summarise")
    q = np.quantile(r, [0.05, 0.5, 0.95])
    return {"mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()), "p05": float(q[0]),
            "median": float(q[1]), "p95": float(q[2]), "max": float(r.max())}


def radii_by_kind(embs: Mapping[str, Tensor], method, curv) -> dict[str, np.ndarray]:
    """``{kind: (N_kind, D) embeddings}`` -> ``{kind: (N_kind,) distance to root}``."""
    out = {}
    for kind, x in embs.items():
        x = C.as_float(x, kind)
        C.check_embeddings(x, method, curv, f"{kind} embeddings")
        out[kind] = C.distance_to_root(method, x, curv).double().numpy()
    return out


def radius_metrics(radii: Mapping[str, np.ndarray]) -> dict:
    """Flat ``radius/<kind>/<stat>`` plus ``radius/text_minus_image`` (difference of means;
    MERU's claim is that it is negative)."""
    out = {}
    for kind, r in radii.items():
        for k, v in radius_summary(r).items():
            out[f"radius/{kind}/{k}"] = v
    if "image" in radii and "text" in radii:
        out["radius/text_minus_image"] = float(np.mean(radii["text"]) - np.mean(radii["image"]))
    return out


# --------------------------------------------------------------------------- spectra
def eigen_spectrum(features) -> np.ndarray:
    """(N, D) tangent features -> (D,) covariance eigenvalues, descending (float64)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need (N>=2, D) features for a covariance, got shape {x.shape}")
    x = x - x.mean(0)
    cov = x.T @ x / (x.shape[0] - 1)
    # Clip tiny negatives from round-off: a covariance is positive semi-definite.
    return np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None)


def spectrum_summary(eig: np.ndarray) -> dict:
    """Effective rank ``exp(H(p))`` with ``p = lambda / sum lambda``, dims for 90% variance,
    top-eigenvalue share, total variance."""
    eig = np.asarray(eig, dtype=np.float64)
    total = eig.sum()
    if total <= 0:
        return {"effective_rank": 0.0, "dims90": 0.0, "top1_share": float("nan"), "total_var": 0.0}
    p = eig / total
    nz = p[p > 0]
    return {"effective_rank": float(np.exp(-(nz * np.log(nz)).sum())),
            "dims90": float(np.searchsorted(np.cumsum(p), 0.9) + 1),
            "top1_share": float(p[0]), "total_var": float(total)}


# --------------------------------------------------------------------------- product factors
def factor_norms(x: Tensor, method, curv) -> np.ndarray:
    """(N, k*d) product embeddings -> (N, k) per-factor distance to the root."""
    return C.space(method).factor_radii(C.as_float(x), curv=curv).double().numpy()


def factor_summary(fn: np.ndarray, active_frac: float = 0.1) -> dict:
    """(N, k) per-factor radii -> ``active`` (share of factors whose mean radius exceeds
    ``active_frac`` times the largest factor mean), ``cv`` (coefficient of variation of the
    factor means), ``max_share`` (largest factor mean over the sum)."""
    m = fn.mean(0)
    top = m.max()
    return {"active": float((m > active_frac * top).mean()) if top > 0 else 0.0,
            "cv": float(m.std() / m.mean()) if m.mean() > 0 else float("nan"),
            "max_share": float(top / m.sum()) if m.sum() > 0 else float("nan")}


# --------------------------------------------------------------------------- traversal
def cone_mask(texts: Tensor, images: Tensor, method, curv, min_radius: float = 0.1) -> Tensor:
    """(N_img, M) bool: text ``j``'s entailment cone contains image ``i``
    (``phi(t_j, x_i) <= omega(t_j)``; product: mean over factors of ``phi/omega <= 1``)."""
    return C.space(method).cone_mask(texts, images, curv=curv, min_radius=min_radius)


def traverse_to_root(images: Tensor, texts: Tensor, method, curv, *, steps: int = 10,
                     cone_filter: bool = False, min_radius: float = 0.1, text_owner=None) -> np.ndarray:
    """Nearest text at each of ``steps`` points on the geodesic image -> root.

    Args:
        images: (N, D) image embeddings; texts: (M, D) candidate text embeddings.
        steps: points per path, step 0 = the image, step ``steps-1`` = the root.
        cone_filter: only texts whose cone contains the image are candidates (MERU).
        text_owner: (M,) image index of each text, or None. Given, a text of another image at
            the same distance as the nearest own text is retrieved instead
            (:data:`hyplib.evaluation._common.TIE_RULE`); without it, ties go to the lowest index.

    Returns:
        (N, steps) int text indices; -1 where no text passes the filter.
    """
    space = C.space(method)
    if not space.hyperbolic:
        raise ValueError(f"root traversal needs a hyperbolic method; {method.name!r} is {method.geometry}")
    images, texts = C.as_float(images, "images"), C.as_float(texts, "texts")
    C.check_pair(images, texts, method, curv)
    n = images.shape[0]
    path = space.path_to_root(images, curv=curv, steps=steps)  # (N, steps, D)
    d = space.pairwise_dist(path.reshape(n * steps, -1), texts, curv=curv).reshape(n, steps, -1)
    if cone_filter:
        allowed = cone_mask(texts, images, method, curv, min_radius)  # (N, M)
        d = torch.where(allowed.unsqueeze(1), d, torch.full_like(d, torch.inf))
    if text_owner is None:
        idx = d.argmin(-1)
    else:
        own = torch.as_tensor(np.asarray(text_owner), dtype=torch.long).unsqueeze(0) == torch.arange(n).unsqueeze(1)
        right = own.unsqueeze(1).expand(n, steps, own.shape[1]).reshape(n * steps, -1)
        idx = C.pessimistic_argmax(-d.reshape(n * steps, -1), right).reshape(n, steps)
    if cone_filter:
        idx = torch.where(torch.isfinite(d.amin(-1)), idx, torch.full_like(idx, -1))
    return idx.numpy()


def traversal_metrics(idx: np.ndarray, text_owner: np.ndarray | None = None,
                      text_level: np.ndarray | None = None) -> dict:
    """Summaries of :func:`traverse_to_root` indices (N, S).

    ``distinct``: mean number of distinct texts along a path; ``found``: share of steps with
    a candidate; with ``text_owner`` (M,) ``own``: share of retrieved texts belonging to the
    image; with ``text_level`` (M,) ``level_tau``: Kendall tau-b between closeness of the step
    to the image (S-1 .. 0) and the retrieved level (positive = generic texts near the root).
    """
    from hyplib.evaluation.hierarcaps import kendall_tau_b

    valid = idx >= 0
    out = {"distinct": float(np.mean([len(set(row[row >= 0].tolist())) for row in idx])),
           "found": float(valid.mean())}
    safe = np.where(valid, idx, 0)
    if text_owner is not None:
        own = valid & (np.asarray(text_owner)[safe] == np.arange(idx.shape[0])[:, None])
        out["own"] = float(own.sum() / max(1, valid.sum()))
    if text_level is not None:
        lvl = np.where(valid, np.asarray(text_level, dtype=np.float64)[safe], np.nan)
        closeness = np.arange(idx.shape[1])[::-1].astype(np.float64)
        taus = [kendall_tau_b(closeness[v], row[v])[0] for row, v in zip(lvl, valid) if v.sum() >= 2]
        taus = np.asarray(taus, dtype=np.float64)
        out["level_tau"] = float(np.nanmean(taus)) if np.isfinite(taus).any() else float("nan")
    return out


# --------------------------------------------------------------------------- training logs
def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}_{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _flatten(f"{prefix}_{i}", v, out)
    else:
        out[prefix] = value


def read_log(path: str | Path) -> pd.DataFrame:
    """A training ``log.jsonl`` as a DataFrame, one row per line; nested values flattened
    (``alphas: {"image": a}`` -> ``alphas_image``; ``curv: [c0, c1]`` -> ``curv_0, curv_1``).
    Blank and truncated trailing lines (a run killed mid-write) are skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training log not found: {path}")
    return parse_log(path.read_text())


def parse_log(text: str) -> pd.DataFrame:
    """:func:`read_log` of a log's text (e.g. the copy the evaluation keeps for the figures)."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        flat: dict = {}
        _flatten("", rec, flat)
        rows.append(flat)
    return pd.DataFrame(rows)


def trajectory_summary(log: pd.DataFrame) -> dict:
    """First/last/min/max of every curvature, alpha and logit-scale column of
    :func:`read_log`'s frame, as ``traj/<column>/<stat>``."""
    out = {}
    cols = [c for c in log.columns if c.startswith(("curv", "alpha", "logit_scale"))]
    for col in cols:
        s = pd.to_numeric(log[col], errors="coerce").dropna()
        if s.empty:
            continue
        out.update({f"traj/{col}/first": float(s.iloc[0]), f"traj/{col}/last": float(s.iloc[-1]),
                    f"traj/{col}/min": float(s.min()), f"traj/{col}/max": float(s.max())})
    return out
