"""Memory-lean all-pairs product distance for PHyCLIP's contrastive logits.

:func:`hyplib.product.pairwise_dist` builds several (k, B1, B2) tensors (inner products, time
outer product, clamp, acosh, ...) and autograd keeps most of them: at k = 64, B = 1024 that is
about 256 MB each, and on CPU the elementwise passes over them are memory-bound. This module
computes the same function, value and gradients, with a hand-written backward that walks over
row chunks of ``x`` small enough to stay in cache and saves only the inputs and the (B1, B2)
result. ``acosh(a)`` is evaluated as ``log(a + sqrt((a - 1)(a + 1)))`` (vectorised, exact near
1), with the argument floored at ``1 + eps`` as in :mod:`hyplib.lorentz`.

Per factor ``i`` (curvature ``c``), with ``x_t = sqrt(1/c + |x|^2)``:

.. math:: p = x\\cdot y - x_t y_t,\\quad a = \\max(-c\\,p, 1 + \\epsilon),\\quad
          D_i = \\operatorname{acosh}(a)/\\sqrt c

then ``combine`` over factors (l1 = mean, l2 = root mean square, linf = max). Gradients:

.. math:: \\frac{\\partial D}{\\partial p} = -\\frac{\\sqrt c}{\\sqrt{a^2 - 1}}[a > 1 + \\epsilon],\\quad
          \\frac{\\partial p}{\\partial x} = y - \\frac{y_t}{x_t} x,\\quad
          \\frac{\\partial p}{\\partial c} = \\frac{y_t/x_t + x_t/y_t}{2c^2},\\quad
          \\frac{\\partial D}{\\partial c}\\Big|_a = -\\frac{D}{2c}
"""
from __future__ import annotations

import torch
from torch import Tensor

from hyplib import product
from hyplib.lorentz import eps_for

__all__ = ["pairwise_product_dist"]

#: Elements of one (k, rows, B2) chunk: 2**20 float32 = 4 MiB, so a chunk stays in cache.
CPU_CHUNK_ELEMENTS = 2 ** 20
#: On GPUs larger chunks keep kernels busy; memory stays bounded all the same.
CUDA_CHUNK_ELEMENTS = 2 ** 26


def _times(x: Tensor, curv: Tensor) -> Tensor:
    """(k, B, d), (k,) -> (k, B) time components."""
    return torch.sqrt(1.0 / curv[:, None] + (x * x).sum(-1))


def _factor_terms(xc: Tensor, xtc: Tensor, y: Tensor, yt: Tensor, curv: Tensor):
    """Chunk forward: a (clamped), sqrt(a^2 - 1), per-factor distances D; each (k, r, B2)."""
    eps = eps_for(xc.dtype)
    # a = -c p = c x_t y_t - c x.y, as one batched matmul accumulated onto the outer product.
    a = torch.baddbmm((curv[:, None, None] * xtc[:, :, None]) * yt[:, None, :],
                      curv[:, None, None] * xc, y.transpose(1, 2), alpha=-1.0)
    # Floor at 1 + eps: rounding puts coincident points below 1, where acosh is undefined.
    a = torch.clamp(a, min=1.0 + eps)
    s = torch.sqrt((a - 1.0) * (a + 1.0))
    d = torch.log(a + s) / curv.sqrt()[:, None, None]
    return a, s, d


def _combine0(d: Tensor, how: str) -> Tensor:
    """Reduce (k, r, B2) per-factor distances over factors (dim 0), as product.combine does."""
    if how == "l1":
        return d.mean(0)
    if how == "l2":
        return torch.sqrt((d * d).mean(0))
    return d.amax(0)


def _combine0_grad(d: Tensor, out: Tensor, g: Tensor, how: str) -> Tensor:
    """dL/dD_i (k, r, B2) from dL/dout ``g`` (r, B2)."""
    k = d.shape[0]
    if how == "l1":
        return (g / k).expand_as(d)
    if how == "l2":
        # out >= acosh(1 + eps)/sqrt(c) > 0 on the manifold; the floor only guards 0/0.
        return d * (g / (k * torch.clamp(out, min=eps_for(out.dtype))))[None]
    # linf: like torch.amax, split the gradient evenly between tied maxima.
    hit = (d == out[None]).to(d.dtype)
    return hit * (g / hit.sum(0))[None]


