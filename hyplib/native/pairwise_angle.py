"""The all-pairs exterior angles' elementwise passes on CPU through the C kernel ``pairwise_angle.c``.

:func:`hyplib.lorentz.pairwise_exterior_angle` and :func:`~hyplib.lorentz.pairwise_exterior_angles`
get the inner products ``prod`` (N, B1, B2) of ``x`` and ``y`` from one GEMM, and then the angle at
either end of each pair, or at both, as

.. math:: \\cos = \\frac{\\text{prod}}{|x|\\,|y|},\\quad
          \\text{out} = \\text{scale}\\cdot\\operatorname{atan2}\\big(\\sqrt{\\max(1 - \\cos^2,
          \\text{floor})},\\; a \\cos + b\\,r\\big)

with per-point vectors ``a = sqrt(c) x_t``, ``b = -sqrt(c) |x|`` (of the point the angle is at)
and ``r = y_t / |y|`` (of the other). Where :func:`applies`, :func:`angles` does this in one pass
forward and one backward (the gradients for ``prod``, both norms, every ``a``, ``b``, ``r`` and
scale), instead of autograd's dozen passes through the same formula per end and the (B, n)
passes that normalise ``x`` and ``y`` before the GEMM; both ends read the products once. The
kernel's ``atan2`` is within 2 ulp.
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from hyplib import native

__all__ = ["applies", "available", "turned_off", "unavailable_reason", "angles"]

_i, _f, _p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
_KERNEL = native.Kernel("pairwise_angle", {
    "pairwise_angle_forward": [_i, _i, _i, *[_p] * 9, _f, _f, _f, _p, _p],
    "pairwise_angle_backward": [_i, _i, _i, *[_p] * 9, _f, _f, _f, *[_p] * 7],
})
_library = _KERNEL.library
available, turned_off, unavailable_reason = _KERNEL.available, _KERNEL.turned_off, _KERNEL.unavailable_reason

#: A tensor's (or its m-th matrix's) address for the kernel (None -> NULL).
_ptr = native.data_ptr

#: The per-point vectors in the kernel's argument order.
_VECTORS = ("ix", "iy", "ax", "bx", "rx", "ay", "by", "ry")


#: Row sums the backward returns per row, and column sums per column (see pairwise_angle.c).
_ROW_SUMS, _COL_SUMS = 6, 4


def applies(prod: Tensor) -> bool:
    """Whether the kernel takes ``prod`` (float32 on the CPU, 3-d) and is available."""
    return prod.dtype == torch.float32 and prod.device.type == "cpu" and prod.dim() == 3 and available()


def _flat(v: Tensor, n: int, size: int) -> Tensor:
    """A per-row or per-column vector broadcastable to (N, B1, B2) as a contiguous (N, size) copy."""
    return v.expand(n, *v.shape[1:]).reshape(n, size).contiguous()


def _forward_pass(prod, vectors: dict, scales: tuple[float, float], floor_sq: float, ends: tuple[bool, bool]):
    """The kernel's forward over contiguous ``prod`` (N, B1, B2) and the flat per-point ``vectors``
    (``ix iy ax bx rx ay by ry``; an unused end's may be None): the wanted ends' outputs."""
    lib = _library()
    n, b1, b2 = prod.shape
    outs = [torch.empty_like(prod) if wanted else None for wanted in ends]
    ranges = native.row_ranges(b1, native.threads_for(b1 * b2))
    for m in range(n):
        def rows(_, lo, hi, m=m):
            lib.pairwise_angle_forward(lo, hi, b2, prod[m].data_ptr(), *(_ptr(vectors[k], m) for k in _VECTORS),
                                       *scales, floor_sq, _ptr(outs[0], m), _ptr(outs[1], m))
        native.run_rows(rows, ranges)
    return outs


class _PairwiseAngles(torch.autograd.Function):
    """prod (N, B1, B2), x_norm (N, B1, 1), y_norm (N, 1, B2); for the angle at x: ax, bx (N, B1, 1),
    ry (N, 1, B2) and a scale (0-d or None); for the angle at y: ay, by (N, 1, B2), rx (N, B1, 1)
    and a scale; an end whose vectors are None is not computed. Returns the computed ends' scale *
    phi (N, B1, B2), at x first."""

    @staticmethod
    def forward(ctx, prod, x_norm, y_norm, ax, bx, ry, scale_x, ay, by, rx, scale_y, floor_sq):
        n, b1, b2 = prod.shape
        ends = (ax is not None, ay is not None)
        prod_c = prod.contiguous()
        given = {"ix": 1.0 / x_norm, "iy": 1.0 / y_norm, "ax": ax, "bx": bx, "rx": rx, "ay": ay, "by": by, "ry": ry}
        vectors = {k: None if v is None else _flat(v, n, b2 if k in ("iy", "ay", "by", "ry") else b1)
                   for k, v in given.items()}
        scales = tuple(1.0 if s is None else float(s) for s in (scale_x, scale_y))
        outs = _forward_pass(prod_c, vectors, scales, floor_sq, ends)
        ctx.save_for_backward(prod_c, *(vectors[k] for k in _VECTORS), *outs)
        ctx.ends, ctx.scales, ctx.floor_sq = ends, scales, floor_sq
        ctx.shapes = {k: None if v is None else v.shape for k, v in
                      {"x_norm": x_norm, "y_norm": y_norm, "ax": ax, "bx": bx, "ry": ry, "scale_x": scale_x,
                       "ay": ay, "by": by, "rx": rx, "scale_y": scale_y}.items()}
        return tuple(out for out in outs if out is not None)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        lib = _library()
        prod, *saved = ctx.saved_tensors
        vectors, outs = dict(zip(_VECTORS, saved[:8])), saved[8:]
        n, b1, b2 = prod.shape
        # grads has one entry per computed end; an output that got no gradient (unused) gets
        # zeros, so that its end contributes nothing.
        wanted, gs = iter(grads), []
        for computed in ctx.ends:
            g = next(wanted) if computed else None
            gs.append(None if not computed else torch.zeros_like(prod) if g is None
                      else g.to(prod.dtype).contiguous())
        # The scale's gradient, sum g phi, is sum g out / scale; at scale 0 out is 0 and phi is recomputed.
        needs_scale = [ctx.shapes[k] is not None and ctx.needs_input_grad[i]
                       for k, i in (("scale_x", 6), ("scale_y", 10))]
        read_out = [needs and scale != 0.0 for needs, scale in zip(needs_scale, ctx.scales)]
        g_prod = torch.empty_like(prod)
        ranges = native.row_ranges(b1, native.threads_for(b1 * b2))
        row_sums = prod.new_zeros(n, b1, _ROW_SUMS)
        col_sums = prod.new_zeros(n, len(ranges), _COL_SUMS, b2)                # one partial per thread
        for m in range(n):
            def rows(part, lo, hi, m=m):
                lib.pairwise_angle_backward(
                    lo, hi, b2, prod[m].data_ptr(), *(_ptr(vectors[k], m) for k in _VECTORS), *ctx.scales,
                    ctx.floor_sq, _ptr(gs[0], m), _ptr(gs[1], m),
                    *(_ptr(outs[e], m) if read_out[e] else None for e in range(2)), g_prod[m].data_ptr(),
                    row_sums[m].data_ptr(), col_sums[m, part].data_ptr())
            native.run_rows(rows, ranges)
        rows_, cols_ = row_sums.unsqueeze(-1), col_sums.sum(1).unsqueeze(-2)  # (N, B1, 6, 1), (N, 4, 1, B2)
        # d cos / d|x| = -cos / |x|: the kernel's sums of g_cos cos, times -1/|x|.
        per_input = {"x_norm": -rows_[:, :, 3] * vectors["ix"].unsqueeze(-1),
                     "y_norm": -cols_[:, 3] * vectors["iy"].unsqueeze(-2),
                     "ax": rows_[:, :, 0], "bx": rows_[:, :, 1], "ry": cols_[:, 0],
                     "ay": cols_[:, 1], "by": cols_[:, 2], "rx": rows_[:, :, 2]}
        for e, key in enumerate(("scale_x", "scale_y")):
            if needs_scale[e]:
                if read_out[e]:
                    total = row_sums[..., 4 + e].sum() / ctx.scales[e]
                else:
                    unit = _forward_pass(prod, vectors, (1.0, 1.0), ctx.floor_sq, (e == 0, e == 1))[e]
                    total = (gs[e] * unit).sum()
                per_input[key] = total.reshape(ctx.shapes[key])
        out = {k: None if ctx.shapes[k] is None or k not in per_input else
               (per_input[k] if k.startswith("scale") else per_input[k].sum_to_size(ctx.shapes[k]))
               for k in ctx.shapes}
        return (g_prod, out["x_norm"], out["y_norm"], out["ax"], out["bx"], out["ry"], out["scale_x"],
                out["ay"], out["by"], out["rx"], out["scale_y"], None)


def angles(prod: Tensor, x_norm: Tensor, y_norm: Tensor, *, at_x=None, at_y=None, floor_sq: float) -> list[Tensor]:
    """``scale * atan2(sqrt(max(1 - cos^2, floor_sq)), a cos + b r)`` (N, B1, B2) with ``cos = prod /
    (x_norm y_norm)``, at each end given, with gradients for every tensor: ``at_x = (ax, bx, ry,
    scale)`` for the angle at ``x_i`` (``ax``, ``bx`` broadcasting as (N, B1, 1), ``ry`` as (N, 1,
    B2)), ``at_y = (ay, by, rx, scale)`` for the angle at ``y_j`` (``ay``, ``by`` (N, 1, B2), ``rx``
    (N, B1, 1)); ``x_norm`` broadcasts as (N, B1, 1) and ``y_norm`` as (N, 1, B2); a scale is a 0-d
    tensor or None (1). Returns the given ends' outputs, at x first. Needs :func:`applies`."""
    if at_x is None and at_y is None:
        raise ValueError("angles needs at_x, at_y or both")
    none = (None, None, None, None)
    return list(_PairwiseAngles.apply(prod, x_norm, y_norm, *(at_x or none), *(at_y or none), floor_sq))
