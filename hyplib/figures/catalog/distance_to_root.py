"""Figure ``distance_to_root``.

Distance to the root by modality, MERU vs CLIP (claim 1): histograms of the retrieval
benchmark's images and captions; CLIP's panel uses the angle to the embeddings' centroid.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hyplib import plotting
from hyplib.figures import _style as S
from hyplib.figures import embed
from hyplib.figures.pick import main_runs, pooled_radii, sample_embeddings
from hyplib.figures.runs import group_by_config

NAME = "distance_to_root"
CAPTION = (
    "Distance to the root by modality, MERU vs CLIP (docs/METHODS.md claim 1). Histograms of the retrieval"
    " benchmark's images and captions, seeds pooled; dashed lines mark the means and the panel states"
    " text minus image. MERU: hyperbolic distance to the origin. CLIP's embeddings are unit vectors, "
    "so their norm cannot separate anything; its panel uses the angle to the normalised centroid of "
    "all embeddings as the root (MERU's choice of [ROOT] for CLIP).")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("main",)
METHODS = ("clip", "meru")
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = (("clip", "meru"), "coco_captions")


def inputs(runs, bench_dir) -> dict:
    radii, units = {}, {}
    for label, group in group_by_config(main_runs(runs, ["meru", "clip"])).items():
        if group[0].method == "clip":
            enc = sample_embeddings(group, bench_dir, max_images=10**9)
            if enc is not None:
                r_i, r_t = embed.sphere_root_distance(enc["image"], enc["text"])
                radii[label], units[label] = {"image": r_i, "text": r_t}, "angle to embedding centroid (rad)"
                continue
            units[label] = "|x| (unit vectors)"
        radii[label] = pooled_radii(group, ("image", "text"))
    return {"radii": radii, "units": units}


def draw(radii: Mapping[str, Mapping[str, np.ndarray]], units: Mapping[str, str] | None = None):
    """Histograms of distance to the root, images vs texts, one panel per method.

    Args:
        radii: ``{method label: {"image": (N,), "text": (M,)}}`` (seeds pooled).
        units: ``{method label: x-axis label}``; default "distance to root".
    """
    plotting.set_style()
    fig, axes = S.panels(len(radii))
    if not radii:
        S.empty(axes[0], "no runs with radii")
    for ax, (label, by_mod) in zip(axes, radii.items()):
        bins = S.common_bins([by_mod.get(m, []) for m in ("image", "text")])
        for m in ("image", "text"):
            if m in by_mod:
                S.hist(ax, by_mod[m], bins, plotting.COLORS[m], m)
        title = label
        if {"image", "text"} <= set(by_mod):
            gap = float(np.mean(by_mod["text"]) - np.mean(by_mod["image"]))
            title = f"{label}\nmean text - mean image = {gap:+.3g}"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel((units or {}).get(label, "distance to root"))
        ax.set_ylabel("density")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig
