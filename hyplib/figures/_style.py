"""Small drawing helpers shared by the figure modules (on top of :mod:`hyplib.plotting`)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from hyplib import plotting
from hyplib.figures.runs import METHOD_LABELS, METHOD_ORDER

_PALETTE = plotting.COLORBLIND
#: One colour per method, fixed across figures (variants share their method's colour).
METHOD_COLORS = dict(zip(METHOD_ORDER, (_PALETTE[7], _PALETTE[0], _PALETTE[2], _PALETTE[3], _PALETTE[4],
                                         _PALETTE[5])))
_SPARE = (_PALETTE[6], _PALETTE[8], _PALETTE[9], _PALETTE[1])
_BY_LABEL = {v: k for k, v in METHOD_LABELS.items()}

#: Colours of the input kinds (HyCoCLIP's four).
KIND_COLORS = {"image": plotting.COLORS["image"], "text": plotting.COLORS["text"],
               "box_image": plotting.COLORS["box"], "box_text": plotting.COLORS["other"]}
KIND_NAMES = {"image": "image", "text": "text", "box_image": "box image", "box_text": "box text"}


def color_for(label: str, fallback: int = 0):
    """Colour of a method label (``"MERU"``, ``"MERU (c0.5)"``, or a method name)."""
    base = label.split(" (")[0]
    method = _BY_LABEL.get(base, base.lower())
    return METHOD_COLORS.get(method, _SPARE[fallback % len(_SPARE)])


def panels(n: int, *, ncols: int | None = None, size=(3.6, 2.9), sharex=False, sharey=False):
    """``(fig, flat list of n axes)``; surplus grid cells are removed."""
    n = max(1, n)
    ncols = min(n, ncols or n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             sharex=sharex, sharey=sharey)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        fig.delaxes(ax)
    return fig, flat[:n]


def empty(ax, message: str) -> None:
    """Mark ``ax`` as having no data, saying why (a figure never fails silently blank)."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.35",
            wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def common_bins(arrays, bins: int = 40) -> np.ndarray:
    """Shared histogram edges over several arrays (finite values only)."""
    vals = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    vals = np.concatenate([v[np.isfinite(v)] for v in vals]) if vals else np.zeros(0)
    if vals.size == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:  # a single value: a narrow window around it
        lo, hi = lo - 0.5 * max(abs(lo), 1e-3), hi + 0.5 * max(abs(hi), 1e-3)
    return np.linspace(lo, hi, bins + 1)


def hist(ax, values, bins, color, label: str) -> None:
    """Filled density histogram with an outline and a dashed line at the mean."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return
    ax.hist(v, bins=bins, density=True, color=color, alpha=0.35, label=label)
    ax.hist(v, bins=bins, density=True, histtype="step", color=color, lw=1.2)
    ax.axvline(v.mean(), color=color, ls="--", lw=1.0)
