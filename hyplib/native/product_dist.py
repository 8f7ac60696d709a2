"""PHyCLIP's l1 product distance on CPU through the C kernel ``product_dist.c``.

Same function, value and gradients, as :func:`hyplib.product.pairwise_dist` with ``how="l1"``
(and as the chunked :func:`hyplib.methods.fused.pairwise_product_dist`, which calls this when
it can), but every (factor, row, column) entry is computed in registers: the acosh argument
``a = c (x_t y_t - x.y)`` from the d coordinates, its ``log``, and in the backward the
contractions with ``H = (g/k) / sqrt(a^2 - 1)`` (0 where ``a`` sat on its floor at ``1 + eps``).
No (k, B1, B2) array is made: the curvature gradient needs ``sum W acosh(a)`` per factor, and
the backward computes ``acosh`` again for it (on an AVX-512 Xeon, keeping the forward's values
and reading them back cost 20% more than the second ``log``).

With the kernel's sums (``rows``, ``cols``, ``sums``: see the C file) and per factor ``c``:

.. math:: \\nabla_x = \\sqrt c\\,[(H y_t)\\,x/x_t - H y],\\quad
          \\nabla_y = \\sqrt c\\,[(H^T x_t)\\,y/y_t - H^T x],

.. math:: \\partial_c = c^{-3/2}\\Big[-\\tfrac12\\sum W \\operatorname{acosh}(a) + \\sum H a
          - \\tfrac12\\Big(\\sum_i \\frac{(H y_t)_i}{x_{t,i}} + \\sum_j \\frac{(H^T x_t)_j}{y_{t,j}}\\Big)\\Big]

(``W = g/k``, ``da/dc = a/c - (y_t/x_t + x_t/y_t)/(2c)``). Rows are split over
:func:`hyplib.native.threads_for` Python threads; ctypes releases the GIL during each call.
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from hyplib import lorentz, native
from hyplib.lorentz import eps_for

__all__ = ["available", "turned_off", "unavailable_reason", "pairwise_product_dist_l1", "TILE_ROWS", "MAX_D"]

#: Rows per tile in the C kernel (ROWS there); thread ranges are aligned to it.
TILE_ROWS = 16
#: Largest factor dimension the C kernel takes (MAX_D there).
MAX_D = 64
_i, _f, _p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
_KERNEL = native.Kernel("product_dist", {
    "product_dist_l1_forward": [_i, _i, _i, _i, _p, _p, _p, _p, _p, _p, _f, _i, _i, _p],
    "product_dist_l1_backward": [_i, _i, _i, _i, _p, _p, _p, _p, _p, _p, _f, _f, _i, _i, _i, _p, _p, _p],
})
_library = _KERNEL.library
available, turned_off, unavailable_reason = _KERNEL.available, _KERNEL.turned_off, _KERNEL.unavailable_reason


def _prepared(x: Tensor, y: Tensor, c: Tensor):
    """Time parts and y transposed per factor, all contiguous: xt (k, B1), yt (k, B2), yT (k, d, B2)."""
    xt = lorentz.time_component(x, curv=c[:, None]).contiguous()
    yt = lorentz.time_component(y, curv=c[:, None]).contiguous()
    return xt, yt, y.transpose(1, 2).contiguous()


#: A tensor's address for the kernel (None -> NULL).
_ptr = native.data_ptr


class _ProductDistL1(torch.autograd.Function):
    """(k, B1, d) x (k, B2, d) x (k,) factor-major contiguous float32 CPU -> (B1, B2)."""

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor, c: Tensor) -> Tensor:
        lib = _library()
        k, b1, d = x.shape
        b2 = y.shape[1]
        xt, yt, yT = _prepared(x, y, c)
        weight = (c.rsqrt() / k).contiguous()
        out = x.new_empty(b1, b2)
        floor = 1.0 + eps_for(x.dtype)

        def rows(_, lo, hi):
            lib.product_dist_l1_forward(k, b1, b2, d, _ptr(x), _ptr(xt), _ptr(yT), _ptr(yt), _ptr(c),
                                        _ptr(weight), floor, lo, hi, _ptr(out))

        native.run_rows(rows, native.row_ranges(b1, native.threads_for(k * b1 * b2), TILE_ROWS))
        ctx.save_for_backward(x, y, c)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        lib = _library()
        x, y, c = ctx.saved_tensors
        k, b1, d = x.shape
        b2 = y.shape[1]
        xt, yt, yT = _prepared(x, y, c)
        g = g.to(x.dtype).contiguous()
        with_log = int(ctx.needs_input_grad[2])
        ranges = native.row_ranges(b1, native.threads_for(k * b1 * b2), TILE_ROWS)
        row_sums = x.new_zeros(k, b1, d + 1)
        col_sums = x.new_zeros(len(ranges), k, d + 1, b2)       # one partial per thread
        scalar_sums = torch.zeros(len(ranges), k, 2, dtype=torch.float64)
        floor = 1.0 + eps_for(x.dtype)

        def rows(n, lo, hi):
            lib.product_dist_l1_backward(k, b1, b2, d, _ptr(x), _ptr(xt), _ptr(yT), _ptr(yt), _ptr(c), _ptr(g),
                                         1.0 / k, floor, with_log, lo, hi, _ptr(row_sums),
                                         _ptr(col_sums[n]), _ptr(scalar_sums[n]))

        native.run_rows(rows, ranges)
        cols = col_sums.sum(0)
        sqrt_c = c.sqrt()[:, None, None]
        gx = sqrt_c * (row_sums[..., d:] * (x / xt[..., None]) - row_sums[..., :d])
        gy = sqrt_c * (cols[:, d, :, None] * (y / yt[..., None]) - cols[:, :d].transpose(1, 2))
        gc = None
        if ctx.needs_input_grad[2]:
            sums = scalar_sums.sum(0).to(x.dtype)
            times = (row_sums[..., d] / xt).sum(1) + (cols[:, d] / yt).sum(1)
            gc = (sums[:, 1] - 0.5 * sums[:, 0] - 0.5 * times) / c.pow(1.5)
        return gx, gy, gc


def pairwise_product_dist_l1(x: Tensor, y: Tensor, curv: Tensor) -> Tensor:
    """l1 product distance (B1, B2) of factor-major contiguous float32 CPU points x (k, B1, d) and
    y (k, B2, d), with per-factor curvatures ``curv`` (k,). Needs :func:`available`.
    """
    if x.shape[2] > MAX_D:
        raise ValueError(f"the C kernel takes factors of dimension <= {MAX_D}, got {x.shape[2]}")
    if _library() is None:
        raise RuntimeError(f"the product-distance C kernel is unavailable: {unavailable_reason()}")
    for name, t in (("x", x), ("y", y), ("curv", curv)):
        if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
            raise ValueError(f"{name} must be a contiguous float32 CPU tensor, got {t.dtype} on {t.device}")
    return _ProductDistL1.apply(x, y, curv)
