"""Figure ``eigen_spectra``.

Covariance eigenvalue spectra of the tangent features per method (the evaluation's ``eig_*``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hyplib import plotting
from hyplib.figures import _style as S
from hyplib.figures.pick import main_runs
from hyplib.figures.runs import group_by_config

NAME = "eigen_spectra"
CAPTION = (
    "Covariance eigenvalue spectra of the tangent features (logmap at the root; identity for CLIP; "
    "per factor concatenated for PHyCLIP) of the retrieval images and captions, per method. Each "
    "spectrum is normalised to shares of total variance and averaged over seeds; the legend gives the"
    " effective rank exp(H). A faster decay means fewer directions in use.")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("main",)
METHODS = None
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = (None, "coco_captions")


def inputs(runs, bench_dir) -> dict:
    """``{"spectra": {label: {modality: [spectrum per seed]}}}`` from the evaluation's ``eig_<modality>``."""
    spectra = {}
    for label, group in group_by_config(main_runs(runs)).items():
        spectra[label] = {m: [np.asarray(r.arrays[f"eig_{m}"]) for r in group if f"eig_{m}" in r.arrays]
                          for m in ("image", "text")}
    return {"spectra": spectra}


def _effective_rank(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(np.exp(-(nz * np.log(nz)).sum())) if nz.size else 0.0


def draw(spectra: Mapping[str, Mapping[str, Sequence[np.ndarray]]], top: int | None = None):
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
