"""Figure ``trajectories``.

Curvature and the image/text scales over training steps, from the training logs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hyplib import plotting
from hyplib.figures import _style as S
from hyplib.figures.runs import group_by_config, method_label, select, settings

NAME = "trajectories"
CAPTION = (
    "Curvature c and the image and text scales alpha over training steps, from the training logs. "
    "Solid: learned curvature; thin dashed: runs with the curvature held fixed (curvature study). For"
    " PHyCLIP the line is the mean over factors and the band their range. The lower end of the "
    "curvature axis to watch is each method's clamp floor (c0/10 for MERU).")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("main", "curvature")
METHODS = ("meru", "atmg", "phyclip")
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = None


def inputs(runs, bench_dir) -> dict:
    logs = []
    for group in group_by_config(select(runs, methods=["meru", "atmg", "phyclip"]) or runs).values():
        for r in group:
            if r.log is not None:
                logs.append({"label": method_label(r.method), "seed": r.seed,
                             "fixed": not settings(r).get("learn_curv", True), "log": r.log})
    return {"logs": logs}


def scalar_series(frame: pd.DataFrame, prefix: str) -> tuple[np.ndarray, ...] | None:
    """``(step, mean, min, max)`` of the log column ``prefix`` or of its per-factor columns
    ``prefix_0 .. prefix_{k-1}`` (PHyCLIP); None if the log has neither."""
    if frame is None or len(frame) == 0:
        return None
    cols = [prefix] if prefix in frame else [c for c in frame.columns
                                             if c.startswith(prefix + "_") and c[len(prefix) + 1:].isdigit()]
    if not cols:
        return None
    vals = frame[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    step = (pd.to_numeric(frame["step"], errors="coerce").to_numpy(dtype=np.float64) if "step" in frame
            else np.arange(1, len(frame) + 1, dtype=np.float64))
    return step, np.nanmean(vals, 1), np.nanmin(vals, 1), np.nanmax(vals, 1)


def draw(logs: Sequence[Mapping]):
    """Curvature and alphas over training steps, one line per run.

    Args:
        logs: ``[{"label", "seed", "fixed" (bool: curvature held fixed), "log": DataFrame}]``,
            the frames as :func:`hyplib.evaluation.diagnostics.read_log` returns them. Product
            runs (one curvature per factor) show the factor mean with a min-max band. Runs with a
            fixed curvature are drawn thin and dashed.
    """
    plotting.set_style()
    fig, axes = S.panels(3, size=(3.8, 3.0))
    what = (("curv", "curvature c", True), ("alphas_image", "alpha (image)", True),
            ("alphas_text", "alpha (text)", True))
    labels = list(dict.fromkeys(entry["label"] for entry in logs))
    for ax, (col, title, logy) in zip(axes, what):
        seen = set()
        for entry in logs:
            series = scalar_series(entry.get("log"), col)
            if series is None:
                continue
            step, mean, lo, hi = series
            label = entry["label"]
            color = S.color_for(label, labels.index(label))
            fixed = bool(entry.get("fixed", False))
            name = f"{label}, fixed c" if fixed else label
            name, _ = (None if name in seen else name), seen.add(name)
            ax.plot(step, mean, color=color, lw=0.8 if fixed else 1.4, ls="--" if fixed else "-", label=name,
                    alpha=0.9)
            if np.any(hi > lo):
                ax.fill_between(step, lo, hi, color=color, alpha=0.15, lw=0)
        if logy and seen:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        if seen:
            ax.legend(fontsize=7)
        else:
            S.empty(ax, f"no '{col}' in the training logs")
    fig.tight_layout()
    return fig
