"""The paired exterior angle's coordinate passes on CPU through the C kernel ``paired_angle.c``.

:class:`hyplib.lorentz._ExteriorAngle` needs, per pair of rows ``x_i``, ``y_i``, the four sums
``|x|^2``, ``|y|^2``, ``x.y`` and ``|y - k x|^2`` (``k = x.y / |x|^2``, floored), and in the
backward the per-row combinations ``ax x + along (y - kx x)`` and ``ay y + along (x - ky y)``.
Where :func:`applies`, :func:`sums` and :func:`combine` do each in one pass over the coordinates
(the PyTorch path takes five forward and five backward, each writing a (B, n) tensor). Only
the summation order differs from the PyTorch path.
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from hyplib import native

__all__ = ["applies", "available", "turned_off", "unavailable_reason", "sums", "combine"]

_i, _f, _p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
_KERNEL = native.Kernel("paired_angle", {
    "paired_angle_forward": [_i, _i, _i, _p, _p, _f, _p],
    "paired_angle_backward": [_i, _i, _i, _p, _p, _p, _p, _p],
})
_library = _KERNEL.library
available, turned_off, unavailable_reason = _KERNEL.available, _KERNEL.turned_off, _KERNEL.unavailable_reason


def applies(x: Tensor, y: Tensor) -> bool:
    """Whether the kernel takes ``x`` and ``y``: float32 on the CPU, of one shape (no broadcasting),
    and the kernel is available."""
    return (x.shape == y.shape and x.dim() >= 1 and all(t.dtype == torch.float32 and t.device.type == "cpu"
                                                         for t in (x, y)) and available())


def _rows(t: Tensor) -> Tensor:
    return t.reshape(-1, t.shape[-1]).contiguous()


def sums(x: Tensor, y: Tensor, floor_sq: float) -> Tensor:
    """(..., 4): ``|x|^2``, ``|y|^2``, ``x.y`` and ``|y - k x|^2`` with ``k = x.y / max(|x|^2,
    floor_sq)``, for ``x`` and ``y`` (..., n) of one shape."""
    lib = _library()
    xr, yr = _rows(x), _rows(y)
    rows, n = xr.shape
    out = torch.empty(rows, 4, dtype=x.dtype)
    native.run_rows(lambda _, lo, hi: lib.paired_angle_forward(lo, hi, n, xr.data_ptr(), yr.data_ptr(), floor_sq,
                                                               out.data_ptr()),
                    native.row_ranges(rows, native.threads_for(rows * n)))
    return out.reshape(*x.shape[:-1], 4)


def combine(x: Tensor, y: Tensor, coef: Tensor, want_x: bool = True, want_y: bool = True):
    """``(ax x + along (y - kx x), ay y + along (x - ky y))`` for ``coef`` (..., 5) = ``(ax, ay,
    along, kx, ky)`` per row; either is None where not wanted."""
    lib = _library()
    xr, yr = _rows(x), _rows(y)
    rows, n = xr.shape
    c = coef.to(x.dtype).reshape(rows, 5).contiguous()
    gx = torch.empty_like(xr) if want_x else None
    gy = torch.empty_like(yr) if want_y else None
    native.run_rows(lambda _, lo, hi: lib.paired_angle_backward(
        lo, hi, n, xr.data_ptr(), yr.data_ptr(), c.data_ptr(), native.data_ptr(gx), native.data_ptr(gy)),
        native.row_ranges(rows, native.threads_for(rows * n)))
    return (None if gx is None else gx.reshape(x.shape)), (None if gy is None else gy.reshape(y.shape))
