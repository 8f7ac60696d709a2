"""Figure ``norms_by_kind``.

HyCoCLIP's distance to the root by input kind (image, text, box image, box text).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hyplib import plotting
from hyplib.figures import _style as S
from hyplib.figures.pick import main_runs, pooled_radii
from hyplib.figures.runs import group_by_config

NAME = "norms_by_kind"
CAPTION = (
    "HyCoCLIP: distance to the root by input kind. Images and captions from the retrieval benchmark, "
    "box images (part and sub-part crops of the chains benchmark) and box texts (the chains' noun "
    "phrases); seeds pooled, dashed lines at the means. HyCoCLIP's objective implies images below "
    "their boxes and texts below the box texts, i.e. boxes and box texts closer to the root.")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("main",)
METHODS = ("hycoclip",)
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = (("hycoclip",), "coco_captions")


def inputs(runs, bench_dir) -> dict:
    kinds = ("image", "text", "box_image", "box_text")
    return {"radii": {label: pooled_radii(group, kinds)
                      for label, group in group_by_config(main_runs(runs, ["hycoclip"])).items()}}


def draw(radii: Mapping[str, Mapping[str, np.ndarray]]):
    """Histograms of distance to the root per input kind (image, text, box image, box text).

    Args:
        radii: ``{method label: {kind: (N_kind,)}}`` with kinds among ``image, text, box_image,
            box_text`` (seeds pooled); one panel per method.
    """
    plotting.set_style()
    fig, axes = S.panels(len(radii), size=(4.4, 3.0))
    if not radii:
        S.empty(axes[0], "no runs with radii by kind")
    for ax, (label, by_kind) in zip(axes, radii.items()):
        kinds = [k for k in S.KIND_COLORS if k in by_kind]
        bins = S.common_bins([by_kind[k] for k in kinds], bins=50)
        for k in kinds:
            name = f"{S.KIND_NAMES[k]} (mean {np.mean(by_kind[k]):.3g})"
            S.hist(ax, by_kind[k], bins, S.KIND_COLORS[k], name)
        ax.set_title(label)
        ax.set_xlabel("distance to root")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
