"""The Lorentz all-pairs distance's elementwise passes on CPU through the C kernel ``lorentz_dist.c``.

:class:`hyplib.lorentz._PairwiseDist` computes ``-c x.y`` with one ``bmm`` and then, where
:func:`applies`, calls :func:`forward` (adds ``c x_t y_t`` to make ``z``, and
``acosh(max(z, 1 + eps)) / sqrt(c)`` times the logit scale, one pass) and in the backward
:func:`backward` (``G = g / sqrt(z^2 - 1)``, 0 on the floor, with the sums ``sum g d`` and
``sum G z`` that the curvature and scale gradients need and the products ``G y_t``, ``G^T x_t``,
one pass) instead of its PyTorch passes.
The values are the PyTorch path's to float32 rounding (the kernel's ``log`` is within one ulp).
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from hyplib import native

__all__ = ["applies", "available", "turned_off", "unavailable_reason", "forward", "backward"]

_i, _f, _p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
_KERNEL = native.Kernel("lorentz_dist", {
    "lorentz_dist_forward": [_i, _i, _i, _p, _p, _p, _f, _f, _p],
    "lorentz_dist_backward": [_i, _i, _i, _p, _p, _p, _p, _f, _f, _p, _p, _p, _p],
})
_library = _KERNEL.library
available, turned_off, unavailable_reason = _KERNEL.available, _KERNEL.turned_off, _KERNEL.unavailable_reason


def applies(*tensors: Tensor) -> bool:
    """Whether the kernel takes tensors like these (float32 on the CPU) and is available; the
    functions below take contiguous ones."""
    return all(t.dtype == torch.float32 and t.device.type == "cpu" for t in tensors) and available()


def forward(z: Tensor, x_term: Tensor, y_term: Tensor, factor: Tensor, floor: float) -> Tensor:
    """Adds ``x_term`` (N, B1) times ``y_term`` (N, B2) to ``z`` (N, B1, B2) in place and returns
    ``acosh(max(z, floor)) * factor`` (``factor`` (N,): the logit scale over ``sqrt(c)``); all
    contiguous float32."""
    lib = _library()
    n, b1, b2 = z.shape
    out = torch.empty_like(z)
    scales = factor.tolist()
    ranges = native.row_ranges(b1, native.threads_for(b1 * b2))
    for m in range(n):
        def rows(_, lo, hi, m=m):
            lib.lorentz_dist_forward(lo, hi, b2, z[m].data_ptr(), x_term[m].data_ptr(), y_term[m].data_ptr(),
                                     floor, scales[m], out[m].data_ptr())
        native.run_rows(rows, ranges)
    return out


def backward(z: Tensor, g: Tensor, x_t: Tensor, y_t: Tensor, inv_sqrt_c: Tensor, floor: float):
    """``G = g / sqrt(z^2 - 1)`` (0 where ``z <= floor``) for contiguous ``z`` and ``g`` (N, B1, B2),
    with ``G y_t`` (N, B1) and ``G^T x_t`` (N, B2) for contiguous time coordinates ``x_t`` (N, B1)
    and ``y_t`` (N, B2), and per matrix ``sum g d`` (``d = acosh(max(z, floor)) * inv_sqrt_c``,
    computed again; ``inv_sqrt_c`` (N,)) and ``sum G z``, each (N,) float64.

    Returns ``(G, G y_t, G^T x_t, sum g d, sum G z)``."""
    lib = _library()
    n, b1, b2 = z.shape
    G = torch.empty_like(z)
    ranges = native.row_ranges(b1, native.threads_for(b1 * b2))
    rows_t = torch.empty(n, b1, dtype=z.dtype)
    cols_t = torch.zeros(n, len(ranges), b2, dtype=z.dtype)               # one partial per thread
    sums = torch.zeros(n, len(ranges), 2, dtype=torch.float64)
    scales = inv_sqrt_c.tolist()
    for m in range(n):
        def rows(part, lo, hi, m=m):
            lib.lorentz_dist_backward(lo, hi, b2, z[m].data_ptr(), g[m].data_ptr(), x_t[m].data_ptr(),
                                      y_t[m].data_ptr(), floor, scales[m], G[m].data_ptr(), rows_t[m].data_ptr(),
                                      cols_t[m, part].data_ptr(), sums[m, part].data_ptr())
        native.run_rows(rows, ranges)
    totals = sums.sum(1)
    return G, rows_t, cols_t.sum(1), totals[:, 0], totals[:, 1]
