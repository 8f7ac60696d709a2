"""The all-pairs exterior angle's elementwise passes on CPU through the C kernel ``pairwise_angle.c``.

:func:`hyplib.lorentz.pairwise_exterior_angle` gets the inner products ``prod`` (N, B1, B2) of
``x`` and ``y`` from one GEMM, and then the angle at one end of each pair as

.. math:: \\cos = \\frac{\\text{prod}}{|x|\\,|y|},\\quad
          \\text{out} = \\text{scale}\\cdot\\operatorname{atan2}\\big(\\sqrt{\\max(1 - \\cos^2,
          \\text{floor})},\\; a \\cos + b\\,r\\big)

with per-point vectors ``a = sqrt(c) x_t``, ``b = -sqrt(c) |x|`` (of the point the angle is at)
and ``r = y_t / |y|`` (of the other). Where :func:`applies`, :func:`angle` does this in one pass
forward and one backward (the gradients for ``prod``, both norms, ``a``, ``b``, ``r`` and the
scale), instead of autograd's dozen passes through the same formula and the (B, n) passes that
normalise ``x`` and ``y`` before the GEMM. The kernel's ``atan2`` is within 2 ulp.
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from hyplib import native

__all__ = ["applies", "available", "turned_off", "unavailable_reason", "angle"]

_i, _f, _p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
_KERNEL = native.Kernel("pairwise_angle", {
    "pairwise_angle_forward": [_i, _i, _i, _p, _p, _p, _p, _p, _p, _i, _f, _f, _p],
    "pairwise_angle_backward": [_i, _i, _i, _p, _p, _p, _p, _p, _p, _i, _f, _f, _p, _p, _p, _p, _p],
})
_library = _KERNEL.library
available, turned_off, unavailable_reason = _KERNEL.available, _KERNEL.turned_off, _KERNEL.unavailable_reason


def applies(prod: Tensor) -> bool:
    """Whether the kernel takes ``prod`` (float32 on the CPU, 3-d) and is available."""
    return prod.dtype == torch.float32 and prod.device.type == "cpu" and prod.dim() == 3 and available()


def _flat(v: Tensor, n: int, size: int) -> Tensor:
    """A per-row or per-column vector broadcastable to (N, B1, B2) as a contiguous (N, size) copy."""
    return v.expand(n, *v.shape[1:]).reshape(n, size).contiguous()


def _forward_pass(prod, ix, iy, a, b, r, by_column: bool, floor_sq: float, factor: float) -> Tensor:
    """The kernel's forward over contiguous ``prod`` (N, B1, B2) and the flat per-point vectors."""
    lib = _library()
    n, b1, b2 = prod.shape
    out = torch.empty_like(prod)
    ranges = native.row_ranges(b1, torch.get_num_threads())
    for m in range(n):
        def rows(_, lo, hi, m=m):
            lib.pairwise_angle_forward(lo, hi, b2, prod[m].data_ptr(), ix[m].data_ptr(), iy[m].data_ptr(),
                                       a[m].data_ptr(), b[m].data_ptr(), r[m].data_ptr(), int(by_column), floor_sq,
                                       factor, out[m].data_ptr())
        native.run_rows(rows, ranges)
    return out


