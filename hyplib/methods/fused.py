"""Memory-lean, pass-lean all-pairs product distance for PHyCLIP's contrastive logits.

:func:`hyplib.product.pairwise_dist` builds several (k, B1, B2) tensors (inner products, time
outer product, clamp, acosh, ...) and autograd keeps most of them: at k = 64, B = 1024 that is
about 256 MB each, and on CPU the elementwise passes over them are memory-bound. This module
computes the same function, value and gradients, with a hand-written backward that walks over
one factor (and, for large batches, a block of rows of ``x``) at a time, so every chunk stays
in cache, and saves only the inputs and the (B1, B2) result.

Per factor ``i`` (curvature ``c``), with ``x_t = sqrt(1/c + |x|^2)``, one matmul of the
extended rows ``[-c x, c x_t]`` and ``[y, y_t]`` gives the acosh argument directly:

.. math:: a = c\\,x_t y_t - c\\,x\\cdot y,\\quad a \\leftarrow \\max(a, 1 + \\epsilon),\\quad
          D_i = \\operatorname{acosh}(a)/\\sqrt c,\\quad
          \\operatorname{acosh}(a) = \\log(a + q\\,r),\\ q = a^2 - 1,\\ r = q^{-1/2}

(the floor at ``1 + eps`` as in :mod:`hyplib.lorentz`), then ``combine`` over factors (l1 =
mean, l2 = root mean square, linf = max) is accumulated factor by factor. With ``W = dL/dD_i``
and ``G = dL/da = W r / \\sqrt c`` (0 where ``a`` sat on its floor), the gradients are

.. math:: \\nabla_x = c\\,\\big[(G y_t)\\,x/x_t - G y\\big],\\quad
          \\nabla_y = c\\,\\big[(G^T x_t)\\,y/y_t - G^T x\\big],

.. math:: \\partial_c = -\\frac{\\sum W D_i}{2c} + \\frac{\\sum G a}{c}
          - \\frac{\\sum_r (G y_t)_r / x_{t,r} + \\sum_b (G^T x_t)_b / y_{t,b}}{2c}

(``da/dc = a/c - (y_t/x_t + x_t/y_t)/(2c)``), where ``\\sum G a = c[x_t\\cdot(G y_t) - \\sum_r x_r\\cdot(G y)_r]``
comes out of the two contractions ``G [y, y_t]`` and ``[x, x_t]^T G`` at no extra pass. Per
chunk the forward costs one matmul and six in-cache elementwise passes (one ``log``, one
``rsqrt``) into three reused buffers; the backward rebuilds ``a`` the same way (its ``log`` is
needed only for ``sum W D_i``, the curvature gradient), then three passes and two matmuls.
"""
from __future__ import annotations

import torch
from torch import Tensor

from hyplib import product
from hyplib.lorentz import eps_for

__all__ = ["pairwise_product_dist"]

#: Elements of one (rows, B2) chunk: 2**20 float32 = 4 MiB, so a chunk stays in cache.
CPU_CHUNK_ELEMENTS = 2 ** 20
#: On GPUs larger chunks keep kernels busy; memory stays bounded all the same.
CUDA_CHUNK_ELEMENTS = 2 ** 26


