"""Shared figure style, stable saving, and drawing helpers for the Poincare disk.

Every figure of the project goes through this module:

* :func:`set_style` (seaborn theme, colour-blind palette, PDF-embeddable fonts) and
  :func:`savefig`, which writes a byte-stable PDF (no creation date) and a PNG beside it.
* Disk helpers take **2-D Lorentz points** (space parts ``x`` of shape (..., 2), curvature
  ``-curv``, see :mod:`hyplib.lorentz`) and draw their images in the Poincare disk of radius
  ``1/sqrt(curv)`` (``geoopt.PoincareBall(c=curv)``'s model) via :func:`hyplib.lorentz.to_poincare`.
* Geodesic polar coordinates at a point ``x`` use the orthonormal frame (outward, left): the
  first axis is the direction of the geodesic from the root through ``x``, continued beyond
  ``x``; the second is that direction turned by +90 degrees. So the polar angle ``theta`` of
  a point ``y`` around ``x`` is, in absolute value, the exterior angle ``phi(x, y)`` of
  :func:`hyplib.lorentz.exterior_angle`, and ``x``'s entailment cone is ``|theta| <= omega(x)``.

Backend: Agg is selected on import unless a backend was already chosen for an interactive
front end (Jupyter's inline backend, or ``MPLBACKEND``), so notebooks still show figures.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import matplotlib

if "MPLBACKEND" not in os.environ and "ipykernel" not in sys.modules:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from hyplib import lorentz  # noqa: E402
from hyplib.paths import resolve  # noqa: E402

__all__ = [
    "COLORBLIND", "COLORS", "set_style", "savefig", "disk_axes", "from_poincare", "frame_exp", "polar_point",
    "polar_coords", "poincare_disk", "plot_points", "plot_geodesic", "plot_cone", "cone_boundary",
    "disk_grid", "descent_field", "plot_field",
]

#: seaborn's "colorblind" palette as RGB triples (``sns.color_palette("colorblind")``), spelled
#: out so that importing this module (every evaluation job) does not import seaborn (1.3 s).
COLORBLIND = tuple(matplotlib.colors.to_rgb(h) for h in (
    "#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9"))
_PALETTE = COLORBLIND
#: Fixed colours so every figure draws the same thing the same way.
COLORS = {
    "image": _PALETTE[0], "text": _PALETTE[1], "box": _PALETTE[2], "other": _PALETTE[4],
    "cone": _PALETTE[2], "geodesic": "0.35", "root": "black", "disk": "0.2",
}


# --------------------------------------------------------------------------- style and saving
def set_style(context: str = "paper", font_scale: float = 1.1) -> None:
    """Seaborn theme shared by all figures: white grid, colour-blind palette, Type 42 fonts."""
    import seaborn as sns

    sns.set_theme(context=context, style="whitegrid", palette="colorblind", font_scale=font_scale)
    matplotlib.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight",
        "pdf.fonttype": 42, "ps.fonttype": 42, "axes.spines.top": False,
        "axes.spines.right": False, "legend.frameon": False,
    })


def savefig(fig: matplotlib.figure.Figure, path) -> tuple[Path, Path]:
    """Write ``fig`` as ``path`` with suffix ``.pdf`` and a ``.png`` beside it; returns both.

    Relative paths are taken from the repository root (:func:`hyplib.paths.resolve`); parent
    folders are created. The PDF carries no creation date, so the same figure gives the same
    bytes on every run (the workflow and git see no spurious change).
    """
    path = resolve(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf, png = path.with_suffix(".pdf"), path.with_suffix(".png")
    fig.savefig(pdf, metadata={"CreationDate": None})
    fig.savefig(png)
    return pdf, png


def disk_axes(ncols: int = 1, nrows: int = 1, size: float = 3.2, **kwargs):
    """``plt.subplots`` sized for square disk panels; returns ``(fig, axes)`` (axes squeezed)."""
    return plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), **kwargs)


# --------------------------------------------------------------------------- 2-D geometry
def _as_float(t, like: Tensor | None = None) -> Tensor:
    dtype = like.dtype if like is not None else torch.float64
    return torch.as_tensor(t, dtype=dtype)


def from_poincare(p: Tensor, *, curv) -> Tensor:
    """Lorentz space part of Poincare-ball points ``p`` (..., n) with ``|p| < 1/sqrt(curv)``.

    Inverse of :func:`hyplib.lorentz.to_poincare`.

    .. math:: x = \\frac{2p}{1 - c|p|^2}
    """
    # Floor 1 - c|p|^2: the rim of the ball is at infinite distance.
    gap = torch.clamp(1.0 - curv * (p * p).sum(-1, keepdim=True), min=lorentz.eps_for(p.dtype))
    return 2.0 * p / gap


def _frame(x: Tensor, curv) -> tuple[Tensor, Tensor]:
    """Space parts of the orthonormal frame (outward, left) at 2-D points ``x`` (..., 2)."""
    norm = x.norm(dim=-1, keepdim=True)
    ex = torch.tensor([1.0, 0.0], dtype=x.dtype).expand_as(x)
    # At the root there is no outward direction: take the first axis.
    u = torch.where(norm > 0, x / torch.clamp(norm, min=torch.finfo(x.dtype).tiny), ex)
    xt = lorentz.time_component(x, curv=curv).unsqueeze(-1)
    outward = math.sqrt(curv) * xt * u  # time part sqrt(c)|x|; unit speed along root -> x
    left = torch.stack([-u[..., 1], u[..., 0]], dim=-1)  # time part 0
    return outward, left


def frame_exp(x: Tensor, v: Tensor, *, curv: float) -> Tensor:
    """Exponential map at 2-D points ``x`` (..., 2) of tangent vectors given by their
    coordinates ``v`` (..., 2) in the frame (outward, left); returns space parts (..., 2).

    .. math:: \\exp_x(v) = \\cosh(\\sqrt{c}|v|)\\,x + \\frac{\\sinh(\\sqrt{c}|v|)}{\\sqrt{c}|v|}
              (v_0 e_{out} + v_1 e_{left})
    """
    x, v = torch.broadcast_tensors(_as_float(x), _as_float(v, like=_as_float(x)))
    sqrt_c = math.sqrt(curv)
    outward, left = _frame(x, curv)
    # Floor |v|: sinh(s)/s -> 1 as s -> 0, and the sqrt's gradient is infinite at 0.
    speed = torch.sqrt(torch.clamp((v * v).sum(-1, keepdim=True), min=lorentz.eps_for(v.dtype) ** 2))
    s = sqrt_c * speed
    direction = v[..., :1] * outward + v[..., 1:] * left
    return torch.cosh(s) * x + (torch.sinh(s) / s) * direction


def polar_point(x, rho, theta, *, curv: float) -> Tensor:
    """Point at geodesic polar coordinates ``(rho, theta)`` around 2-D points ``x``.

    ``x`` (..., 2), ``rho`` and ``theta`` broadcasting against (...); ``theta`` is measured from
    the outward direction (so ``|theta| = phi(x, y)``). Returns space parts (..., 2).
    """
    rho, theta = _as_float(rho), _as_float(theta)
    v = torch.stack([rho * torch.cos(theta), rho * torch.sin(theta)], dim=-1)
    return frame_exp(_as_float(x), v, curv=curv)


def polar_coords(x, y, *, curv: float) -> tuple[Tensor, Tensor]:
    """Geodesic polar coordinates ``(rho, theta)`` of 2-D points ``y`` around ``x`` (..., 2),
    broadcasting; inverse of :func:`polar_point`, ``theta`` in (-pi, pi]. Returns two (...).

    The frame coordinates of ``log_x(y)`` are proportional to ``(<Y, e_out>_L, <Y, e_left>_L)``.
    """
    x, y = torch.broadcast_tensors(_as_float(x), _as_float(y, like=_as_float(x)))
    outward, left = _frame(x, curv)
    norm_x = x.norm(dim=-1)
    yt = lorentz.time_component(y, curv=curv)
    along = (y * outward).sum(-1) - yt * math.sqrt(curv) * norm_x
    across = (y * left).sum(-1)
    return lorentz.dist(x, y, curv=curv), torch.atan2(across, along)


def cone_boundary(x, *, curv: float, min_radius: float = 0.1, length: float | None = None,
                  steps: int = 200) -> tuple[Tensor, Tensor]:
    """The two geodesic rays bounding the entailment cone of one 2-D point ``x`` (2,).

    They leave ``x`` at angles ``+-omega(x)`` to the outward direction and run ``length``
    (default ``8 / sqrt(curv)``, close to the ideal boundary in the picture). Returns two
    (steps, 2) tensors of Lorentz space parts.
    """
    x = _as_float(x)
    omega = lorentz.half_aperture(x, curv=curv, min_radius=min_radius)
    length = 8.0 / math.sqrt(curv) if length is None else length
    rho = torch.linspace(0.0, length, steps, dtype=x.dtype)
    return polar_point(x, rho, omega, curv=curv), polar_point(x, rho, -omega, curv=curv)


def disk_grid(curv: float, n: int = 15, max_radius: float = 0.9) -> Tensor:
    """Lorentz points (N, 2) whose Poincare images form an ``n x n`` square grid, keeping those
    within ``max_radius`` of the disk's radius ``1/sqrt(curv)`` (for gradient fields)."""
    r = max_radius / math.sqrt(curv)
    axis = torch.linspace(-r, r, n, dtype=torch.float64)
    p = torch.cartesian_prod(axis, axis)
    p = p[p.norm(dim=-1) <= r + 1e-12]
    return from_poincare(p, curv=curv)


