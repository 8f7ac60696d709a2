"""Figure ``cone_collapse``.

Cone collapse (claim 6): the plain entailment loss, where the trained parents sit, the
entailment loss over training and ARGENT's adaptive weights on the PEP pairs.

The weights come from the checkpoint: :func:`eval_arrays` computes them at evaluation time and
the evaluation saves them in ``figure_inputs.npz``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from hyplib import lorentz, plotting
from hyplib.data.benchmarks import list_benchmarks
from hyplib.figures import _style as S
from hyplib.figures import embed
from hyplib.figures.pick import first_with, main_runs
from hyplib.figures.runs import Run, group_by_config, select, settings

NAME = "cone_collapse"
CAPTION = (
    "Cone collapse (claim 6). (a) The plain entailment loss max(0, phi - omega(x)) of MERU/HyCoCLIP "
    "as a function of the parent's norm in units of the boundary 2K/sqrt(c) and of the exterior "
    "angle: left of the dashed line the half-aperture saturates at pi/2 and every child in the outer "
    "half-space costs nothing (white contour: the zero-loss border). (b) Where the trained texts, the"
    " parents, sit relative to that boundary, with the share inside. (c) The entailment loss over "
    "training steps. (d) ARGENT's adaptive weight h(d) = 1 - exp(-d/sigma) (our reconstruction) on "
    "the PEP benchmark's entailing pairs by pair type (near-identical pairs get weight near 0); the "
    "dotted outline is the non-entailing pairs, which training never weights, for comparison.")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("main",)
METHODS = ("meru", "hycoclip", "argent")
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = None


#: Columns of ARGENT's PEP pair weights and their keys in ``figure_inputs.npz``.
WEIGHT_KEYS = {col: f"cone_collapse__{col}" for col in ("pair_type", "label", "kind", "distance", "weight")}


def eval_arrays(model, bench_dir) -> dict[str, np.ndarray]:
    """ARGENT's adaptive weight on every PEP pair (:func:`hyplib.figures.embed.pep_pair_weights`),
    for an ARGENT model whose benchmarks hold ``pep`` (else ``{}``)."""
    if model.method.name != "argent" or "pep" not in list_benchmarks(bench_dir):
        return {}
    frame = embed.pep_pair_weights(model, model.method, bench_dir)
    return {key: frame[col].to_numpy().astype(str if col in ("pair_type", "kind") else frame[col].dtype)
            for col, key in WEIGHT_KEYS.items()}


def _text_norm_ratio(run: Run) -> np.ndarray | None:
    if "radius_text" not in run.arrays:
        return None
    c = run.metric("diagnostics/curv_mean")
    c = c if math.isfinite(c) and c > 0 else float(settings(run).get("curv_init", 1.0))
    K = float(settings(run).get("min_radius", 0.1))
    # |x| = sinh(sqrt(c) r)/sqrt(c) and the boundary is 2K/sqrt(c): the ratio does not depend on c otherwise.
    return np.sinh(math.sqrt(c) * np.asarray(run.arrays["radius_text"], dtype=np.float64)) / (2.0 * K)


def inputs(runs, bench_dir) -> dict:
    chosen = main_runs(runs, ["meru", "hycoclip", "argent"])
    norms, logs = {}, []
    for label, group in group_by_config(chosen).items():
        ratios = [x for x in (_text_norm_ratio(r) for r in group) if x is not None]
        if ratios:
            norms[label] = np.concatenate(ratios)
        logs += [{"label": label, "seed": r.seed, "log": r.log} for r in group if r.log is not None]
    weights, wlabel = None, "ARGENT"
    for label, group in group_by_config(select(chosen, methods=["argent"])).items():
        run = first_with(group, *WEIGHT_KEYS.values())
        if run is not None:
            weights = pd.DataFrame({col: np.asarray(run.arrays[key]) for col, key in WEIGHT_KEYS.items()})
            wlabel = f"{label} seed {run.seed}"
            break
    return {"parent_norms": norms, "entail_logs": logs, "weights": weights, "weights_label": wlabel}


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


def draw(parent_norms: Mapping[str, np.ndarray], entail_logs: Sequence[Mapping],
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
