"""Figures about entailment cones: the cone collapse of the plain entailment loss (with
ARGENT's pair weights) and a 2-D Poincare-disk view of embeddings and their cones."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from hyplib import lorentz, plotting
from hyplib.figures import _style as S

__all__ = ["cone_collapse", "plain_entailment_grid", "poincare_embeddings"]


def plain_entailment_grid(norm_ratio: np.ndarray, phi: np.ndarray, *, curv: float = 1.0,
                          min_radius: float = 0.1) -> np.ndarray:
    """MERU/HyCoCLIP entailment loss ``max(0, phi - omega(x))`` on a grid.

    Args:
        norm_ratio: (A,) parent norms ``|x|`` in units of the norm boundary ``2K/sqrt(c)``.
        phi: (B,) exterior angles at the parent towards the child.

    Returns:
        (B, A) losses; zero for every ``phi <= pi/2`` once ``norm_ratio <= 1`` (the cone is a
        half-space there: the collapse).
    """
    boundary = 2.0 * min_radius / np.sqrt(curv)
    x = torch.zeros(len(norm_ratio), 2, dtype=torch.float64)
    x[:, 0] = torch.as_tensor(np.asarray(norm_ratio, dtype=np.float64) * boundary)
    omega = lorentz.half_aperture(x, curv=curv, min_radius=min_radius).numpy()
    return np.maximum(0.0, np.asarray(phi, dtype=np.float64)[:, None] - omega[None, :])


def _collapse_map(ax, curv: float, min_radius: float) -> None:
    ratio = np.geomspace(0.05, 20.0, 240)
    phi = np.linspace(0.0, np.pi, 181)
    loss = plain_entailment_grid(ratio, phi, curv=curv, min_radius=min_radius)
    mesh = ax.pcolormesh(ratio, phi, loss, cmap="viridis", shading="auto")
    ax.figure.colorbar(mesh, ax=ax, label="loss  max(0, phi - omega)")
    ax.contour(ratio, phi, loss, levels=[1e-9], colors="white", linewidths=1.0)
    ax.axvline(1.0, color="white", ls="--", lw=1.0)
    ax.text(0.3, 0.35 * np.pi, "zero loss\n(half-space cone)", color="white", ha="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("parent norm |x| / (2K/sqrt(c))")
    ax.set_ylabel("exterior angle phi (rad)")
    ax.set_title("plain entailment loss")


def _parent_norms(ax, parent_norms: Mapping[str, np.ndarray]) -> None:
    arrays = [np.asarray(v, dtype=np.float64) for v in parent_norms.values()]
    vals = np.concatenate([a[np.isfinite(a) & (a > 0)] for a in arrays]) if arrays else np.zeros(0)
    if vals.size == 0:
        S.empty(ax, "no parent (text) radii")
        return
    bins = np.geomspace(min(vals.min(), 0.5), max(vals.max(), 2.0), 40)
    for i, (label, r) in enumerate(parent_norms.items()):
        r = np.asarray(r, dtype=np.float64)
        inside = float(np.mean(r <= 1.0)) if r.size else float("nan")
        S.hist(ax, r, bins, S.color_for(label, i), f"{label}: {100 * inside:.0f}% inside")
    ax.axvline(1.0, color="0.2", ls="--", lw=1.0)
    ax.set_xscale("log")
    ax.set_xlabel("text norm |x| / (2K/sqrt(c))")
    ax.set_ylabel("density")
    ax.set_title("parents (texts) vs the norm boundary")
    ax.legend(fontsize=7)


def _entail_curves(ax, entail_logs: Sequence[Mapping]) -> None:
    labels = list(dict.fromkeys(e["label"] for e in entail_logs))
    seen = set()
    for e in entail_logs:
        log = e.get("log")
        if log is None or "entailment" not in log:
            continue
        step = pd.to_numeric(log["step"], errors="coerce") if "step" in log else np.arange(1, len(log) + 1)
        val = pd.to_numeric(log["entailment"], errors="coerce")
        name = None if e["label"] in seen else e["label"]
        seen.add(e["label"])
        ax.plot(step, val, color=S.color_for(e["label"], labels.index(e["label"])), lw=1.2, label=name)
    if not seen:
        S.empty(ax, "no 'entailment' column in the training logs")
        return
    ax.set_xlabel("step")
    ax.set_ylabel("entailment loss")
    ax.set_title("entailment loss during training")
    ax.legend(fontsize=7)


def _weights(ax, weights: pd.DataFrame | None, label: str) -> None:
    if weights is None or len(weights) == 0:
        S.empty(ax, "no ARGENT run with a checkpoint")
        return
    bins = np.linspace(0.0, 1.0, 26)
    pos = weights[weights["label"] == 1]
    for i, (ptype, rows) in enumerate(pos.groupby("pair_type", sort=True)):
        name = f"{ptype} ({rows['kind'].iloc[0]}) n={len(rows)}"
        S.hist(ax, rows["weight"], bins, S.color_for("", i), name)
    neg = weights[weights["label"] != 1]
    if len(neg):  # training never weights non-entailing pairs: an outline for comparison only
        ax.hist(neg["weight"], bins=bins, density=True, histtype="step", color="0.3", ls=":", lw=1.2,
                label=f"non-entailing pairs n={len(neg)}")
    ax.set_xlabel("weight h(d)")
    ax.set_ylabel("density")
    ax.set_title(f"{label}: adaptive weights on PEP pairs")
    ax.legend(fontsize=7)


def cone_collapse(parent_norms: Mapping[str, np.ndarray], entail_logs: Sequence[Mapping],
                  weights: pd.DataFrame | None = None, *, curv: float = 1.0, min_radius: float = 0.1,
                  weights_label: str = "ARGENT"):
    """Cone collapse in four panels: (a) the plain entailment loss over parent norm and angle,
    (b) where the trained texts (parents) sit relative to the norm boundary ``2K/sqrt(c)``,
    (c) the entailment loss during training, (d) ARGENT's adaptive weights over the PEP pairs.

    Args:
        parent_norms: ``{label: (N,) text norms |x| / (2K/sqrt(c))}`` (each run's own c).
        entail_logs: ``[{"label", "log": DataFrame with "step", "entailment"}]``.
        weights: :func:`hyplib.figures.embed.pep_pair_weights`'s frame, or None.
    """
    plotting.set_style()
    fig, axes = S.panels(4, ncols=2, size=(4.6, 3.4))
    _collapse_map(axes[0], curv, min_radius)
    _parent_norms(axes[1], parent_norms)
    _entail_curves(axes[2], entail_logs)
    _weights(axes[3], weights, weights_label)
    fig.tight_layout()
    return fig


def poincare_embeddings(points: Mapping[str, Mapping], *, rings=(1.0, 2.0, 3.0)):
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