def descent_field(fn, x: Tensor, *, curv: float) -> tuple[Tensor, Tensor]:
    """Riemannian steepest-descent directions of ``fn`` at 2-D Lorentz points, in the disk chart.

    ``fn`` maps points (N, 2) to losses (N,) (one independent loss per point; they are
    summed). With ``p`` the Poincare coordinates and ``lambda = 2 / (1 - c|p|^2)`` the conformal
    factor, the Riemannian gradient in the chart is ``grad_p / lambda^2``. Returns ``(p, -grad)``,
    both (N, 2), detached.
    """
    p = lorentz.to_poincare(_as_float(x), curv=curv).detach().requires_grad_(True)
    loss = fn(from_poincare(p, curv=curv)).sum()
    (grad,) = torch.autograd.grad(loss, p)
    lam = 2.0 / (1.0 - curv * (p.detach() ** 2).sum(-1, keepdim=True))
    return p.detach(), -grad / lam**2


# --------------------------------------------------------------------------- drawing
def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def poincare_disk(ax, curv: float = 1.0, *, rings=(), origin: bool = True, pad: float = 0.04):
    """Prepare ``ax`` as the Poincare disk of radius ``1/sqrt(curv)``: rim, equal aspect, no
    axes; ``rings`` are distances to the root drawn as dotted circles (radius
    ``tanh(sqrt(c) d / 2) / sqrt(c)``); ``origin`` marks the root."""
    radius = 1.0 / math.sqrt(curv)
    ax.add_patch(plt.Circle((0, 0), radius, fill=False, lw=1.2, color=COLORS["disk"]))
    for d in rings:
        r = math.tanh(math.sqrt(curv) * d / 2.0) * radius
        ax.add_patch(plt.Circle((0, 0), r, fill=False, lw=0.6, ls=":", color="0.6"))
    if origin:
        ax.plot([0], [0], marker="+", color=COLORS["root"], ms=7, zorder=5)
    lim = radius * (1 + pad)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return ax