def _extended(x: Tensor, y: Tensor, curv: Tensor):
    """Factor-major (k, B, d) inputs -> times and the matmul operands.

    Returns ``xt`` (k, B1), ``yt`` (k, B2), ``xa = [-c x, c x_t]`` (k, B1, d+1) and
    ``yb = [y, y_t, 0...]`` (k, B2, P) zero-padded to a multiple of 8 columns (narrow
    right-hand sides are several times slower in CPU BLAS); ``a = xa @ yb[..., :d+1]^T``.
    """
    c = curv[:, None]
    xt = torch.sqrt(1.0 / c + (x * x).sum(-1))
    yt = torch.sqrt(1.0 / c + (y * y).sum(-1))
    xa = torch.cat([x, xt[..., None]], -1) * c[..., None]
    xa[..., :-1].neg_()
    d1 = y.shape[-1] + 1
    yb = y.new_zeros(y.shape[0], y.shape[1], -(-d1 // 8) * 8)
    yb[..., :d1 - 1], yb[..., d1 - 1] = y, yt
    return xt, yt, xa, yb


def _workspace(x: Tensor, rows: int, b2: int) -> list[Tensor]:
    """Three reusable (rows, B2) chunk buffers: fresh multi-MB CPU allocations are page-faulted
    in on every use, which costs about as much as the pass that fills them."""
    return [x.new_empty(min(rows, x.shape[1]), b2) for _ in range(3)]


def _acosh_terms(xa_i: Tensor, yb_i: Tensor, floor: float, want_mask: bool, work: list[Tensor]):
    """One chunk: clamped ``a``, ``r = (a^2-1)^{-1/2}``, ``acosh(a)`` and the floor mask (or None).

    The three results are views of the ``work`` buffers (``acosh`` overwrites ``a^2 - 1``).
    """
    n = xa_i.shape[0]
    a, q, r = (w[:n] for w in work)
    torch.mm(xa_i, yb_i[:, :xa_i.shape[1]].t(), out=a)
    # Floor at 1 + eps: rounding puts coincident points below 1, where acosh is undefined and
    # its gradient infinite; floored entries pass no gradient through a (like torch.clamp).
    # On CPU, skip the mask pass when nothing sat on the floor; on a GPU that test would stall
    # the stream once per factor and chunk (a device-to-host read), so the mask is always built.
    if not want_mask:
        mask = None
    elif a.is_cuda:
        mask = a <= floor
    else:
        mask = a <= floor if bool(a.amin() <= floor) else None
    a.clamp_min_(floor)
    torch.addcmul(a.new_tensor(-1.0), a, a, out=q)
    torch.rsqrt(q, out=r)
    acosh = q.mul_(r).add_(a).log_()  # log(a + sqrt(a^2 - 1)); vectorised, unlike torch.acosh
    return a, r, acosh, mask


class _PairwiseProductDist(torch.autograd.Function):
    """(k, B1, d) x (k, B2, d) x (k,) -> (B1, B2); see the module docstring."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, curv: Tensor, how: str, rows: int) -> Tensor:
        k = x.shape[0]
        _, _, xa, yb = _extended(x, y, curv)
        floor = 1.0 + eps_for(x.dtype)
        inv_sqrt_c = curv.rsqrt().tolist()
        out = x.new_zeros(x.shape[1], y.shape[1]) if how != "linf" else x.new_full(
            (x.shape[1], y.shape[1]), -float("inf"))
        work = _workspace(x, rows, y.shape[1])
        for i in range(k):
            for lo in range(0, x.shape[1], rows):
                o = out[lo:lo + rows]
                _, _, d, _ = _acosh_terms(xa[i, lo:lo + rows], yb[i], floor, False, work)
                if how == "l1":
                    o.add_(d, alpha=inv_sqrt_c[i] / k)
                elif how == "l2":
                    o.addcmul_(d, d, value=inv_sqrt_c[i] ** 2 / k)
                else:
                    torch.maximum(o, d.mul_(inv_sqrt_c[i]), out=o)
        if how == "l2":
            out.sqrt_()
        ctx.save_for_backward(x, y, curv, out)
        ctx.how, ctx.rows = how, rows
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        x, y, curv, out = ctx.saved_tensors
        how, rows = ctx.how, ctx.rows
        k, b1, dim = x.shape
        xt, yt, xa, yb = _extended(x, y, curv)
        floor = 1.0 + eps_for(x.dtype)
        c_list, inv_sqrt_c = curv.tolist(), curv.rsqrt().tolist()
        chunks = [(i, lo) for i in range(k) for lo in range(0, b1, rows)]
        work = _workspace(x, rows, y.shape[1])
        # Per-entry dL/dD_i, up to a factor-dependent part: l1 g/k; l2 g D_i/(k out); linf
        # g [D_i = out] / (number of maxima), ties split evenly as torch.amax does.
        if how == "l1":
            gw = g / k
        elif how == "l2":
            # out >= acosh(1 + eps)/sqrt(c) > 0 on the manifold; the floor only guards 0/0.
            gw = g / (k * torch.clamp(out, min=eps_for(out.dtype)))
        else:
            ties = torch.zeros_like(out)
            for i, lo in chunks:
                d = _acosh_terms(xa[i, lo:lo + rows], yb[i], floor, False, work)[2].mul_(inv_sqrt_c[i])
                ties[lo:lo + rows] += d == out[lo:lo + rows]
            gw = g / ties
        gx = torch.empty_like(x)
        g_cols = x.new_zeros(k, dim + 1, y.shape[1])                       # [-c x, c x_t]^T G
        gc_terms = x.new_zeros(k, 2)                                       # sum W D_i, sum G a
        gc_rows = x.new_zeros(k)                                           # sum_r (G y_t)_r / x_t
        for i, lo in chunks:
            sl = slice(lo, lo + rows)
            a, r, d, mask = _acosh_terms(xa[i, sl], yb[i], floor, True, work)
            d.mul_(inv_sqrt_c[i])                                          # D_i
            w = gw[sl]
            if how == "l2":
                w = w * d
            elif how == "linf":
                w = w * (d == out[sl])
            gc_terms[i, 0] += torch.dot(w.reshape(-1), d.reshape(-1))
            ga = r.mul_(w)                                                 # dL/da * sqrt(c)
            if mask is not None:
                ga.masked_fill_(mask, 0.0)
            # 1/sqrt(c) applied to the (small) contractions rather than to the chunk.
            g_rows = torch.mm(ga, yb[i]).mul_(inv_sqrt_c[i])               # [G y, G y_t, 0...]
            g_cols[i].addmm_(xa[i, sl].t(), ga, alpha=inv_sqrt_c[i])
            gy_r, gyt_r = g_rows[:, :dim], g_rows[:, dim]
            xs, xts = x[i, sl], xt[i, sl]
            gc_terms[i, 1] += c_list[i] * (xts @ gyt_r - (xs * gy_r).sum())
            gc_rows[i] += (gyt_r / xts).sum()
            gx[i, sl] = c_list[i] * (xs * (gyt_r / xts)[:, None] - gy_r)
        # With the c folded into [-c x, c x_t]: c (G^T x_t) = g_cols[:, d], -c (G^T x) = g_cols[:, :d].
        gy = y * (g_cols[:, dim] / yt)[..., None] + g_cols[:, :dim].transpose(1, 2)
        gc_cols = (g_cols[:, dim] / yt).sum(-1) / curv
        gc = -0.5 * gc_terms[:, 0] / curv + gc_terms[:, 1] / curv - 0.5 * (gc_rows + gc_cols) / curv
        return gx, gy, gc, None, None


def pairwise_product_dist(x: Tensor, y: Tensor, *, curv, how: str = "l1",
                          chunk_elements: int | None = None) -> Tensor:
    """All-pairs product distance, same value and gradients as :func:`hyplib.product.pairwise_dist`.

    Args:
        x: (B1, k, d) factored points.
        y: (B2, k, d) factored points.
        curv: float or (k,) per-factor curvatures.
        how: "l1" (mean over factors), "l2" or "linf".
        chunk_elements: elements of one (rows, B2) work chunk of one factor; default by device.

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
    rows = max(1, chunk_elements // max(1, y.shape[0]))
    with torch.autocast(device_type=x.device.type, enabled=False):
        # Factor-major contiguous copies: every chunk's matmul then reads contiguous memory.
        return _PairwiseProductDist.apply(x.transpose(0, 1).contiguous(), y.transpose(0, 1).contiguous(),
                                          c.contiguous(), how, rows)