class _PairwiseAngle(torch.autograd.Function):
    """prod (N, B1, B2), x_norm (N, B1, 1), y_norm (N, 1, B2), a and b (N, B1, 1) or (``by_column``)
    (N, 1, B2), r the other, scale (0-d or None) -> scale * phi (N, B1, B2)."""

    @staticmethod
    def forward(ctx, prod, x_norm, y_norm, a, b, r, by_column, floor_sq, scale):
        n, b1, b2 = prod.shape
        near, far = (b2, b1) if by_column else (b1, b2)
        prod_c = prod.contiguous()
        ix, iy = _flat(1.0 / x_norm, n, b1), _flat(1.0 / y_norm, n, b2)
        a_f, b_f, r_f = _flat(a, n, near), _flat(b, n, near), _flat(r, n, far)
        factor = 1.0 if scale is None else float(scale)
        out = _forward_pass(prod_c, ix, iy, a_f, b_f, r_f, by_column, floor_sq, factor)
        ctx.save_for_backward(prod_c, ix, iy, a_f, b_f, r_f, out)
        ctx.by_column, ctx.floor_sq, ctx.factor = by_column, floor_sq, factor
        ctx.shapes = (x_norm.shape, y_norm.shape, a.shape, b.shape, r.shape)
        ctx.scale_shape = None if scale is None else scale.shape
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        lib = _library()
        prod, ix, iy, a_f, b_f, r_f, out = ctx.saved_tensors
        n, b1, b2 = prod.shape
        g = g.to(prod.dtype).contiguous()
        g_prod = torch.empty_like(prod)
        # The scale's gradient, sum g phi, is sum g out / scale; at scale 0 out is 0 and phi is recomputed.
        needs_scale = ctx.scale_shape is not None and ctx.needs_input_grad[8]
        read_out = needs_scale and ctx.factor != 0.0
        ranges = native.row_ranges(b1, torch.get_num_threads())
        row_sums = prod.new_zeros(n, b1, 4)
        col_sums = prod.new_zeros(n, len(ranges), 3, b2)                     # one partial per thread
        for m in range(n):
            def rows(part, lo, hi, m=m):
                lib.pairwise_angle_backward(lo, hi, b2, prod[m].data_ptr(), ix[m].data_ptr(), iy[m].data_ptr(),
                                            a_f[m].data_ptr(), b_f[m].data_ptr(), r_f[m].data_ptr(),
                                            int(ctx.by_column), ctx.floor_sq, ctx.factor, g[m].data_ptr(),
                                            out[m].data_ptr() if read_out else None, g_prod[m].data_ptr(),
                                            row_sums[m].data_ptr(), col_sums[m, part].data_ptr())
            native.run_rows(rows, ranges)
        cols = col_sums.sum(1)                                                 # (N, 3, B2)
        rows_, cols_ = row_sums.unsqueeze(-1), cols.unsqueeze(-2)             # (N, B1, 4, 1), (N, 3, 1, B2)
        if ctx.by_column:
            g_a, g_b, g_r = cols_[:, 0], cols_[:, 1], rows_[:, :, 0]
        else:
            g_a, g_b, g_r = rows_[:, :, 0], rows_[:, :, 1], cols_[:, 0]
        # d cos / d|x| = -cos / |x|: the kernel's sums of g_cos cos, times -1/|x| = -ix.
        g_x_norm, g_y_norm = -rows_[:, :, 2] * ix.unsqueeze(-1), -cols_[:, 2] * iy.unsqueeze(-2)
        g_scale = None
        if needs_scale:
            if read_out:
                g_scale = row_sums[..., 3].sum() / ctx.factor
            else:
                g_scale = (g * _forward_pass(prod, ix, iy, a_f, b_f, r_f, ctx.by_column, ctx.floor_sq, 1.0)).sum()
            g_scale = g_scale.reshape(ctx.scale_shape)
        shape_x, shape_y, shape_a, shape_b, shape_r = ctx.shapes
        return (g_prod, g_x_norm.sum_to_size(shape_x), g_y_norm.sum_to_size(shape_y), g_a.sum_to_size(shape_a),
                g_b.sum_to_size(shape_b), g_r.sum_to_size(shape_r), None, None, g_scale)


def angle(prod: Tensor, x_norm: Tensor, y_norm: Tensor, a: Tensor, b: Tensor, r: Tensor, *, by_column: bool,
          floor_sq: float, scale: Tensor | None = None) -> Tensor:
    """``scale * atan2(sqrt(max(1 - cos^2, floor_sq)), a cos + b r)`` (N, B1, B2), ``cos = prod /
    (x_norm y_norm)``, with gradients for every tensor; ``x_norm`` broadcasts as (N, B1, 1) and
    ``y_norm`` as (N, 1, B2); ``a`` and ``b`` as (N, B1, 1) and ``r`` as (N, 1, B2), or with
    ``by_column`` the other way round (the angle at the column's point); ``scale`` is a 0-d tensor
    or None (1). Needs :func:`applies`."""
    return _PairwiseAngle.apply(prod, x_norm, y_norm, a, b, r, by_column, floor_sq, scale)
