"""Figures of metrics across runs and of training trajectories: accuracy against fixed
curvature, chain-ordering accuracy per method, curvature and alpha over training steps."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hyplib import plotting
from hyplib.figures import _style as S

__all__ = ["curvature_robustness", "chain_accuracy", "trajectories", "CHAIN_CHANCE", "scalar_series"]

#: Accuracy of a random order: a 2-chain is ordered with probability 1/2, a 3-chain 1/6.
CHAIN_CHANCE = {"depth1": 0.5, "depth2": 1.0 / 6.0}


def curvature_robustness(table: pd.DataFrame, metric: str = "zero-shot mean per-class accuracy"):
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


def chain_accuracy(table: pd.DataFrame, chance: Mapping[str, float] | None = None):
    """Chain-ordering accuracy per method: bars = mean over seeds, error bars = std, dots = seeds.

    Args:
        table: rows ``label, seed, chain, acc``; one panel per distinct ``chain`` (in order of
            appearance, e.g. "image depth 1", "image depth 2", "text depth 2").
        chance: ``{substring of chain: chance level}`` drawn dotted (default :data:`CHAIN_CHANCE`,
            matched on "depth1"/"depth2" with spaces removed).
    """
    plotting.set_style()
    chance = CHAIN_CHANCE if chance is None else chance
    chains = list(dict.fromkeys(table["chain"])) if table is not None and len(table) else []
    fig, axes = S.panels(max(1, len(chains)), size=(3.4, 3.0), sharey=True)
    if not chains:
        S.empty(axes[0], "no chain metrics")
        return fig
    labels = list(dict.fromkeys(table["label"]))
    for ax, chain in zip(axes, chains):
        rows = table[table["chain"] == chain]
        for i, label in enumerate(labels):
            acc = rows.loc[rows["label"] == label, "acc"].to_numpy(dtype=np.float64)
            acc = acc[np.isfinite(acc)]
            if acc.size == 0:
                continue
            color = S.color_for(label, i)
            err = acc.std(ddof=1) if acc.size > 1 else 0.0
            ax.bar(i, acc.mean(), yerr=err, color=color, alpha=0.8, capsize=3, width=0.7)
            jitter = np.linspace(-0.15, 0.15, acc.size)
            ax.scatter(np.full(acc.size, i) + jitter, acc, color="0.15", s=9, zorder=3)
        key = chain.replace(" ", "")
        for tag, level in chance.items():
            if tag in key:
                ax.axhline(level, color="0.4", ls=":", lw=1.0)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(chain)
        ax.set_ylim(0, 1.05)
    axes[0].set_ylabel("chains correctly ordered")
    fig.tight_layout()
    return fig


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


def trajectories(logs: Sequence[Mapping]):
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
