"""The all-pairs exterior angle's elementwise passes on CPU through the C kernel ``pairwise_angle.c``.

:func:`hyplib.lorentz.pairwise_exterior_angle` gets the cosines ``cos`` (N, B1, B2) of the
angles at the root from one GEMM of unit vectors, and then the angle at one end of each pair as

.. math:: \\phi = \\operatorname{atan2}\\big(\\sqrt{\\max(1 - \\cos^2, \\text{floor})},\\;
          a \\cos + b\\,r\\big)

with per-point vectors ``a = sqrt(c) x_t``, ``b = -sqrt(c) |x|`` (of the point the angle is at)
and ``r = y_t / |y|`` (of the other). Where :func:`applies`, :func:`angle` does this in one pass
forward and one backward (the gradients for ``cos``, ``a``, ``b`` and ``r``), instead of
autograd's dozen passes through the same formula. The kernel's ``atan2`` is within 2 ulp.
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from hyplib import native

__all__ = ["applies", "available", "turned_off", "unavailable_reason", "angle"]

_i, _f, _p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
_KERNEL = native.Kernel("pairwise_angle", {
    "pairwise_angle_forward": [_i, _i, _i, _p, _p, _p, _p, _i, _f, _p],
    "pairwise_angle_backward": [_i, _i, _i, _p, _p, _p, _p, _i, _f, _p, _p, _p, _p],
})
_library = _KERNEL.library
available, turned_off, unavailable_reason = _KERNEL.available, _KERNEL.turned_off, _KERNEL.unavailable_reason


def applies(cos: Tensor) -> bool:
    """Whether the kernel takes ``cos`` (float32 on the CPU, 3-d) and is available."""
    return cos.dtype == torch.float32 and cos.device.type == "cpu" and cos.dim() == 3 and available()


def _flat(v: Tensor, n: int, size: int) -> Tensor:
    """A per-row or per-column vector broadcastable to (N, B1, B2) as a contiguous (N, size) copy."""
    return v.expand(n, *v.shape[1:]).reshape(n, size).contiguous()


class _PairwiseAngle(torch.autograd.Function):
    """cos (N, B1, B2), a and b (N, B1, 1) or (``by_column``) (N, 1, B2), r the other -> phi (N, B1, B2)."""

    @staticmethod
    def forward(ctx, cos, a, b, r, by_column, floor_sq):
        lib = _library()
        n, b1, b2 = cos.shape
        near, far = (b2, b1) if by_column else (b1, b2)
        cos_c = cos.contiguous()
        a_f, b_f, r_f = _flat(a, n, near), _flat(b, n, near), _flat(r, n, far)
        phi = torch.empty_like(cos_c)
        ranges = native.row_ranges(b1, torch.get_num_threads())
        for m in range(n):
            def rows(_, lo, hi, m=m):
                lib.pairwise_angle_forward(lo, hi, b2, cos_c[m].data_ptr(), a_f[m].data_ptr(), b_f[m].data_ptr(),
                                           r_f[m].data_ptr(), int(by_column), floor_sq, phi[m].data_ptr())
            native.run_rows(rows, ranges)
        ctx.save_for_backward(cos_c, a_f, b_f, r_f)
        ctx.by_column, ctx.floor_sq, ctx.shapes = by_column, floor_sq, (a.shape, b.shape, r.shape)
        return phi

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        lib = _library()
        cos, a_f, b_f, r_f = ctx.saved_tensors
        n, b1, b2 = cos.shape
        g = g.to(cos.dtype).contiguous()
        g_cos = torch.empty_like(cos)
        ranges = native.row_ranges(b1, torch.get_num_threads())
        row_sums = cos.new_zeros(n, b1, 2)
        col_sums = cos.new_zeros(n, len(ranges), 2, b2)                      # one partial per thread
        for m in range(n):
            def rows(part, lo, hi, m=m):
                lib.pairwise_angle_backward(lo, hi, b2, cos[m].data_ptr(), a_f[m].data_ptr(), b_f[m].data_ptr(),
                                            r_f[m].data_ptr(), int(ctx.by_column), ctx.floor_sq, g[m].data_ptr(),
                                            g_cos[m].data_ptr(), row_sums[m].data_ptr(), col_sums[m, part].data_ptr())
            native.run_rows(rows, ranges)
        cols = col_sums.sum(1)                                                 # (N, 2, B2)
        rows_, cols_ = row_sums.unsqueeze(-1), cols.unsqueeze(-2)             # (N, B1, 2, 1), (N, 2, 1, B2)
        if ctx.by_column:
            g_a, g_b, g_r = cols_[:, 0], cols_[:, 1], rows_[:, :, 0]
        else:
            g_a, g_b, g_r = rows_[:, :, 0], rows_[:, :, 1], cols_[:, 0]
        shape_a, shape_b, shape_r = ctx.shapes
        return g_cos, g_a.sum_to_size(shape_a), g_b.sum_to_size(shape_b), g_r.sum_to_size(shape_r), None, None


def angle(cos: Tensor, a: Tensor, b: Tensor, r: Tensor, *, by_column: bool, floor_sq: float) -> Tensor:
    """``atan2(sqrt(max(1 - cos^2, floor_sq)), a cos + b r)`` (N, B1, B2) with gradients for all
    four tensors; ``a`` and ``b`` broadcast as (N, B1, 1) and ``r`` as (N, 1, B2), or with
    ``by_column`` the other way round (the angle at the column's point). Needs :func:`applies`."""
    return _PairwiseAngle.apply(cos, a, b, r, by_column, floor_sq)
