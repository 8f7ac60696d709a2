"""Memory-lean, pass-lean all-pairs product distance for PHyCLIP's contrastive logits.

:func:`hyplib.product.pairwise_dist` builds several (k, B1, B2) tensors (inner products, time
outer product, clamp, acosh, ...) and autograd keeps most of them: at k = 64, B = 1024 that is
about 256 MB each, and on CPU the elementwise passes over them are memory-bound. This module
computes the same function, value and gradients, with a hand-written backward that walks over
chunks of the (k, B1, B2) work: for large batches one factor and a block of rows of ``x`` at a
time, for small ones a block of factors in one batched matmul. Every chunk stays in cache, and
only the inputs and the (B1, B2) result are saved.

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
from hyplib.native import product_dist as native_product_dist

__all__ = ["pairwise_product_dist"]

#: Elements of one chunk of a factor's rows on CPU: 2**20 float32 = 4 MiB, so a chunk stays in L3.
CPU_CHUNK_ELEMENTS = 2 ** 20
#: Elements of one block of whole factors on CPU: 2**17 float32 = 512 KiB, so the three work
#: buffers stay in a 1 MiB L2 (batch 64 x 128: 10 ms against 17 ms at 2**20, one thread).
CPU_FACTOR_BLOCK_ELEMENTS = 2 ** 17
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


def _plan(k: int, b1: int, b2: int, chunk_elements: int, block_elements: int | None = None) -> tuple[int, int]:
    """Chunk shape ``(factors, rows)`` of the (k, B1, B2) work.

    Large batches take one factor and at most ``chunk_elements`` of its entries (a block of
    rows) at a time. When every row of a factor fits, a block of factors of at most
    ``block_elements`` entries (default ``chunk_elements``) goes through one batched matmul:
    small batches would otherwise spend their time launching k times as many tiny kernels.
    """
    rows = max(1, chunk_elements // max(1, b2))
    if rows < b1:
        return 1, rows
    block = chunk_elements if block_elements is None else block_elements
    return max(1, min(k, block // max(1, b1 * b2))), b1


def _chunks(k: int, b1: int, factors: int, rows: int) -> list[tuple[slice, slice]]:
    """(factor slice, row slice) pairs that cover (k, B1) once."""
    return [(slice(f, f + factors), slice(lo, lo + rows)) for f in range(0, k, factors) for lo in range(0, b1, rows)]


def _workspace(x: Tensor, factors: int, rows: int, b2: int) -> list[Tensor]:
    """Three reusable flat chunk buffers: fresh multi-MB CPU allocations are page-faulted in on
    every use, which costs about as much as the pass that fills them."""
    return [x.new_empty(factors * rows * b2) for _ in range(3)]


def _acosh_terms(xa_c: Tensor, yb_c: Tensor, floor: float, want_mask: bool, work: list[Tensor]):
    """One (f, n, B2) chunk: clamped ``a``, ``r = (a^2-1)^{-1/2}``, ``acosh(a)`` and the floor mask
    (or None), from ``xa_c`` (f, n, d+1) and ``yb_c`` (f, B2, P).

    The three results are views of the ``work`` buffers (``acosh`` overwrites ``a^2 - 1``).
    """
    shape = (xa_c.shape[0], xa_c.shape[1], yb_c.shape[1])
    size = shape[0] * shape[1] * shape[2]
    a, q, r = (w[:size].view(shape) for w in work)
    torch.bmm(xa_c, yb_c[..., :xa_c.shape[-1]].transpose(1, 2), out=a)
    # Floor at 1 + eps: rounding puts coincident points below 1, where acosh is undefined and
    # its gradient infinite; floored entries pass no gradient through a (like torch.clamp).
    # On CPU, skip the mask pass when nothing sat on the floor; on a GPU that test would stall
    # the stream once per chunk (a device-to-host read), so the mask is always built.
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


def _add_weighted(out: Tensor, d: Tensor, weights: Tensor) -> None:
    """``out += sum_f weights[f] d[f]`` for a row block ``out`` (n, B2) and ``d`` (f, n, B2), as one
    matrix-vector product (no (f, n, B2) temporary)."""
    out.view(-1).addmv_(d.reshape(d.shape[0], -1).t(), weights)


class _PairwiseProductDist(torch.autograd.Function):
    """(k, B1, d) x (k, B2, d) x (k,) -> (B1, B2); see the module docstring."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, curv: Tensor, how: str, factors: int, rows: int) -> Tensor:
        k = x.shape[0]
        _, _, xa, yb = _extended(x, y, curv)
        floor = 1.0 + eps_for(x.dtype)
        inv_sqrt_c = curv.rsqrt()
        out = x.new_zeros(x.shape[1], y.shape[1]) if how != "linf" else x.new_full(
            (x.shape[1], y.shape[1]), -float("inf"))
        work = _workspace(x, factors, rows, y.shape[1])
        for fs, sl in _chunks(k, x.shape[1], factors, rows):
            d = _acosh_terms(xa[fs, sl], yb[fs], floor, False, work)[2]
            if how == "l1":
                _add_weighted(out[sl], d, inv_sqrt_c[fs] / k)
            elif how == "l2":
                _add_weighted(out[sl], d.mul_(d), inv_sqrt_c[fs] ** 2 / k)
            else:
                torch.maximum(out[sl], d.mul_(inv_sqrt_c[fs, None, None]).amax(0), out=out[sl])
        if how == "l2":
            out.sqrt_()
        ctx.save_for_backward(x, y, curv, out)
        ctx.how, ctx.factors, ctx.rows = how, factors, rows
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        x, y, curv, out = ctx.saved_tensors
        how, factors, rows = ctx.how, ctx.factors, ctx.rows
        k, b1, dim = x.shape
        xt, yt, xa, yb = _extended(x, y, curv)
        floor = 1.0 + eps_for(x.dtype)
        inv_sqrt_c = curv.rsqrt()
        chunks = _chunks(k, b1, factors, rows)
        work = _workspace(x, factors, rows, y.shape[1])
        # Per-entry dL/dD_i, up to a factor-dependent part: l1 g/k; l2 g D_i/(k out); linf
        # g [D_i = out] / (number of maxima), ties split evenly as torch.amax does.
        if how == "l1":
            gw = g / k
        elif how == "l2":
            # out >= acosh(1 + eps)/sqrt(c) > 0 on the manifold; the floor only guards 0/0.
            gw = g / (k * torch.clamp(out, min=eps_for(out.dtype)))
        else:
            ties = torch.zeros_like(out)
            for fs, sl in chunks:
                d = _acosh_terms(xa[fs, sl], yb[fs], floor, False, work)[2].mul_(inv_sqrt_c[fs, None, None])
                ties[sl] += (d == out[sl]).sum(0)
            gw = g / ties
        gx = torch.empty_like(x)
        g_cols = x.new_zeros(k, dim + 1, y.shape[1])                       # [-c x, c x_t]^T G
        gc_terms = x.new_zeros(k, 2)                                       # sum W D_i, sum G a
        gc_rows = x.new_zeros(k)                                           # sum_r (G y_t)_r / x_t
        for fs, sl in chunks:
            a, r, d, mask = _acosh_terms(xa[fs, sl], yb[fs], floor, True, work)
            isc = inv_sqrt_c[fs, None, None]
            d.mul_(isc)                                                    # D_i
            w = gw[sl]
            if how == "l2":
                w = w * d
            elif how == "linf":
                w = w * (d == out[sl])
            if w.dim() == 2:                                               # shared by the chunk's factors
                gc_terms[fs, 0] += torch.mv(d.reshape(d.shape[0], -1), w.reshape(-1))
            else:
                gc_terms[fs, 0] += (w * d).sum((1, 2))
            ga = r.mul_(w)                                                 # dL/da * sqrt(c)
            if mask is not None:
                ga.masked_fill_(mask, 0.0)
            # 1/sqrt(c) applied to the (small) contractions rather than to the chunk.
            g_rows = torch.bmm(ga, yb[fs]).mul_(isc)                       # [G y, G y_t, 0...]
            g_cols[fs] += torch.bmm(xa[fs, sl].transpose(1, 2), ga).mul_(isc)
            gy_r, gyt_r = g_rows[..., :dim], g_rows[..., dim]
            xs, xts, c = x[fs, sl], xt[fs, sl], curv[fs]
            gc_terms[fs, 1] += c * ((xts * gyt_r).sum(1) - (xs * gy_r).sum((1, 2)))
            gc_rows[fs] += (gyt_r / xts).sum(1)
            gx[fs, sl] = c[:, None, None] * (xs * (gyt_r / xts)[..., None] - gy_r)
        # With the c folded into [-c x, c x_t]: c (G^T x_t) = g_cols[:, d], -c (G^T x) = g_cols[:, :d].
        gy = y * (g_cols[:, dim] / yt)[..., None] + g_cols[:, :dim].transpose(1, 2)
        gc_cols = (g_cols[:, dim] / yt).sum(-1) / curv
        gc = -0.5 * gc_terms[:, 0] / curv + gc_terms[:, 1] / curv - 0.5 * (gc_rows + gc_cols) / curv
        return gx, gy, gc, None, None, None


