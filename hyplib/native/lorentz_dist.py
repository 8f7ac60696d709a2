"""The Lorentz all-pairs distance's elementwise passes on CPU through the C kernel ``lorentz_dist.c``.

:class:`hyplib.lorentz._PairwiseDist` computes ``-c x.y`` with one ``bmm`` and then, where
:func:`applies`, calls :func:`forward` (adds ``c x_t y_t`` to make ``z``, and
``acosh(max(z, 1 + eps)) / sqrt(c)`` times the logit scale, one pass) and in the backward
:func:`backward` (``G = g / sqrt(z^2 - 1)``, 0 on the floor, with the sums ``sum g d`` and
``sum G z`` that the curvature and scale gradients need, one pass) instead of its PyTorch passes.
The values are the PyTorch path's to float32 rounding (the kernel's ``log`` is within one ulp).
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from hyplib import native

__all__ = ["applies", "available", "turned_off", "unavailable_reason", "forward", "backward"]

#: Entries per thread range are a multiple of this (whole cache lines and vectors).
ALIGN = 64
_i, _long, _f, _p = ctypes.c_int, ctypes.c_long, ctypes.c_float, ctypes.c_void_p
_KERNEL = native.Kernel("lorentz_dist", {
    "lorentz_dist_forward": [_i, _i, _i, _p, _p, _p, _f, _f, _p],
    "lorentz_dist_backward": [_long, _p, _p, _f, _f, _p, _p],
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
    ranges = native.row_ranges(b1, torch.get_num_threads())
    for m in range(n):
        def rows(_, lo, hi, m=m):
            lib.lorentz_dist_forward(lo, hi, b2, z[m].data_ptr(), x_term[m].data_ptr(), y_term[m].data_ptr(),
                                     floor, scales[m], out[m].data_ptr())
        native.run_rows(rows, ranges)
    return out


def backward(z: Tensor, g: Tensor, inv_sqrt_c: Tensor, floor: float) -> tuple[Tensor, Tensor, Tensor]:
    """``G = g / sqrt(z^2 - 1)`` (0 where ``z <= floor``) and per matrix ``sum g d`` (``d =
    acosh(max(z, floor)) * inv_sqrt_c``, computed again) and ``sum G z``, each (N,) float64,
    for contiguous ``z`` and ``g`` (N, B1, B2) and ``inv_sqrt_c`` (N,)."""
    lib = _library()
    n, count = z.shape[0], z[0].numel()
    G = torch.empty_like(z)
    ranges = native.row_ranges(count, torch.get_num_threads(), ALIGN)
    sums = torch.zeros(n, len(ranges), 2, dtype=torch.float64)           # one partial per thread
    scales, size = inv_sqrt_c.tolist(), z.element_size()

    def call(m, part, lo, hi):
        at = (m * count + lo) * size
        lib.lorentz_dist_backward(hi - lo, z.data_ptr() + at, g.data_ptr() + at, floor, scales[m],
                                  G.data_ptr() + at, sums[m, part].data_ptr())

    for m in range(n):
        native.run_rows(lambda part, lo, hi, m=m: call(m, part, lo, hi), ranges)
    totals = sums.sum(1)
    return G, totals[:, 0], totals[:, 1]
