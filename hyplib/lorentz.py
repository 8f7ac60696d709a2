"""Pure functions on one Lorentz hyperboloid of constant curvature ``-curv`` (``curv > 0``).

Conventions (every function here follows them):

* The hyperboloid is ``{(x_t, x) : <(x_t, x), (x_t, x)>_L = -1/curv, x_t > 0}`` with the
  Lorentzian inner product ``<a, b>_L = a . b - a_t b_t``. This is MERU's convention.
* A point stores **only its space part** ``x`` of shape ``(..., n)``; its time part is
  ``x_t = sqrt(1/curv + |x|^2)`` (see :func:`time_component`). The root (origin) is ``x = 0``.
  Tangent vectors at the root are plain ``(..., n)`` tensors as well.
* ``curv`` is keyword-only: a positive float or a tensor that broadcasts against the batch
  shape ``x.shape[:-1]`` (for pairwise forms: against the leading dims ``...`` of
  ``(..., B, n)``), which is how a product of factors passes one curvature per factor.
* Mapping to geoopt: ``geoopt.Lorentz(k)`` uses ``<x, x>_L = -k`` with the time coordinate
  first, so ``k_geoopt = 1 / curv`` and a full geoopt point is ``lift(x, curv=curv)``.
  ``geoopt.PoincareBall(c)`` uses the same ``c`` as ``curv`` here (see :func:`to_poincare`).
* Low-precision inputs (float16, bfloat16) are computed in float32, and autocast is switched
  off inside these functions, so the hyperbolic arithmetic never runs in half precision.
* Small constants come from :func:`eps_for`, chosen per dtype: a fixed ``1e-8`` vanishes next
  to 1 in float32, which would put the clamps exactly on the singular points.

Where this departs from the authors' code (MERU, HyCoCLIP, ATMG, PHyCLIP): the exterior angle
(:func:`exterior_angle` and its pairwise forms) is the same function, but evaluated as
``atan2(sin(theta), sqrt(c) (x_t cos(theta) - |x| y_t / |y|))`` with ``theta`` the angle
between ``x`` and ``y`` at the root, instead of their
``acos((y_t + c<x,y>_L x_t) / (|x| sqrt((c<x,y>_L)^2 - 1) + eps))``. Their numerator
cancels near the root, which puts float32 angles 0.3-3 rad off for ``|x| <~ 1e-2`` (where
entailment drives texts), and their ``+ eps`` costs up to 2e-2 rad even in float64 (measured
in issue 17); the ``atan2`` form is accurate to ~1e-6 rad in float32 for norms 1e-4..1e2 and
``curv`` 1e-2..1e2, gradients included (``tests/test_lorentz.py``,
``benchmarks/angle_accuracy.py``). Every method's entailment term and ATMG's angle logits go
through these functions.
"""
from __future__ import annotations

import functools
import math
from numbers import Real

import torch
from torch import Tensor

from hyplib.native import lorentz_dist as _native_dist
from hyplib.native import paired_angle as _native_paired
from hyplib.native import pairwise_angle as _native_angle

__all__ = [
    "eps_for", "time_component", "lift", "inner", "pairwise_inner", "dist", "pairwise_dist",
    "dist0", "expmap0", "logmap0", "half_aperture", "exterior_angle",
    "pairwise_exterior_angle", "to_klein", "from_klein", "einstein_midpoint", "to_poincare",
    "geodesic",
]

#: Largest ``sqrt(curv) * |v|`` fed to ``sinh`` in :func:`expmap0`: ``sinh`` of it is 2**15,
#: so coordinates stay representable even after a cast to float16.
MAX_EXP_ARG = math.asinh(2.0**15)


def eps_for(dtype: torch.dtype) -> float:
    """Small positive constant for clamps in ``dtype``: 8 machine epsilons (float32 or wider)."""
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return 8.0 * torch.finfo(dtype).eps


