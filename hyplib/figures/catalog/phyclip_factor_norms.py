"""Figure ``phyclip_factor_norms``.

PHyCLIP's per-factor distance to the root for single-concept prompts and composed captions.

The radii come from the checkpoint: :func:`eval_arrays` computes them at evaluation time and
the evaluation saves them in ``figure_inputs.npz``.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.ticker import MaxNLocator

from hyplib import plotting
from hyplib.data.benchmarks import list_benchmarks
from hyplib.figures import _style as S
from hyplib.figures import embed
from hyplib.figures.pick import first_with
from hyplib.figures.runs import group_by_config, select

NAME = "phyclip_factor_norms"
CAPTION = (
    "PHyCLIP: per-factor distance to the root for single-concept prompts (each class name in the "
    "first zero-shot template) and composed captions (the composition benchmark's true captions). "
    "Left: mean radius per factor with the inter-quartile band. Right: share of a prompt's factors "
    "whose radius exceeds half its largest factor radius. One row per PHyCLIP configuration (first "
    "seed whose evaluation saved them).")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("main", "phyclip_ablation")
METHODS = ("phyclip",)
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = None


#: Keys of :func:`eval_arrays` in ``figure_inputs.npz``.
KEYS = {"single": "phyclip_factor_norms__single", "composed": "phyclip_factor_norms__composed"}


def eval_arrays(model, bench_dir) -> dict[str, np.ndarray]:
    """Per-factor radii ``(N, k)`` of single-concept prompts and composed captions, for a product
    model whose benchmarks hold ``zeroshot`` and ``composition`` (else ``{}``)."""
    if model.method.geometry != "product" or not {"zeroshot", "composition"} <= set(list_benchmarks(bench_dir)):
        return {}
    norms = embed.prompt_factor_norms(model, model.method, bench_dir)
    return {KEYS[kind]: norms[kind] for kind in KEYS}


def inputs(runs, bench_dir) -> dict:
    """``{"norms": {label: {"single": (N, k), "composed": (M, k)}}}``, first seed that has them."""
    norms = {}
    for label, group in group_by_config(select(runs, methods=["phyclip"])).items():
        run = first_with(group, *KEYS.values())
        if run is not None:
            norms[label] = {kind: np.asarray(run.arrays[key]) for kind, key in KEYS.items()}
    return {"norms": norms}


def draw(norms: Mapping[str, Mapping[str, np.ndarray]], active_frac: float = 0.5):
    """PHyCLIP's per-factor radii for single-concept prompts vs composed captions.

    Per run two panels: (left) the mean distance to the root of every factor, (right) how many
    factors a prompt uses: the share of its factors whose radius exceeds ``active_frac`` times its
    largest factor radius.

    Args:
        norms: ``{label: {"single": (N, k), "composed": (M, k)}}`` per-factor radii.
    """
    plotting.set_style()
    fig, axes = S.panels(2 * max(1, len(norms)), ncols=2, size=(4.4, 2.9))
    if not norms:
        S.empty(axes[0], "no PHyCLIP run with a checkpoint")
        S.empty(axes[1], "no PHyCLIP run with a checkpoint")
    colors = {"single": plotting.COLORS["image"], "composed": plotting.COLORS["text"]}
    for j, (label, parts) in enumerate(norms.items()):
        left, right = axes[2 * j], axes[2 * j + 1]
        shares = {}
        for kind in ("single", "composed"):
            r = np.asarray(parts.get(kind, np.zeros((0, 0))), dtype=np.float64)
            if r.size == 0:
                continue
            k = r.shape[1]
            left.plot(np.arange(k), r.mean(0), marker="o", ms=3, lw=1.2, color=colors[kind],
                      label=f"{kind} (n={r.shape[0]})")
            q25, q75 = np.quantile(r, [0.25, 0.75], axis=0)
            left.fill_between(np.arange(k), q25, q75, color=colors[kind], alpha=0.2)
            top = np.maximum(r.max(1, keepdims=True), 1e-300)
            shares[kind] = (r > active_frac * top).mean(1)
        left.xaxis.set_major_locator(MaxNLocator(integer=True))
        left.set_title(f"{label}: radius per factor")
        left.set_xlabel("factor")
        left.set_ylabel("distance to root")
        left.legend(fontsize=8)
        bins = np.linspace(0.0, 1.0, 21)
        for kind, s in shares.items():
            S.hist(right, s, bins, colors[kind], f"{kind} (mean {s.mean():.2f})")
        right.set_title(f"{label}: factors in use")
        right.set_xlabel(f"share of factors > {active_frac:g} x max")
        right.set_ylabel("density")
        right.legend(fontsize=8)
    fig.tight_layout()
    return fig
