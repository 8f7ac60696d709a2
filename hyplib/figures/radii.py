"""Figures about where embeddings sit: distance to the root by modality and by input kind,
covariance spectra, PHyCLIP's per-factor radii. Each function takes plain arrays and returns
a matplotlib Figure drawn in :mod:`hyplib.plotting`'s style."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from hyplib import plotting
from hyplib.figures import _style as S

__all__ = ["distance_to_root", "norms_by_kind", "eigen_spectra", "phyclip_factor_norms"]


def distance_to_root(radii: Mapping[str, Mapping[str, np.ndarray]], units: Mapping[str, str] | None = None):
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


def norms_by_kind(radii: Mapping[str, Mapping[str, np.ndarray]]):
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


def _effective_rank(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(np.exp(-(nz * np.log(nz)).sum())) if nz.size else 0.0


def eigen_spectra(spectra: Mapping[str, Mapping[str, Sequence[np.ndarray]]], top: int | None = None):
    """Covariance eigenvalue spectra of the tangent features, images and texts, per method.

    Each spectrum is normalised to shares of the total variance, then averaged over seeds;
    the legend gives the effective rank ``exp(H(p))`` of the mean spectrum.

    Args:
        spectra: ``{method label: {"image": [(D,) per seed], "text": [...]}}``.
        top: plot only the first ``top`` eigenvalues (default: all).
    """
    plotting.set_style()
    fig, axes = S.panels(2, size=(4.2, 3.1), sharey=True)
    for ax, modality in zip(axes, ("image", "text")):
        drawn = 0
        for i, (label, by_mod) in enumerate(spectra.items()):
            seeds = [np.asarray(e, dtype=np.float64) for e in by_mod.get(modality, []) if np.sum(e) > 0]
            if not seeds:
                continue
            n = min(len(e) for e in seeds)
            p = np.mean([e[:n] / e.sum() for e in seeds], axis=0)
            shown = p[:top] if top else p
            ax.semilogy(np.arange(1, len(shown) + 1), np.clip(shown, 1e-12, None),
                        color=S.color_for(label, i), lw=1.4,
                        label=f"{label} (eff. rank {_effective_rank(p):.1f})")
            drawn += 1
        ax.set_title(f"{modality} features")
        ax.set_xlabel("eigenvalue index")
        if drawn:
            ax.legend(fontsize=7)
        else:
            S.empty(ax, f"no {modality} spectra")
    axes[0].set_ylabel("share of variance")
    fig.tight_layout()
    return fig


def phyclip_factor_norms(norms: Mapping[str, Mapping[str, np.ndarray]], active_frac: float = 0.5):
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
