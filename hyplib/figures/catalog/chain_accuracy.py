"""Figure ``chain_accuracy``.

Share of image and text chains whose distance to the root is ordered (claim 4).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from hyplib import plotting
from hyplib.figures import _style as S
from hyplib.figures.pick import main_runs
from hyplib.figures.runs import group_by_config

NAME = "chain_accuracy"
CAPTION = (
    "Share of whole -> part (depth 1) and whole -> part -> sub-part (depth 2) image chains, and of "
    "adjective -> noun phrase -> caption text chains, whose distance to the root is strictly ordered "
    "in the direction each evaluation was configured with (claim 4). Bars: mean over seeds; error "
    "bars: standard deviation; dots: seeds; dotted lines: a random order (1/2 for depth 1, 1/6 for "
    "depth 2).")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("main",)
METHODS = None
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = None


#: Chain metrics of ``metrics.json`` and their panel names in ``chain_accuracy``.
CHAIN_KEYS = {"chains/depth1_acc": "image depth 1", "chains/depth2_acc": "image depth 2",
              "chains/text_depth1_acc": "text depth 1", "chains/text_depth2_acc": "text depth 2"}


def inputs(runs, bench_dir) -> dict:
    groups = group_by_config(main_runs(runs))
    rows = [{"label": label, "seed": run.seed, "chain": name, "acc": run.metric(key)}
            for key, name in CHAIN_KEYS.items() for label, group in groups.items() for run in group
            if math.isfinite(run.metric(key))]
    return {"table": pd.DataFrame(rows, columns=["label", "seed", "chain", "acc"])}


#: Accuracy of a random order: a 2-chain is ordered with probability 1/2, a 3-chain 1/6.
CHAIN_CHANCE = {"depth1": 0.5, "depth2": 1.0 / 6.0}


def draw(table: pd.DataFrame, chance: Mapping[str, float] | None = None):
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
