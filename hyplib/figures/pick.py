"""Helpers the figure modules share to pick their inputs from loaded runs
(:func:`hyplib.figures.runs.load_runs`): which runs, and the evaluation's arrays pooled over seeds.

Figures only read what the evaluation wrote (``metrics.json``, ``embeddings.npz``,
``figure_inputs.npz``); nothing here opens a checkpoint.
"""
from __future__ import annotations

import numpy as np
import torch

from hyplib.data.benchmarks import load_benchmark
from hyplib.figures.runs import Run, select

__all__ = ["ZS_KEY", "main_runs", "pooled_radii", "sample_embeddings", "first_with"]

#: The zero-shot metric the accuracy figures plot.
ZS_KEY = "zeroshot/mean_per_class_acc"


def main_runs(runs: list[Run], methods=None) -> list[Run]:
    """Runs of ``methods`` in the main study if any is tagged main, else all of them."""
    chosen = select(runs, methods=methods)
    main = select(chosen, study="main")
    return main or chosen


def pooled_radii(group: list[Run], kinds) -> dict[str, np.ndarray]:
    """``{kind: radii}`` with the seeds of ``group`` pooled; kinds no run has are left out."""
    out = {}
    for kind in kinds:
        found = [np.asarray(r.arrays[f"radius_{kind}"]) for r in group if f"radius_{kind}" in r.arrays]
        if found:
            out[kind] = np.concatenate(found)
    return out


def first_with(group: list[Run], *keys: str) -> Run | None:
    """The first run of ``group`` whose arrays hold every key, or None."""
    return next((r for r in group if set(keys) <= set(r.arrays)), None)


def sample_embeddings(group: list[Run], bench_dir, max_images: int = 200) -> dict | None:
    """Image and caption embeddings of the retrieval benchmark for the first run of ``group`` whose
    evaluation saved samples (``emb_image``, ``emb_text``, ``curv``): ``{"image": (N, D), "text": (M, D),
    "caption_image": (M,), "curv", "run"}`` with the first ``max_images`` images and their captions."""
    run = first_with(group, "emb_image", "emb_text")
    if run is None:
        return None
    a = run.arrays
    n = min(max_images, len(a["emb_image"]))
    cap_img = np.asarray(load_benchmark(bench_dir, "retrieval")["caption_image"])[:len(a["emb_text"])]
    keep = np.flatnonzero(cap_img < n)
    return {"image": torch.as_tensor(a["emb_image"][:n]), "text": torch.as_tensor(a["emb_text"][keep]),
            "caption_image": cap_img[keep], "curv": torch.as_tensor(np.asarray(a.get("curv", 1.0))), "run": run}
