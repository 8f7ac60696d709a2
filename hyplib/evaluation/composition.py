"""Compositional understanding, SugarCrepe style (PHyCLIP).

Each sample is (image, true caption, hard negative). It is correct when
``score(image, positive) > score(image, negative)`` (strictly; a tie counts as wrong).
Reported: count-weighted overall accuracy (``acc``: every sample counts once), the
unweighted mean over subsets (``acc_macro``), per subset (``acc/<subset>``, ``n/<subset>``)
and, when the benchmark marks attribute-object combinations unseen in training, accuracy
on held-out and seen samples apart (``acc_heldout``, ``acc_seen``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hyplib.evaluation import _common as C

SUGARCREPE_SUBSETS = ("add_obj", "add_att", "replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att")


def composition_metrics(pos_scores, neg_scores, subsets: Sequence[str] | None = None,
                        heldout: Sequence[bool] | None = None) -> dict:
    """Accuracies from paired scores.

    Args:
        pos_scores: (N,) score of each image with its true caption.
        neg_scores: (N,) score with its hard negative.
        subsets: (N,) subset name per sample, or None.
        heldout: (N,) bool, True where the attribute-object pair was unseen in training.
    """
    pos, neg = np.asarray(pos_scores, dtype=np.float64), np.asarray(neg_scores, dtype=np.float64)
    if pos.shape != neg.shape or pos.ndim != 1 or pos.size == 0:
        raise ValueError(f"pos/neg scores must be equal-length non-empty 1-D, got {pos.shape} and {neg.shape}")
    correct = pos > neg
    out = {"acc": float(correct.mean()), "n": float(correct.size)}
    if subsets is not None:
        if len(subsets) != correct.size:
            raise ValueError(f"{len(subsets)} subset names for {correct.size} samples")
        table = pd.DataFrame({"subset": [str(s) for s in subsets], "correct": correct})
        per = table.groupby("subset")["correct"].agg(["mean", "size"])
        for name, row in per.iterrows():
            out[f"acc/{name}"] = float(row["mean"])
            out[f"n/{name}"] = float(row["size"])
        out["acc_macro"] = float(per["mean"].mean())
    if heldout is not None:
        h = np.asarray(heldout).astype(bool)
        if h.shape != correct.shape:
            raise ValueError(f"{h.shape[0]} heldout flags for {correct.size} samples")
        if h.any():  # real SugarCrepe marks nothing held out: no key rather than NaN
            out["acc_heldout"] = float(correct[h].mean())
        if (~h).any():
            out["acc_seen"] = float(correct[~h].mean())
        out["n_heldout"] = float(h.sum())
    return out


def evaluate_composition(source, benchmark: Mapping, *, method=None, curv=None, score: str = "method",
                         batch_size: int = 128) -> dict:
    """Composition benchmark -> accuracies (see :func:`composition_metrics`).

    ``source``: a model, or ``{"image": (N, D), "positive": (N, D), "negative": (N, D),
    "curv"}``. ``benchmark``: ``images``, meta ``positives``, ``negatives``, ``subsets``,
    ``heldout``.
    """
    method = C.resolve_method(source, method)
    curv = C.resolve_curv(source, curv)
    image = C.embeddings(source, "image", lambda: C.encode_images(source, benchmark["images"], batch_size=batch_size))
    pos = C.embeddings(source, "positive",
                       lambda: C.encode_texts(source, benchmark["positives"], batch_size=2 * batch_size))
    neg = C.embeddings(source, "negative",
                       lambda: C.encode_texts(source, benchmark["negatives"], batch_size=2 * batch_size))
    C.check_pair(image, pos, method, curv)
    C.check_embeddings(neg, method, curv, "negative caption embeddings")
    sim = C.similarity_fn(method, score)
    return composition_metrics(C.paired_similarity(sim, image, pos, curv).numpy(),
                               C.paired_similarity(sim, image, neg, curv).numpy(),
                               benchmark.get("subsets"), benchmark.get("heldout"))
