"""Products of ``k`` Lorentz hyperboloids ``H^d`` (PHyCLIP's geometry).

Conventions:

* A product point is stored flat as (..., k*d) or factored as (..., k, d); factor ``i`` holds
  the space part of a point of the hyperboloid of curvature ``-curv[i]`` (see
  :mod:`hyplib.lorentz` for the per-factor conventions).
* ``curv`` is a positive float (shared) or a tensor of shape (k,) (one per factor).
* Per-factor distances are combined by :func:`combine`: ``"l1"`` is the *mean* over factors
  (PHyCLIP's code divides the l1 sum by ``k``), ``"l2"`` the root mean square and
  ``"linf"`` the maximum (the paper's ablation shows it collapses).
"""
from __future__ import annotations

import torch
from torch import Tensor

from hyplib import lorentz

__all__ = [
    "COMBINATIONS", "split", "merge", "combine", "factor_curv", "dist", "pairwise_factor_dists",
    "pairwise_dist", "pairwise_factor_inner", "pairwise_inner_sum", "expmap0", "logmap0", "dist0",
]

COMBINATIONS = ("l1", "l2", "linf")


def split(x: Tensor, k: int) -> Tensor:
    """(..., k*d) -> (..., k, d)."""
    if k < 1 or x.shape[-1] % k != 0:
        raise ValueError(f"k={k} must be >= 1 and divide the last dimension of x, got x.shape={tuple(x.shape)}")
    return x.reshape(*x.shape[:-1], k, x.shape[-1] // k)


def merge(x: Tensor) -> Tensor:
    """(..., k, d) -> (..., k*d)."""
    return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


def combine(dists: Tensor, how: str = "l1") -> Tensor:
    """Reduce per-factor distances (..., k) to product distances (...).

    .. math:: l1: \\tfrac1k\\sum_i d_i,\\quad l2: \\sqrt{\\tfrac1k\\sum_i d_i^2},\\quad
              l\\infty: \\max_i d_i
    """
    if how == "l1":
        return dists.mean(-1)
    if how == "l2":
        return torch.sqrt((dists * dists).mean(-1))
    if how == "linf":
        return dists.amax(-1)
    raise ValueError(f"how={how!r} is not a known combination; choose one of {COMBINATIONS}")


def factor_curv(curv, k: int, like: Tensor) -> Tensor:
    """Curvature as a (k,) tensor on ``like``'s device; a float is shared by all factors."""
    c = torch.as_tensor(curv, dtype=torch.promote_types(like.dtype, torch.float32), device=like.device)
    if c.dim() == 0:
        return c.expand(k)
    if c.shape != (k,):
        raise ValueError(f"curv must be a float or have shape ({k},), got shape {tuple(c.shape)}")
    return c


def dist(x: Tensor, y: Tensor, *, curv, how: str = "l1") -> Tensor:
    """Paired product distance of factored points (..., k, d) -> (...)."""
    return combine(lorentz.dist(x, y, curv=factor_curv(curv, x.shape[-2], x)), how)


def dist0(x: Tensor, *, curv) -> Tensor:
    """Per-factor distance to the root of factored points (..., k, d) -> (..., k)."""
    return lorentz.dist0(x, curv=factor_curv(curv, x.shape[-2], x))


def expmap0(v: Tensor, *, curv) -> Tensor:
    """Per-factor :func:`hyplib.lorentz.expmap0` of factored tangent vectors (..., k, d)."""
    return lorentz.expmap0(v, curv=factor_curv(curv, v.shape[-2], v))


def logmap0(x: Tensor, *, curv) -> Tensor:
    """Per-factor :func:`hyplib.lorentz.logmap0` of factored points (..., k, d)."""
    return lorentz.logmap0(x, curv=factor_curv(curv, x.shape[-2], x))


def _factor_major(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    if x.dim() != 3 or y.dim() != 3 or x.shape[1:] != y.shape[1:]:
        raise ValueError(
            f"x and y must be factored as (B, k, d) with equal (k, d), got "
            f"x.shape={tuple(x.shape)} and y.shape={tuple(y.shape)}"
        )
    return x.transpose(0, 1), y.transpose(0, 1)


def pairwise_factor_dists(x: Tensor, y: Tensor, *, curv) -> Tensor:
    """Per-factor all-pairs distances: (B1, k, d) x (B2, k, d) -> (B1, B2, k)."""
    xf, yf = _factor_major(x, y)
    d = lorentz.pairwise_dist(xf, yf, curv=factor_curv(curv, x.shape[1], x))
    return d.permute(1, 2, 0)


def pairwise_dist(x: Tensor, y: Tensor, *, curv, how: str = "l1") -> Tensor:
    """All-pairs product distance: (B1, k, d) x (B2, k, d) -> (B1, B2)."""
    return combine(pairwise_factor_dists(x, y, curv=curv), how)


def pairwise_factor_inner(x: Tensor, y: Tensor, *, curv) -> Tensor:
    """Per-factor all-pairs Lorentzian inner products: (B1, k, d) x (B2, k, d) -> (B1, B2, k).

    PHyCLIP's authors score zero-shot and retrieval with the sum over factors of these.
    """
    xf, yf = _factor_major(x, y)
    return lorentz.pairwise_inner(xf, yf, curv=factor_curv(curv, x.shape[1], x)).permute(1, 2, 0)


def pairwise_inner_sum(x: Tensor, y: Tensor, *, curv) -> Tensor:
    """Sum over factors of Lorentzian inner products: (B1, k, d) x (B2, k, d) -> (B1, B2).

    .. math:: \\sum_i \\langle x_i, y_i \\rangle_L = x \\cdot y - \\sum_i x_{t,i}\\, y_{t,i}

    Two matmuls (flat space parts, then the (B, k) time parts); no (B1, B2, k) buffer.
    """
    _factor_major(x, y)
    # Half-precision products of coordinates overflow float16 beyond norms of ~250.
    x, y = (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in (x, y))
    c = factor_curv(curv, x.shape[1], x)
    xt = lorentz.time_component(x, curv=c)
    yt = lorentz.time_component(y, curv=c)
    return merge(x) @ merge(y).T - xt @ yt.T