def _use_native(native: bool | None, x: Tensor, how: str) -> bool:
    """Whether the C kernel computes this call; ``native=True`` where it cannot is an error."""
    applies = (how == "l1" and x.device.type == "cpu" and x.dtype == torch.float32
               and x.shape[-1] <= native_product_dist.MAX_D)
    if native is None:
        return applies and native_product_dist.available()
    if native and not applies:
        raise ValueError(f"native=True needs how='l1', float32 CPU inputs and d <= {native_product_dist.MAX_D}; "
                         f"got how={how!r}, {x.dtype} on {x.device}, d={x.shape[-1]}")
    if native and not native_product_dist.available():
        raise RuntimeError(f"native=True but the C kernel is unavailable: {native_product_dist.unavailable_reason()}")
    return bool(native)


def pairwise_product_dist(x: Tensor, y: Tensor, *, curv, how: str = "l1",
                          chunk_elements: int | None = None, native: bool | None = None) -> Tensor:
    """All-pairs product distance, same value and gradients as :func:`hyplib.product.pairwise_dist`.

    For ``how="l1"`` on float32 CPU tensors it runs the C kernel of
    :mod:`hyplib.native.product_dist` when that is built (``native=None``, the default; False
    forces the chunked PyTorch code below, True requires the kernel), which computes every entry
    in registers: one distance matrix at batch 1024, forward and backward, takes 2.6-3.5x one
    ``log`` pass over its (k, B1, B2) entries, and PHyCLIP's objective 0.4-0.6 of its time on
    the code below (``benchmarks/objectives.py``). Values agree to float32 rounding.

    Args:
        x: (B1, k, d) factored points.
        y: (B2, k, d) factored points.
        curv: float or (k,) per-factor curvatures.
        how: "l1" (mean over factors), "l2" or "linf".
        chunk_elements: elements of one (factors, rows, B2) work chunk; default by device (on
            CPU 2**20 for a block of rows, 2**17 for a block of whole factors).
        native: use the C kernel (see above); None uses it where it applies and is built.

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
    if _use_native(native, x, how):
        with torch.autocast(device_type="cpu", enabled=False):
            return native_product_dist.pairwise_product_dist_l1(
                x.transpose(0, 1).contiguous(), y.transpose(0, 1).contiguous(), c.contiguous())
    block_elements = chunk_elements
    if chunk_elements is None:
        chunk_elements = CUDA_CHUNK_ELEMENTS if x.is_cuda else CPU_CHUNK_ELEMENTS
        block_elements = CUDA_CHUNK_ELEMENTS if x.is_cuda else CPU_FACTOR_BLOCK_ELEMENTS
    factors, rows = _plan(k, x.shape[0], y.shape[0], chunk_elements, block_elements)
    with torch.autocast(device_type=x.device.type, enabled=False):
        # Factor-major contiguous copies: every chunk's matmul then reads contiguous memory.
        return _PairwiseProductDist.apply(x.transpose(0, 1).contiguous(), y.transpose(0, 1).contiguous(),
                                          c.contiguous(), how, factors, rows)
