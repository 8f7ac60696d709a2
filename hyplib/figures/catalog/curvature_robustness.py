"""Figure ``curvature_robustness``. Zero-shot accuracy against a fixed curvature, MERU vs ATMG (claim 3).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from hyplib import plotting
from hyplib.figures import _style as S
from hyplib.figures.pick import ZS_KEY
from hyplib.figures.runs import method_label, select, settings

NAME = "curvature_robustness"
CAPTION = (
    "Zero-shot mean per-class accuracy against a fixed curvature c, MERU vs ATMG (claim 3, ATMG Table"
    " 5). Points are means over the available seeds, error bars one standard deviation, small dots "
    "single seeds, crosses diverged runs (drawn at zero); dashed horizontal lines are runs with "
    "learned curvature where present. With one seed per curvature the spread is not estimated.")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("curvature",)
METHODS = ("meru", "atmg")
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = None


def inputs(runs, bench_dir) -> dict:
    rows = []
    for run in select(runs, methods=["meru", "atmg"]):
        cfg = settings(run)
        rows.append({"label": method_label(run.method), "curv": float(cfg.get("curv_init", float("nan"))),
                     "seed": run.seed, "acc": run.metric(ZS_KEY),
                     "learnable": bool(cfg.get("learn_curv", True))})
    return {"table": pd.DataFrame(rows, columns=["label", "curv", "seed", "acc", "learnable"])}


def draw(table: pd.DataFrame, metric: str = "zero-shot mean per-class accuracy"):
    """Accuracy against a fixed curvature, one line per method (mean over seeds, bars = std).

    Args:
        table: rows ``label, curv, seed, acc, learnable``; rows with ``learnable`` True are drawn
            as a dashed horizontal reference (their curvature was learned); NaN ``acc`` marks a
            diverged run (an ``x`` on the x-axis).
        metric: y-axis label.
    """
    plotting.set_style()
    fig, axes = S.panels(1, size=(5.0, 3.4))
    ax = axes[0]
    if table is None or len(table) == 0:
        S.empty(ax, "no curvature-study runs")
        return fig
    table = table.copy()
    table["learnable"] = table.get("learnable", False)
    table["learnable"] = table["learnable"].fillna(False).astype(bool)
    for i, (label, rows) in enumerate(table.groupby("label", sort=False)):
        color = S.color_for(label, i)
        fixed = rows[~rows["learnable"]].sort_values("curv")
        if len(fixed):
            g = fixed.groupby("curv")["acc"]
            mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
            ax.errorbar(mean.index, mean.values, yerr=std.values, color=color, marker="o", ms=5, lw=1.5,
                        capsize=3, label=f"{label} (n={fixed['seed'].nunique()} seed(s))")
            ok = fixed[np.isfinite(fixed["acc"])]
            ax.scatter(ok["curv"], ok["acc"], color=color, s=10, alpha=0.5, zorder=3)
            bad = fixed[~np.isfinite(fixed["acc"])]
            if len(bad):
                ax.scatter(bad["curv"], np.zeros(len(bad)), color=color, marker="x", s=40, zorder=4,
                           label=f"{label}: diverged")
        learned = rows[rows["learnable"] & np.isfinite(rows["acc"])]
        if len(learned):
            ax.axhline(learned["acc"].mean(), color=color, ls="--", lw=1.0, label=f"{label}, learned c")
    ax.set_xscale("log")
    ax.set_xlabel("fixed curvature c")
    ax.set_ylabel(metric)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