def _working(t: Tensor) -> Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _full_precision(fn):
    """Run ``fn`` with autocast off and half-precision tensor arguments upcast to float32."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        args = tuple(_working(a) if isinstance(a, Tensor) else a for a in args)
        kwargs = {k: _working(v) if isinstance(v, Tensor) else v for k, v in kwargs.items()}
        device = next((a.device.type for a in args if isinstance(a, Tensor)), "cpu")
        with torch.autocast(device_type=device, enabled=False):
            return fn(*args, **kwargs)

    return wrapper


def _check_curv(curv) -> None:
    if isinstance(curv, Tensor):
        # A device sync would stall the training loop, and a traced graph (train.compile) would
        # break on it; eager CPU tensors (configs, tests) are checked.
        if curv.device.type == "cpu" and not torch.compiler.is_compiling() and not bool(torch.all(curv > 0)):
            raise ValueError(f"curv must be positive, got a tensor with min {curv.min().item()}")
    elif isinstance(curv, Real):
        if not curv > 0:
            raise ValueError(f"curv must be positive, got {curv}")
    else:
        raise ValueError(f"curv must be a positive float or tensor, got {type(curv).__name__}")


def _check_same_dim(x: Tensor, y: Tensor, xname: str = "x", yname: str = "y") -> None:
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{xname} and {yname} must share their last (space) dimension, got "
            f"{xname}.shape={tuple(x.shape)} and {yname}.shape={tuple(y.shape)}"
        )


def _check_broadcast(x: Tensor, y: Tensor) -> None:
    _check_same_dim(x, y)
    try:
        torch.broadcast_shapes(x.shape, y.shape)
    except RuntimeError as err:
        raise ValueError(
            f"x.shape={tuple(x.shape)} and y.shape={tuple(y.shape)} do not broadcast"
        ) from err


def _sq_norm(x: Tensor) -> Tensor:
    return torch.linalg.vecdot(x, x)  # the products and sum of (x * x).sum(-1), as one call


def _norm(x: Tensor) -> Tensor:
    # Floor at eps: the norm's gradient is undefined at exactly zero (and its reciprocals infinite).
    # vector_norm's forward is one pass over x, where sqrt(sum(x * x)) writes x * x first.
    return torch.linalg.vector_norm(x, dim=-1).clamp_min(eps_for(x.dtype))


def _as_tensor(curv, like: Tensor) -> Tensor:
    return torch.as_tensor(curv, dtype=like.dtype, device=like.device)


def _check_scale(scale, like: Tensor) -> Tensor | None:
    """A logit scale as a 0-d tensor (None stays None)."""
    if scale is None:
        return None
    scale = _as_tensor(scale, like)
    if scale.dim():
        raise ValueError(f"scale must be a number or a 0-d tensor, got shape {tuple(scale.shape)}")
    return scale


@_full_precision
def time_component(x: Tensor, *, curv) -> Tensor:
    """Time coordinate of points ``x`` (..., n): ``sqrt(1/curv + |x|^2)``, shape (...)."""
    _check_curv(curv)
    return torch.sqrt(1.0 / curv + _sq_norm(x))


@_full_precision
def lift(x: Tensor, *, curv) -> Tensor:
    """Full coordinates ``(x_t, x)`` of shape (..., n + 1), time first (geoopt's order)."""
    return torch.cat([time_component(x, curv=curv).unsqueeze(-1), x], dim=-1)


@_full_precision
def inner(x: Tensor, y: Tensor, *, curv) -> Tensor:
    """Paired Lorentzian inner product ``x . y - x_t y_t``; broadcasts, returns (...).

    .. math:: \\langle x, y \\rangle_L = x \\cdot y - x_t y_t
    """
    _check_broadcast(x, y)
    return (x * y).sum(-1) - time_component(x, curv=curv) * time_component(y, curv=curv)


def _batched(x: Tensor, y: Tensor, curv):
    """Check, then flatten leading dims of (..., B1, n) and (..., B2, n) to one batch dim for baddbmm."""
    _check_same_dim(x, y)
    _check_curv(curv)
    if x.dim() < 2 or y.dim() < 2:
        raise ValueError(f"pairwise forms need x (..., B1, n) and y (..., B2, n), got "
                         f"x.shape={tuple(x.shape)} and y.shape={tuple(y.shape)}")
    lead = torch.broadcast_shapes(x.shape[:-2], y.shape[:-2], _as_tensor(curv, x).shape)
    xb = x.expand(*lead, *x.shape[-2:]).reshape(-1, *x.shape[-2:])
    yb = y.expand(*lead, *y.shape[-2:]).reshape(-1, *y.shape[-2:])
    c = _as_tensor(curv, x).expand(lead).reshape(-1, 1, 1)
    return xb, yb, c, lead


def _scaled_neg_pairwise_inner(x: Tensor, y: Tensor, curv):
    """``-c <x_i, y_j>_L`` for (..., B1, n) x (..., B2, n) in one fused GEMM.

    Returns ``(z, xt, yt, lead)`` with ``z`` of shape (N, B1, B2) (leading dims flattened),
    time parts ``xt`` (N, B1, 1) and ``yt`` (N, 1, B2).
    """
    xb, yb, c, lead = _batched(x, y, curv)
    xt = torch.sqrt(1.0 / c + _sq_norm(xb).unsqueeze(-1))
    yt = torch.sqrt(1.0 / c + _sq_norm(yb).unsqueeze(-1)).transpose(-1, -2)
    # c x_t y_t - c x.y: the outer product enters as baddbmm's addend, so it is one GEMM pass.
    z = torch.baddbmm(c * xt * yt, xb * (-c), yb.transpose(-1, -2))
    return z, xt, yt, lead


@_full_precision
def pairwise_inner(x: Tensor, y: Tensor, *, curv) -> Tensor:
    """All-pairs Lorentzian inner product: (..., B1, n) x (..., B2, n) -> (..., B1, B2).

    One fused GEMM; ``curv`` broadcasts against the leading dims ``...``.
    """
    z, _, _, lead = _scaled_neg_pairwise_inner(x, y, curv)
    c = _as_tensor(curv, z).expand(lead).reshape(-1, 1, 1)
    return (z / -c).reshape(*lead, z.shape[-2], z.shape[-1])


class _PairwiseDist(torch.autograd.Function):
    """(N, B1, n) x (N, B2, n) x (N, 1, 1) [x scale ()] -> (N, B1, B2) distances (times ``scale``
    when it is given: the logits ``-s d`` in the distance's own passes) with a hand-written backward.

    Forward: ``z = c x_t y_t - c x.y`` (one ``baddbmm``), floored at ``1 + eps``, then
    ``acosh(z) = log(z + sqrt(z^2 - 1))`` in place (``torch.acosh`` is not vectorised on CPU)
    and ``/ sqrt(c)``; for float32 on the CPU these passes (and the backward's below) are one
    pass each of the C kernel :mod:`hyplib.native.lorentz_dist` where it is built, which also
    adds ``c x_t y_t`` and applies ``scale``. Backward, with the incoming gradient ``g`` of
    ``s d`` (``s = 1`` without a scale), ``G = g / sqrt(z^2 - 1)`` (0 where ``z`` sat on its
    floor):

    .. math:: \\nabla_{x_i} = s\\sqrt{c}\\,\\big[-(G y)_i + (G y_t)_i\\, x_i / x_{t,i}\\big],\\quad
              \\partial_c = s\\Big[-\\frac{\\sum g\\,d}{2c} + \\frac{\\sum G z}{c\\sqrt c}
              - \\frac{\\sum_i (G y_t)_i / x_{t,i} + \\sum_j (G^T x_t)_j / y_{t,j}}{2c\\sqrt c}\\Big],
              \\quad \\partial_s = \\sum g\\,d

    (using ``dz/dc = z/c - (y_t/x_t + x_t/y_t)/(2c)``); ``s`` multiplies the small results, not
    ``G``. Only ``z`` (and on the PyTorch path the unscaled output) are kept besides the
    inputs, and every (B1, B2) pass is in place: about half the passes autograd takes through
    the same formula.
    """

    @staticmethod
    def forward(ctx, x, y, c, scale=None):
        xt = torch.sqrt(1.0 / c + _sq_norm(x).unsqueeze(-1))                      # (N, B1, 1)
        yt = torch.sqrt(1.0 / c + _sq_norm(y).unsqueeze(-1))                      # (N, B2, 1)
        # Floor at 1 + eps: rounding puts -c<x,y> below 1 for (nearly) coincident points,
        # where acosh is undefined and its gradient infinite.
        floor = 1.0 + eps_for(x.dtype)
        ctx.native = _native_dist.applies(x)
        if ctx.native:
            # The kernel adds c x_t y_t in its pass: no (N, B1, B2) addend for the GEMM to copy.
            z = torch.bmm(x * (-c), y.transpose(-1, -2))
            n = z.shape[0]
            factor = c.rsqrt().reshape(-1) * (1.0 if scale is None else scale)
            out = _native_dist.forward(z, (c * xt).reshape(n, -1).contiguous(), yt.reshape(n, -1).contiguous(),
                                       factor, floor)
            d = None
        else:
            z = torch.baddbmm(c * xt * yt.transpose(-1, -2), x * (-c), y.transpose(-1, -2))
            z.clamp_min_(floor)
            minus_one = torch.tensor(-1.0, dtype=z.dtype, device=z.device)
            d = torch.addcmul(minus_one, z, z).sqrt_().add_(z).log_().div_(c.sqrt())
            out = d if scale is None else d * scale
        ctx.save_for_backward(x, y, c, xt, yt, z, d, scale)
        return out

    @staticmethod
    def backward(ctx, g):
        x, y, c, xt, yt, z, d, scale = ctx.saved_tensors
        n, floor = z.shape[0], 1.0 + eps_for(z.dtype)
        sqrt_c = c.sqrt()
        needs_sums = ctx.needs_input_grad[2] or (scale is not None and ctx.needs_input_grad[3])
        if ctx.native:
            G, g_yt, g_xt, g_d, g_z = _native_dist.backward(
                z, g.to(z.dtype).contiguous(), xt.reshape(n, -1).contiguous(), yt.reshape(n, -1).contiguous(),
                (1.0 / sqrt_c).reshape(-1), floor)
            g_d, g_z = (t.to(z.dtype).reshape(n, 1, 1) for t in (g_d, g_z))              # sum g d, sum G z
            rows_t, cols_t = g_yt.unsqueeze(-1), g_xt.unsqueeze(-1)                 # G y_t, G^T x_t
            g_y = torch.bmm(G, y) if ctx.needs_input_grad[0] else None
            g_x = torch.bmm(G.transpose(-1, -2), x) if ctx.needs_input_grad[1] else None
        else:
            minus_one = torch.tensor(-1.0, dtype=z.dtype, device=z.device)
            G = torch.addcmul(minus_one, z, z).rsqrt_()
            G.masked_fill_(z <= floor, 0.0).mul_(g)                                # clamp: no gradient
            if needs_sums:
                g_d = torch.bmm(g.reshape(n, 1, -1), d.reshape(n, -1, 1))
                g_z = torch.bmm(G.reshape(n, 1, -1), z.reshape(n, -1, 1))
            rows = torch.bmm(G, torch.cat([y, yt], -1))                            # [G y | G y_t]
            cols = torch.bmm(G.transpose(-1, -2), torch.cat([x, xt], -1))          # [G^T x | G^T x_t]
            g_y, rows_t, g_x, cols_t = rows[..., :-1], rows[..., -1:], cols[..., :-1], cols[..., -1:]
        s = 1.0 if scale is None else scale
        gx = gy = gc = gs = None
        if ctx.needs_input_grad[0]:
            gx = torch.addcmul(g_y, x, rows_t / xt, value=-1.0).mul_(-sqrt_c * s)
        if ctx.needs_input_grad[1]:
            gy = torch.addcmul(g_x, y, cols_t / yt, value=-1.0).mul_(-sqrt_c * s)
        if ctx.needs_input_grad[2]:
            times = (rows_t / xt).sum(-2, keepdim=True) + (cols_t / yt).sum(-2, keepdim=True)
            gc = s * (-g_d / (2.0 * c) + (g_z - 0.5 * times) / (c * sqrt_c))
        if scale is not None and ctx.needs_input_grad[3]:
            gs = g_d.sum().reshape(scale.shape)
        return gx, gy, gc, gs


@_full_precision
def dist(x: Tensor, y: Tensor, *, curv) -> Tensor:
    """Paired geodesic distance, broadcasting; returns (...).

    .. math:: d(x, y) = \\frac{2}{\\sqrt{c}} \\operatorname{asinh}\\Big(\\frac{\\sqrt{c}}{2}
              \\sqrt{|x - y|^2 - (x_t - y_t)^2}\\Big)
              = \\operatorname{acosh}(-c \\langle x, y \\rangle_L) / \\sqrt{c}

    The paired form uses the Minkowski norm of the difference, which is exact at coincident
    points (``acosh`` of ``-c<x,y>_L`` loses half the digits there); see :func:`pairwise_dist`
    for the all-pairs form.
    """
    _check_broadcast(x, y)
    _check_curv(curv)
    c = _as_tensor(curv, x)
    sq_x, sq_y = _sq_norm(x), _sq_norm(y)
    xt, yt = torch.sqrt(1.0 / c + sq_x), torch.sqrt(1.0 / c + sq_y)
    dt = (sq_x - sq_y) / (xt + yt)  # x_t - y_t without cancellation
    diff = x - y
    # Floor at eps**2: the difference is spacelike (>= 0) but rounds to tiny negatives, and
    # sqrt's gradient is infinite at 0.
    q = torch.clamp((diff * diff).sum(-1) - dt * dt, min=eps_for(x.dtype) ** 2)
    return 2.0 * torch.asinh(0.5 * c.sqrt() * torch.sqrt(q)) / c.sqrt()


@_full_precision
def pairwise_dist(x: Tensor, y: Tensor, *, curv, scale: Tensor | float | None = None) -> Tensor:
    """All-pairs geodesic distance: (..., B1, n) x (..., B2, n) -> (..., B1, B2).

    .. math:: d(x_i, y_j) = \\operatorname{acosh}(-c \\langle x_i, y_j \\rangle_L) / \\sqrt{c}

    One matmul plus elementwise work. For (nearly) coincident points the ``acosh`` form
    returns about ``sqrt(2 eps x_t^2)`` instead of 0 (float32: ~1e-3 x_t); :func:`dist` is
    exact there. ``scale`` (a number or 0-d tensor, e.g. ``-s`` for logits) returns
    ``scale * d`` with its gradient, without a separate (B1, B2) pass for the product.
    """
    xb, yb, c, lead = _batched(x, y, curv)
    out = _pairwise_dist_kernel(xb, yb, c, _check_scale(scale, xb))
    return out.reshape(*lead, out.shape[-2], out.shape[-1])


#: The all-pairs kernel :func:`pairwise_dist` calls (read at each call). ``train.compile``
#: (:mod:`hyplib.training.compiled`) replaces it with a copy that ``torch.compile`` leaves out of
#: its graphs; wrapping it here would import ``torch._dynamo`` (2 s) with every ``hyplib`` import.
_pairwise_dist_kernel = _PairwiseDist.apply


@_full_precision
def dist0(x: Tensor, *, curv) -> Tensor:
    """Distance from the root to ``x`` (..., n), shape (...).

    .. math:: d(O, x) = \\operatorname{acosh}(\\sqrt{1 + c|x|^2}) / \\sqrt{c}
              = \\operatorname{asinh}(\\sqrt{c}\\,|x|) / \\sqrt{c}

    The ``asinh`` form is used: it is exact near the root, where ``acosh`` loses digits.
    """
    _check_curv(curv)
    sqrt_c = _as_tensor(curv, x).sqrt()
    return torch.asinh(sqrt_c * _norm(x)) / sqrt_c


@_full_precision
def expmap0(v: Tensor, *, curv) -> Tensor:
    """Exponential map at the root of tangent vectors ``v`` (..., n); returns space parts.

    .. math:: \\exp_O(v) = \\frac{\\sinh(\\sqrt{c}|v|)}{\\sqrt{c}|v|} v
    """
    _check_curv(curv)
    sqrt_c = _as_tensor(curv, v).sqrt()
    scaled_norm = sqrt_c * _norm(v)
    # Cap the sinh argument so |x| <= 2**15 / sqrt(c): beyond it float16/bfloat16 consumers
    # of the coordinates overflow (MERU's remark on unscaled 512-d features).
    capped = torch.clamp(scaled_norm, max=MAX_EXP_ARG)
    return (torch.sinh(capped) / scaled_norm).unsqueeze(-1) * v


@_full_precision
def logmap0(x: Tensor, *, curv) -> Tensor:
    """Logarithmic map at the root of points ``x`` (..., n); inverse of :func:`expmap0`.

    .. math:: \\log_O(x) = \\frac{\\operatorname{asinh}(\\sqrt{c}|x|)}{\\sqrt{c}|x|} x
    """
    _check_curv(curv)
    sqrt_c = _as_tensor(curv, x).sqrt()
    scaled_norm = sqrt_c * _norm(x)
    return (torch.asinh(scaled_norm) / scaled_norm).unsqueeze(-1) * x


@_full_precision
def half_aperture(x: Tensor, *, curv, min_radius: float = 0.1) -> Tensor:
    """Half-aperture of the entailment cone at ``x`` (..., n), shape (...); in (0, pi/2).

    .. math:: \\omega(x) = \\arcsin\\big(2K / (\\sqrt{c}|x|)\\big),\\quad K = \\text{min_radius}

    For ``|x| <= 2K / sqrt(c)`` the ratio saturates and the cone is (almost) a half-space.
    """
    _check_curv(curv)
    eps = eps_for(x.dtype)
    sqrt_c = _as_tensor(curv, x).sqrt()
    ratio = 2.0 * min_radius / (sqrt_c * _norm(x))
    # Keep the argument off +-1, where asin's gradient is infinite.
    return torch.asin(torch.clamp(ratio, min=-1.0 + eps, max=1.0 - eps))


def _floored_sqrt(sq: Tensor, floor: float) -> Tensor:
    # sqrt's gradient is infinite at 0; callers floor a square that is >= 0 in exact arithmetic
    # but rounds to 0 or tiny negatives (parallel vectors, coincident points).
    return torch.sqrt(torch.clamp(sq, min=floor))


@_full_precision
def exterior_angle(x: Tensor, y: Tensor, *, curv) -> Tensor:
    """Paired exterior angle: the angle at ``x`` in the triangle O-x-y, in [0, pi]; (...).

    It is the angle between the geodesic from ``x`` away from the root and the geodesic from
    ``x`` to ``y``; ``y`` lies in ``x``'s entailment cone iff it is <= :func:`half_aperture`.
    With ``theta`` the Euclidean angle between ``x`` and ``y`` (the triangle's angle at the
    root), the hyperbolic laws of sines and cosines give

    .. math:: \\phi(x, y) = \\arccos\\frac{y_t + c\\langle x,y\\rangle_L x_t}
              {|x|\\sqrt{(c\\langle x,y\\rangle_L)^2 - 1}}
              = \\operatorname{atan2}\\Big(\\sin\\theta,\\;
                \\sqrt{c}\\,\\big(x_t\\cos\\theta - |x|\\,y_t/|y|\\big)\\Big)

    (the arccos numerator is ``c |x| |y| (x_t cos(theta) - |x| y_t/|y|)``, its denominator
    ``|x| sinh(sqrt(c) d(x, y))``, and the law of sines gives
    ``sin(phi) sinh(sqrt(c) d(x, y)) = sqrt(c) |y| sin(theta)``: both ``atan2`` arguments are
    ``sin(phi)`` and ``cos(phi)`` times ``sinh(sqrt(c) d(x, y)) / (sqrt(c) |y|) > 0``).
    The first form is MERU's and the authors'; its numerator cancels in float32 near the
    root (0.3-3 rad off for ``|x| <~ 1e-2``). This function evaluates the second, with
    ``sin(theta)`` from the component of ``y`` orthogonal to ``x`` and
    ``x_t cos(theta) - |x| y_t/|y|`` split into terms that do not cancel (below):
    float32 agrees with float64 to ~1e-6 rad for norms 1e-4..1e2 and ``curv`` 1e-2..1e2
    (``tests/test_lorentz.py``). For ``x = 0`` it returns ``pi/2`` (the cone at the root is
    undefined), for ``y = 0`` ``pi``.
    """
    _check_broadcast(x, y)
    _check_curv(curv)
    return _ExteriorAngle.apply(x, y, _as_tensor(curv, x))


class _AngleParts:
    """The exterior angle as a function of per-pair scalars, and its partial derivatives.

    Inputs (all broadcasting to the pairs' shape): ``u = |x|``, ``v = |y|`` (floored at eps),
    ``cos`` and ``sin_sq`` of the angle theta at the root (``sin_sq`` from the component of ``y``
    orthogonal to ``x``, so exact for (anti)parallel pairs), and ``c``. ``phi`` is
    ``atan2(sin, cos_part)`` of :func:`exterior_angle`'s docstring; :meth:`partials` gives
    d phi / d(u, v, cos, sin_sq, c) with ``sin_sq`` held fixed in the ``cos`` partial.
    """

    #: What :meth:`partials` reads: kept from the forward for the backward, in this order.
    FIELDS = ("u", "v", "cos", "sin_sq", "c", "floored", "sin", "positive", "one_minus_cos", "x_t", "y_t",
              "gap_x", "gap_y", "sqrt_c", "inner", "coincident", "cos_part")

    def saved(self) -> tuple[Tensor, ...]:
        """The tensors of :data:`FIELDS`, for ``ctx.save_for_backward``."""
        return tuple(getattr(self, name) for name in self.FIELDS)

    @classmethod
    def restored(cls, tensors) -> _AngleParts:
        """The parts :meth:`saved` returned, without computing them again."""
        parts = cls.__new__(cls)
        for name, tensor in zip(cls.FIELDS, tensors, strict=True):
            setattr(parts, name, tensor)
        return parts

    def __init__(self, u: Tensor, v: Tensor, cos: Tensor, sin_sq: Tensor, c: Tensor, eps: float):
        self.u, self.v, self.cos, self.sin_sq, self.c = u, v, cos, sin_sq, c
        self.floored = sin_sq <= eps * eps
        self.sin = _floored_sqrt(sin_sq, eps * eps)
        # 1 - cos(theta) as sin^2 / (1 + cos) where cos > 0 (no cancellation for parallel x, y).
        self.positive = cos > 0
        self.one_minus_cos = torch.where(self.positive, sin_sq / (1.0 + cos.abs()), 1.0 - cos)
        # x_t = |x| + gap_x and y_t = |y| + gap_y with gap = (1/c) / (x_t + |x|), so that
        # x_t cos - |x| y_t / |y| = gap_x cos - |x| (1 - cos) - |x| gap_y / |y|.
        self.x_t, self.y_t = torch.sqrt(1.0 / c + u * u), torch.sqrt(1.0 / c + v * v)
        self.gap_x, self.gap_y = 1.0 / (c * (self.x_t + u)), 1.0 / (c * (self.y_t + v))
        self.sqrt_c = c.sqrt()
        self.inner = self.gap_x * cos - u * (self.one_minus_cos + self.gap_y / v)
        cos_part = self.sqrt_c * self.inner
        # Every term above is exact to a few eps, so coincidence is resolved to ~eps.
        self.coincident = torch.addcmul(sin_sq, cos_part, cos_part) <= (4.0 * eps) ** 2
        self.cos_part = cos_part.masked_fill(self.coincident, 0.0)
        self.phi = torch.atan2(self.sin, self.cos_part)

    def partials(self):
        """d phi / d(u, v, cos, sin_sq, c). Where the pair coincides, ``sin^2 + cos_part^2`` (which is
        ``(sinh(sqrt(c) d(x, y)) / (sqrt(c) |y|))^2``) is at or below the resolution, the angle is
        undefined (``pi/2``, as the arccos form gives) and its gradient (~1 / distance) arbitrary
        and huge: it is 0 there."""
        u, v, cos, c = self.u, self.v, self.cos, self.c
        sin, cos_part, sqrt_c = self.sin, self.cos_part, self.sqrt_c
        radius_sq = sin * sin + cos_part * cos_part                      # >= eps^2: sin is floored
        d_sin = cos_part / radius_sq
        d_cos_part = (-sin / radius_sq).masked_fill(self.coincident, 0.0)
        d_sin_d_sin_sq = torch.where(self.floored, 0.0, 0.5 / sin)
        d_omc_d_cos = torch.where(self.positive, -self.sin_sq / (1.0 + cos) ** 2, -1.0)
        d_omc_d_sin_sq = torch.where(self.positive, 1.0 / (1.0 + cos), 0.0)
        gap_x, gap_y, x_t, y_t = self.gap_x, self.gap_y, self.x_t, self.y_t
        d_gap_x_d_c = gap_x * (gap_x / (2.0 * x_t) - 1.0) / c
        d_gap_y_d_c = gap_y * (gap_y / (2.0 * y_t) - 1.0) / c
        d_u = d_cos_part * sqrt_c * (-cos * gap_x / x_t - self.one_minus_cos - gap_y / v)
        d_v = d_cos_part * u / (sqrt_c * y_t * v * v)
        d_cos = d_cos_part * sqrt_c * (gap_x - u * d_omc_d_cos)
        d_sin_sq = d_sin * d_sin_d_sin_sq - d_cos_part * sqrt_c * u * d_omc_d_sin_sq
        d_c = d_cos_part * (self.inner / (2.0 * sqrt_c) + sqrt_c * (cos * d_gap_x_d_c - u / v * d_gap_y_d_c))
        return d_u, d_v, d_cos, d_sin_sq, d_c


class _ExteriorAngle(torch.autograd.Function):
    """Paired exterior angle (..., n) x (..., n) x c -> (...) with a closed-form backward.

    Forward: ``|x|^2``, ``|y|^2`` and ``x . y``, then ``r = y - (x . y / |x|^2) x`` (``y``'s part
    orthogonal to ``x``) and ``sin^2 theta = |r|^2 / |y|^2``: five passes over the coordinates.
    The angle depends on ``x`` and ``y`` through ``|x|``, ``|y|`` and theta only, with
    ``d cos / dx = r / (|x||y|)`` (and ``y`` with ``x``'s part orthogonal to ``y``) and
    ``d sin^2 = -2 cos d cos``, so each gradient is two passes: ``a x + b r``. Autograd through
    the same formula takes about three times the passes. For float32 on the CPU, where ``x`` and
    ``y`` have one shape, the C kernel :mod:`hyplib.native.paired_angle` makes the forward's
    passes one, and the backward's one.
    """

    @staticmethod
    def forward(ctx, x, y, c):
        eps = eps_for(x.dtype)
        # The C kernel's rows are the pairs: x and y of one shape, which c does not widen.
        ctx.native = (_native_paired.applies(x, y)
                      and torch.broadcast_shapes(x.shape[:-1], c.shape) == x.shape[:-1])
        if ctx.native:
            sq_x, sq_y, dot, off_sq = _native_paired.sums(x, y, eps * eps).unbind(-1)
            y_off_x = None
        else:
            sq_x, sq_y, dot = torch.linalg.vecdot(x, x), torch.linalg.vecdot(y, y), torch.linalg.vecdot(x, y)
        # Floor the squared norms at eps**2 (as _norm): the angle is undefined at the root.
        sq_x, sq_y = torch.clamp(sq_x, min=eps * eps), torch.clamp(sq_y, min=eps * eps)
        u, v = sq_x.sqrt(), sq_y.sqrt()
        if not ctx.native:
            y_off_x = torch.addcmul(y, x, (dot / sq_x).unsqueeze(-1), value=-1.0)
            off_sq = torch.linalg.vecdot(y_off_x, y_off_x)
        parts = _AngleParts(u, v, dot / (u * v), off_sq / sq_y, c, eps)
        # The parts are kept rather than computed again: on a GPU that is some 40 launches fewer.
        ctx.save_for_backward(x, y, y_off_x, sq_x, sq_y, dot, *parts.saved())
        ctx.eps = eps
        return parts.phi

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        x, y, y_off_x, sq_x, sq_y, dot, *fields = ctx.saved_tensors
        eps = ctx.eps
        parts = _AngleParts.restored(fields)
        u, v, cos, c = parts.u, parts.v, parts.cos, parts.c
        d_u, d_v, d_cos, d_sin_sq, d_c = parts.partials()
        along = g * (d_cos - 2.0 * cos * d_sin_sq) / (u * v)            # times d cos / dx (dy) * |x||y|
        # A norm on its floor is a constant: no gradient flows through it.
        radial_x = torch.where(sq_x > eps * eps, g * d_u / u, 0.0)
        radial_y = torch.where(sq_y > eps * eps, g * d_v / v, 0.0)
        gx = gy = gc = None
        if ctx.native:
            coef = torch.stack(torch.broadcast_tensors(radial_x, radial_y, along, dot / sq_x, dot / sq_y), -1)
            gx, gy = _native_paired.combine(x, y, coef, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        else:
            if ctx.needs_input_grad[0]:
                gx = torch.addcmul(radial_x.unsqueeze(-1) * x, y_off_x, along.unsqueeze(-1)).sum_to_size(x.shape)
            if ctx.needs_input_grad[1]:
                x_off_y = torch.addcmul(x, y, (dot / sq_y).unsqueeze(-1), value=-1.0)
                gy = torch.addcmul(radial_y.unsqueeze(-1) * y, x_off_y, along.unsqueeze(-1)).sum_to_size(y.shape)
        if ctx.needs_input_grad[2]:
            gc = (g * d_c).sum_to_size(c.shape) if c.dim() else (g * d_c).sum()
        return gx, gy, gc


def _pairwise_angles(x: Tensor, y: Tensor, c: Tensor, ends) -> list[Tensor]:
    """``scale * phi`` (N, B1, B2) for each ``(by_column, scale)`` of ``ends``, over (N, B1, n) x
    (N, B2, n) from one GEMM: the angle at ``x_i`` towards ``y_j``, or with ``by_column`` the angle
    at ``y_j`` towards ``x_i`` (laid out the same way).

    .. math:: \\phi = \\operatorname{atan2}\\big(\\sin\\theta,\\ \\sqrt{c}\\,(x_t \\cos\\theta
              - |x|\\, y_t / |y|)\\big)

    with ``theta`` the angle at the root between the two points. Where the C kernel
    :mod:`hyplib.native.pairwise_angle` applies, the GEMM is of ``x`` and ``y`` themselves and the
    kernel divides by the norms and applies the scale in its own pass; otherwise the GEMM is of
    unit vectors and the rest are PyTorch passes.
    """
    x_norm, y_norm = _norm(x).unsqueeze(-1), _norm(y).unsqueeze(-1).transpose(-1, -2)
    sqrt_c = c.sqrt()

    def per_point(norm, other_norm):
        a = sqrt_c * torch.sqrt(1.0 / c + norm * norm)                       # sqrt(c) x_t
        r = torch.sqrt(1.0 / c + other_norm * other_norm) / other_norm        # y_t / |y|
        return a, -(sqrt_c * norm), r

    vectors = [per_point(y_norm, x_norm) if by_column else per_point(x_norm, y_norm) for by_column, _ in ends]
    floor_sq = eps_for(x.dtype)
    if _native_angle.applies(x) and [by_column for by_column, _ in ends] in ([False], [True], [False, True]):
        prod = torch.bmm(x, y.transpose(-1, -2))
        given = {by_column: (*abr, scale) for (by_column, scale), abr in zip(ends, vectors)}
        return _native_angle.angles(prod, x_norm, y_norm, at_x=given.get(False), at_y=given.get(True),
                                    floor_sq=floor_sq)
    cos = torch.bmm(x / x_norm, (y / y_norm.transpose(-1, -2)).transpose(-1, -2))
    # The GEMM's cosines carry a few eps of absolute error, so for (nearly) parallel pairs
    # 1 - cos^2 is noise below ~eps: floor it there. This bounds the angle's gradient by
    # ~1/sqrt(eps) at coincident points, where the angle is undefined.
    sin = _floored_sqrt(torch.addcmul(cos.new_ones(()), cos, cos, value=-1.0), floor_sq)
    angles = [torch.atan2(sin, torch.addcmul(b * r, cos, a)) for a, b, r in vectors]
    return [phi if scale is None else phi * scale for phi, (_, scale) in zip(angles, ends)]


@_full_precision
def pairwise_exterior_angle(x: Tensor, y: Tensor, *, curv, scale: Tensor | float | None = None) -> Tensor:
    """All-pairs exterior angle at ``x_i`` towards ``y_j``: (..., B1, n) x (..., B2, n) -> (..., B1, B2).

    The ``atan2`` form of :func:`exterior_angle` (no cancellation near the root), arranged as
    one GEMM and a few elementwise passes. The GEMM's rounding limits nearly parallel pairs:
    ``sin(theta)`` is floored at ``sqrt(eps)`` (~1e-3 in float32), so angles between ``x_i`` and
    ``y_j`` below that are not resolved (the paired form resolves them). ``scale`` (a number or
    0-d tensor, e.g. ``-s`` for logits) returns ``scale * phi`` with its gradient, without a
    separate (B1, B2) pass for the product.
    """
    xb, yb, c, lead = _batched(x, y, curv)
    (out,) = _pairwise_angles(xb, yb, c, [(False, _check_scale(scale, xb))])
    return out.reshape(*lead, out.shape[-2], out.shape[-1])


@_full_precision
def pairwise_exterior_angles(x: Tensor, y: Tensor, *, curv, scales=(None, None)) -> tuple[Tensor, Tensor]:
    """Exterior angles at both ends of every pair from one GEMM: two (..., B1, B2) tensors.

    Returns ``(at_x, at_y)`` with ``at_x[i, j] = phi(x_i, y_j)`` (as
    :func:`pairwise_exterior_angle`) and ``at_y[i, j] = phi(y_j, x_i)``, i.e.
    ``pairwise_exterior_angle(y, x)`` transposed, but laid out like ``at_x`` so that no
    transposed copy is made. Both read the same inner products (the angle at the root is
    shared by the two ends). ``scales`` multiply ``at_x`` and ``at_y`` as
    :func:`pairwise_exterior_angle`'s ``scale`` does.
    """
    xb, yb, c, lead = _batched(x, y, curv)
    if len(scales) != 2:
        raise ValueError(f"scales must be a pair (for at_x, at_y), got {len(scales)} values")
    ends = [(False, _check_scale(scales[0], xb)), (True, _check_scale(scales[1], xb))]
    shape = (*lead, xb.shape[-2], yb.shape[-2])
    return tuple(out.reshape(shape) for out in _pairwise_angles(xb, yb, c, ends))


@_full_precision
def to_klein(x: Tensor, *, curv) -> Tensor:
    """Beltrami-Klein coordinates ``k = x / x_t`` (..., n), inside the unit ball."""
    return x / time_component(x, curv=curv).unsqueeze(-1)


@_full_precision
def from_klein(k: Tensor, *, curv) -> Tensor:
    """Space part of the hyperboloid point with Klein coordinates ``k`` (|k| < 1).

    .. math:: x = k / \\sqrt{c (1 - |k|^2)}
    """
    _check_curv(curv)
    # Floor 1 - |k|^2: the unit sphere of the Klein ball is at infinite distance.
    gap = torch.clamp(1.0 - _sq_norm(k), min=eps_for(k.dtype))
    return k / torch.sqrt(_as_tensor(curv, k) * gap).unsqueeze(-1)


@_full_precision
def einstein_midpoint(x: Tensor, *, curv, weights: Tensor | None = None) -> Tensor:
    """Weighted Einstein midpoint of ``N`` points ``x`` (..., N, n) -> (..., n).

    In Klein coordinates ``k_e = sum w_j g_j k_j / sum w_j g_j`` with the Lorentz factor
    ``g_j = 1 / sqrt(1 - |k_j|^2) = sqrt(c) x_t,j`` (ATMG's ``1/sqrt(1 - c|k|^2)`` equals it
    only for ``c = 1`` with these ``k``), mapped back to the hyperboloid. ``curv`` broadcasts
    against ``...``; ``weights`` (..., N) are non-negative and default to uniform.
    """
    _check_curv(curv)
    if weights is None:
        weights = torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device)
    elif weights.shape != x.shape[:-1]:
        raise ValueError(f"weights.shape={tuple(weights.shape)} must equal x.shape[:-1]={tuple(x.shape[:-1])}")
    c = _as_tensor(curv, x).unsqueeze(-1)
    xt = torch.sqrt(1.0 / c + _sq_norm(x))
    # g_j k_j = sqrt(c) x_j: the midpoint sum_j w_j g_j k_j / sum_j w_j g_j is sum w x / sum w x_t.
    # Floor the total weight: all-zero weights would divide by zero.
    total = torch.clamp((weights * xt).sum(-1, keepdim=True), min=eps_for(x.dtype))
    k_e = (weights.unsqueeze(-2) @ x).squeeze(-2) / total
    return from_klein(k_e, curv=curv)


@_full_precision
def to_poincare(x: Tensor, *, curv) -> Tensor:
    """Poincare-ball coordinates ``x / (1 + sqrt(c) x_t)``: ball of radius ``1/sqrt(c)``,
    the same model as ``geoopt.PoincareBall(c=curv)``."""
    sqrt_c = _as_tensor(curv, x).sqrt()
    return x / (1.0 + sqrt_c * time_component(x, curv=curv)).unsqueeze(-1)


@_full_precision
def geodesic(x: Tensor, y: Tensor, *, curv, steps: int) -> Tensor:
    """``steps`` points on the geodesic from ``x`` to ``y`` (both ends included).

    ``x``, ``y``: (..., n), broadcasting; returns (..., steps, n). With ``theta = sqrt(c) d``
    the point at ``t`` is ``(sinh((1-t) theta) X + sinh(t theta) Y) / sinh(theta)`` in full
    coordinates, and the space part follows the same combination. Pass ``x = 0`` for the
    geodesic from the root.
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    _check_broadcast(x, y)
    sqrt_c = _as_tensor(curv, x).sqrt()
    # Floor theta: for coincident endpoints the ratio of sinh's tends to linear interpolation.
    theta = torch.clamp(sqrt_c * dist(x, y, curv=curv), min=eps_for(x.dtype)).unsqueeze(-1)
    t = torch.linspace(0.0, 1.0, steps, dtype=x.dtype, device=x.device)
    wx = torch.sinh((1.0 - t) * theta) / torch.sinh(theta)
    wy = torch.sinh(t * theta) / torch.sinh(theta)
    return wx.unsqueeze(-1) * x.unsqueeze(-2) + wy.unsqueeze(-1) * y.unsqueeze(-2)
