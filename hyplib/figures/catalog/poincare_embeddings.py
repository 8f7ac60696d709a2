"""Figure ``poincare_embeddings``.

Images and captions on the Poincare disk with three captions' entailment cones.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from hyplib import plotting
from hyplib.figures import _style as S
from hyplib.figures import embed
from hyplib.figures.pick import main_runs, sample_embeddings
from hyplib.figures.runs import group_by_config, settings

NAME = "poincare_embeddings"
CAPTION = (
    "Images and captions of the retrieval benchmark on the Poincare disk, with the entailment cones "
    "of three captions (shaded) and geodesics to their images. This is a projection: each embedding's"
    " direction is its tangent vector projected on a fixed 2-D PCA plane (fitted per run on both "
    "modalities), while its distance to the root is kept exactly; angles between points, and hence "
    "which points fall inside a drawn cone, are approximate. Dotted circles: distances 1, 2, 3 from "
    "the root.")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("main",)
METHODS = ("meru", "hycoclip", "atmg")
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = (("meru", "hycoclip", "atmg"), "coco_captions")


def _pick_cones(text2: np.ndarray, caption_image: np.ndarray, n: int, curv: float) -> list[int]:
    r = np.arcsinh(math.sqrt(curv) * np.linalg.norm(text2, axis=1))
    order = np.argsort(r)
    picks, used = [], set()
    for q in np.linspace(0.1, 0.9, n):
        for j in order[int(q * (len(order) - 1)):]:
            if int(caption_image[j]) not in used:
                picks.append(int(j))
                used.add(int(caption_image[j]))
                break
    return picks


def inputs(runs, bench_dir, *, n_cones: int = 3, max_images: int = 150) -> dict:
    points = {}
    for label, group in group_by_config(main_runs(runs, ["meru", "hycoclip", "atmg", "argent"])).items():
        enc = sample_embeddings(group, bench_dir, max_images=max_images)
        if enc is None or enc["curv"].numel() != 1 or settings(enc["run"]).get("k") is not None:
            continue  # lorentz methods only (one curvature)
        c = float(enc["curv"])
        img2, txt2 = embed.h2_projection(enc["image"], enc["text"], curv=c)
        cones = _pick_cones(txt2, enc["caption_image"], n_cones, c)
        points[label] = {"image": img2, "text": txt2, "curv": c, "cones": cones,
                         "pairs": [(j, int(enc["caption_image"][j])) for j in cones]}
    return {"points": points}


def draw(points: Mapping[str, Mapping], *, rings=(1.0, 2.0, 3.0)):
    """2-D Poincare-disk view of image and text embeddings with a few texts' entailment cones.

    Args:
        points: ``{label: {"image": (N, 2), "text": (M, 2)`` 2-D Lorentz points (e.g. from
            :func:`hyplib.figures.embed.h2_projection`), ``"curv": c, "cones": [text indices]``,
            optionally ``"pairs": [(text index, image index)]`` drawn as geodesics``}``.
        rings: distances to the root drawn as dotted circles.
    """
    plotting.set_style()
    fig, axes = S.panels(len(points), size=(3.6, 3.6))
    if not points:
        S.empty(axes[0], "no hyperbolic run with a checkpoint")
        return fig
    palette = plotting.COLORS
    for ax, (label, pts) in zip(axes, points.items()):
        c = float(pts.get("curv", 1.0))
        plotting.poincare_disk(ax, c, rings=rings)
        plotting.plot_points(ax, pts["image"], c, color=palette["image"], s=7, alpha=0.6, label="image")
        plotting.plot_points(ax, pts["text"], c, color=palette["text"], s=7, alpha=0.6, label="text")
        text = torch.as_tensor(np.asarray(pts["text"]), dtype=torch.float64)
        image = torch.as_tensor(np.asarray(pts["image"]), dtype=torch.float64)
        for j in pts.get("cones", []):
            plotting.plot_cone(ax, text[j], c, color=palette["cone"], alpha=0.12)
            plotting.plot_points(ax, text[j], c, color=palette["text"], s=30, edgecolor="black",
                                 linewidth=0.6)
        for t, i in pts.get("pairs", []):
            plotting.plot_geodesic(ax, text[t], image[i], c, lw=0.8)
        ax.set_title(f"{label} (c={c:.2g})")
    axes[0].legend(loc="lower left", fontsize=7, markerscale=1.5)
    fig.tight_layout()
    return fig