class _PairwiseProductDist(torch.autograd.Function):
    """(k, B1, d) x (k, B2, d) x (k,) -> (B1, B2); see the module docstring."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, curv: Tensor, how: str, rows: int) -> Tensor:
        xt, yt = _times(x, curv), _times(y, curv)
        out = x.new_empty(x.shape[1], y.shape[1])
        for i in range(0, x.shape[1], rows):
            _, _, d = _factor_terms(x[:, i:i + rows], xt[:, i:i + rows], y, yt, curv)
            out[i:i + rows] = _combine0(d, how)
        ctx.save_for_backward(x, y, curv, out)
        ctx.how, ctx.rows = how, rows
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        x, y, curv, out = ctx.saved_tensors
        eps = eps_for(x.dtype)
        xt, yt = _times(x, curv), _times(y, curv)
        c = curv[:, None, None]
        d_dim = x.shape[-1]
        gx = torch.empty_like(x)
        gc = torch.zeros_like(curv)
        # [y, y_t, 1/y_t]: one matmul with dL/dp gives every row-side contraction at once.
        y_ext = torch.cat([y, yt[:, :, None], 1.0 / yt[:, :, None]], -1)
        # Column-side contractions [gp^T x, gp^T x_t], summed over chunks, finished after the loop.
        cols = torch.zeros(y.shape[0], y.shape[1], d_dim + 1, dtype=y.dtype, device=y.device)
        for i in range(0, x.shape[1], ctx.rows):
            sl = slice(i, i + ctx.rows)
            xc, xtc = x[:, sl], xt[:, sl]
            a, s, d = _factor_terms(xc, xtc, y, yt, curv)
            w = _combine0_grad(d, out[sl], g[sl], ctx.how)                   # dL/dD
            gc -= 0.5 * (w * d).sum((1, 2)) / curv                            # via 1/sqrt(c) in D
            # dL/da = w / (sqrt(c) s), zero where a sat on its floor (clamp passes no gradient).
            ga = s.reciprocal_().mul_(w).div_(c.sqrt()).masked_fill_(a <= 1.0 + eps, 0.0)
            gc += (ga * a).sum((1, 2)) / curv                                 # via a = -c p
            gp = ga.mul_(-c)                                                   # dL/dp
            rows_side = torch.bmm(gp, y_ext)                                   # (k, r, d + 2)
            gp_yt, gp_inv_yt = rows_side[..., d_dim], rows_side[..., d_dim + 1]
            gx[:, sl] = rows_side[..., :d_dim] - (xc / xtc[:, :, None]) * gp_yt[:, :, None]
            cols.baddbmm_(gp.transpose(1, 2), torch.cat([xc, xtc[:, :, None]], -1))
            # via x_t, y_t inside p: dp/dc = (y_t/x_t + x_t/y_t) / (2c^2)
            gc += ((gp_yt / xtc).sum(1) + (gp_inv_yt * xtc).sum(1)) / (2.0 * curv * curv)
        gy = cols[..., :d_dim] - (y / yt[:, :, None]) * cols[..., d_dim:]
        return gx, gy, gc, None, None


def pairwise_product_dist(x: Tensor, y: Tensor, *, curv, how: str = "l1",
                          chunk_elements: int | None = None) -> Tensor:
    """All-pairs product distance, same value and gradients as :func:`hyplib.product.pairwise_dist`.

    Args:
        x: (B1, k, d) factored points.
        y: (B2, k, d) factored points.
        curv: float or (k,) per-factor curvatures.
        how: "l1" (mean over factors), "l2" or "linf".
        chunk_elements: elements of one (k, rows, B2) work chunk; default by device.

    Returns:
        (B1, B2) float32 (or float64 for float64 inputs) distances.
    """
    if how not in product.COMBINATIONS:
        raise ValueError(f"how={how!r} is not a known combination; choose one of {product.COMBINATIONS}")
    if x.dim() != 3 or y.dim() != 3 or x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y must be factored as (B, k, d) with equal (k, d), got "
                         f"x.shape={tuple(x.shape)} and y.shape={tuple(y.shape)}")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    y = y.to(x.dtype)
    k = x.shape[1]
    c = product.factor_curv(curv, k, x).to(x.dtype)
    if chunk_elements is None:
        chunk_elements = CUDA_CHUNK_ELEMENTS if x.is_cuda else CPU_CHUNK_ELEMENTS
    rows = max(1, chunk_elements // max(1, k * y.shape[0]))
    with torch.autocast(device_type=x.device.type, enabled=False):
        # Factor-major contiguous copies: every chunk's matmul then reads contiguous memory.
        return _PairwiseProductDist.apply(x.transpose(0, 1).contiguous(), y.transpose(0, 1).contiguous(),
                                          c.contiguous(), how, rows)