def plot_points(ax, x, curv: float = 1.0, **kwargs):
    """Scatter 2-D Lorentz points ``x`` (..., 2) at their Poincare positions; returns the artist."""
    p = _np(lorentz.to_poincare(_as_float(x), curv=curv).reshape(-1, 2))
    kwargs.setdefault("s", 18)
    kwargs.setdefault("zorder", 4)
    return ax.scatter(p[:, 0], p[:, 1], **kwargs)


def plot_geodesic(ax, x, y, curv: float = 1.0, steps: int = 100, **kwargs):
    """Draw the geodesic segments from ``x`` to ``y`` (2-D Lorentz points (..., 2), broadcasting)
    via :func:`hyplib.lorentz.geodesic`; returns the list of line artists."""
    path = lorentz.geodesic(_as_float(x), _as_float(y), curv=curv, steps=steps)
    p = _np(lorentz.to_poincare(path, curv=curv).reshape(-1, steps, 2))
    kwargs.setdefault("color", COLORS["geodesic"])
    kwargs.setdefault("lw", 1.0)
    return [ax.plot(seg[:, 0], seg[:, 1], **kwargs)[0] for seg in p]


def plot_cone(ax, x, curv: float = 1.0, min_radius: float = 0.1, *, fill: bool = True,
              length: float | None = None, color=None, alpha: float = 0.18, **kwargs):
    """Draw the entailment cone of one 2-D Lorentz point ``x`` (2,): its two boundary rays
    (geodesics leaving ``x`` at ``+-omega(x)`` to the outward direction, see
    :func:`cone_boundary`) and, with ``fill``, the region between them."""
    color = COLORS["cone"] if color is None else color
    x = _as_float(x)
    ray_a, ray_b = cone_boundary(x, curv=curv, min_radius=min_radius, length=length)
    pa, pb = (_np(lorentz.to_poincare(r, curv=curv)) for r in (ray_a, ray_b))
    kwargs.setdefault("lw", 1.0)
    lines = [ax.plot(q[:, 0], q[:, 1], color=color, **kwargs)[0] for q in (pa, pb)]
    if fill:
        length = 8.0 / math.sqrt(curv) if length is None else length
        omega = float(lorentz.half_aperture(x, curv=curv, min_radius=min_radius))
        theta = torch.linspace(omega, -omega, 100, dtype=x.dtype)
        far = _np(lorentz.to_poincare(polar_point(x, length, theta, curv=curv), curv=curv))
        polygon = np.concatenate([pa, far, pb[::-1]])
        ax.fill(polygon[:, 0], polygon[:, 1], color=color, alpha=alpha, lw=0)
    return lines


def plot_field(ax, p: Tensor, v: Tensor, *, normalise: bool = True, scale: float = 22.0, **kwargs):
    """Quiver of vectors ``v`` (N, 2) at Poincare positions ``p`` (N, 2) (see
    :func:`descent_field`). With ``normalise`` arrows have unit length and are coloured by
    ``log10 |v|``, so both weak and strong regions stay readable. Returns the quiver."""
    p, v = _np(p), _np(v)
    mag = np.linalg.norm(v, axis=-1)
    kwargs.setdefault("width", 0.004)
    if normalise:
        # Floor the magnitude: a zero vector has no direction (drawn as a dot-sized arrow).
        u = v / np.maximum(mag, 1e-300)[:, None]
        colour = np.log10(np.maximum(mag, 1e-12))
        kwargs.setdefault("cmap", "viridis")
        return ax.quiver(p[:, 0], p[:, 1], u[:, 0], u[:, 1], colour, scale=scale, **kwargs)
    return ax.quiver(p[:, 0], p[:, 1], v[:, 0], v[:, 1], **kwargs)
