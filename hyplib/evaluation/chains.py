"""Hierarchy chains (ATMG): is distance to the root ordered along whole -> part -> sub-part?

A chain of embeddings ``(x_0, x_1, ..., x_L)`` is correct when ``r(x_i) = d(O, x_i)`` is
*strictly* monotone along it:

* ``direction="outward"``: ``r_0 < r_1 < ...`` (parts farther from the root; ATMG);
* ``direction="inward"``: ``r_0 > r_1 > ...`` (parts closer; HyCoCLIP's boxes).

Depth 1 is the chain whole -> part, depth 2 whole -> part -> sub-part. Text chains are
adjective -> noun phrase -> caption (general -> specific), scored with ``text_direction``
(default outward: specific text farther from the root, as MERU/HyCoCLIP train it).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from hyplib.evaluation import _common as C

DIRECTIONS = ("outward", "inward")


def chain_accuracy(radii, direction: str = "outward") -> float:
    """Fraction of chains whose radii (N, L) are strictly ordered along axis 1."""
    r = np.asarray(radii, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 2:
        raise ValueError(f"radii must be (N, L>=2), got shape {r.shape}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r} unknown; choose one of {DIRECTIONS}")
    gaps = np.diff(r, axis=1)
    ok = np.all(gaps > 0, axis=1) if direction == "outward" else np.all(gaps < 0, axis=1)
    return float(ok.mean())


def chain_metrics(radii, direction: str = "outward", prefix: str = "") -> dict:
    """Depth-1 (levels 0-1) and, with 3 levels, depth-2 (0-1-2) accuracy in ``direction`` and
    in the opposite one (``*_opposite``), mean radius per level and the mean gap between
    consecutive levels (signed by ``direction``)."""
    r = np.asarray(radii, dtype=np.float64)
    other = DIRECTIONS[1 - DIRECTIONS.index(direction)] if direction in DIRECTIONS else direction
    out = {f"{prefix}depth1_acc": chain_accuracy(r[:, :2], direction),
           f"{prefix}depth1_acc_opposite": chain_accuracy(r[:, :2], other)}
    if r.shape[1] >= 3:
        out[f"{prefix}depth2_acc"] = chain_accuracy(r[:, :3], direction)
        out[f"{prefix}depth2_acc_opposite"] = chain_accuracy(r[:, :3], other)
    sign = 1.0 if direction == "outward" else -1.0
    for lvl in range(r.shape[1]):
        out[f"{prefix}radius_L{lvl}"] = float(r[:, lvl].mean())
    for lvl in range(r.shape[1] - 1):
        out[f"{prefix}gap_L{lvl}{lvl + 1}"] = float(sign * (r[:, lvl + 1] - r[:, lvl]).mean())
    return out


def evaluate_chains(source, benchmark: Mapping, *, method=None, curv=None, direction: str = "outward",
                    text_direction: str = "outward", batch_size: int = 128) -> dict:
    """Chains benchmark -> image and text chain accuracies.

    ``source``: a model, or ``{"whole", "part", "subpart": (N, D) image embeddings,
    "text_chains": (Nt, 3, D) text embeddings, "curv"}`` (either group may be absent).
    ``benchmark``: ``whole, part, subpart`` uint8 crops, meta ``text_chains`` [[adj, np, cap]].

    Returns:
        ``depth1_acc, depth2_acc, radius_L*, gap_L*`` for images and the same keys prefixed
        ``text_`` for text chains.
    """
    method = C.resolve_method(source, method)
    curv = C.resolve_curv(source, curv)
    out = {}
    levels = [k for k in ("whole", "part", "subpart")
              if k in benchmark or (isinstance(source, Mapping) and k in source)]
    if levels:
        if levels[:2] != ["whole", "part"]:
            raise ValueError(f"image chains need 'whole' and 'part' (and optionally 'subpart'), found {levels}")
        radii = []
        for k in levels:
            x = C.embeddings(source, k, lambda k=k: C.encode_images(source, benchmark[k], batch_size=batch_size))
            C.check_embeddings(x, method, curv, f"{k} embeddings")
            radii.append(C.distance_to_root(method, x, curv))
        if len({r.shape[0] for r in radii}) != 1:
            raise ValueError(f"chain levels differ in size: {[r.shape[0] for r in radii]}")
        out.update(chain_metrics(torch.stack(radii, 1).numpy(), direction))
    has_text = "text_chains" in benchmark or (isinstance(source, Mapping) and "text_chains" in source)
    if has_text:
        if C.is_model(source):
            chains = [list(c) for c in benchmark["text_chains"]]
            if any(len(c) != len(chains[0]) or len(c) < 2 for c in chains):
                raise ValueError("text_chains must all have the same length >= 2")
            flat = [t for c in chains for t in c]
            x = C.encode_texts(source, flat, batch_size=2 * batch_size).reshape(len(chains), len(chains[0]), -1)
        else:
            x = C.as_float(source["text_chains"], "text_chains")
        if x.dim() != 3:
            raise ValueError(f"text chain embeddings must be (N, L, D), got shape {tuple(x.shape)}")
        C.check_embeddings(x.reshape(-1, x.shape[-1]), method, curv, "text chain embeddings")
        r = C.distance_to_root(method, x.reshape(-1, x.shape[-1]), curv).reshape(x.shape[0], x.shape[1])
        out.update(chain_metrics(r.numpy(), text_direction, prefix="text_"))
    if not out:
        raise ValueError("the chains benchmark has neither image chains nor text_chains")
    return out
