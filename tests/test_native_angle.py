"""The C kernel of the all-pairs exterior angle's elementwise passes (hyplib/native/pairwise_angle.c)
against the PyTorch passes it replaces (the kernel turned off) and against float64."""
from __future__ import annotations

import math

import pytest
import torch

from hyplib import lorentz
from hyplib.native import pairwise_angle as npa

needs_kernel = pytest.mark.skipif(not npa.available(), reason=f"C kernel unavailable: {npa.unavailable_reason()}")


def _points(lead, b1, b2, n, seed=0):
    """Random points over three decades of norm, with y's first column parallel to x's first row
    (its sine sits on the floor) and a curvature per leading index."""
    g = torch.Generator().manual_seed(seed)
    scale = lambda *shape: 10 ** (3 * torch.rand(*shape, 1, generator=g, dtype=torch.float64) - 2)  # noqa: E731
    x = torch.randn(*lead, b1, n, generator=g, dtype=torch.float64) * scale(*lead, b1)
    y = torch.randn(*lead, b2, n, generator=g, dtype=torch.float64) * scale(*lead, b2)
    y[..., 0, :] = 2.0 * x[..., 0, :]
    c = 0.1 + 3.0 * torch.rand(tuple(lead), generator=g, dtype=torch.float64)
    return x, y, c, torch.randn(*lead, b1, b2, generator=g, dtype=torch.float64)


def _both_angles(x, y, c, weights, scale=None):
    """Both-ends and single angles (times ``scale`` and ``-scale`` where given) with the gradients of
    a weighted sum for x, y, c and (where given) the scale."""
    leaves = [t.clone().requires_grad_() for t in (x, y, c)]
    if scale is not None:
        leaves.append(torch.tensor(scale, dtype=x.dtype, requires_grad=True))
    s = leaves[3] if scale is not None else None
    curv = leaves[2][..., None, None] if leaves[2].dim() else leaves[2]
    at_x, at_y = lorentz.pairwise_exterior_angles(*leaves[:2], curv=curv,
                                                  scales=(None, None) if s is None else (s, -s))
    single = lorentz.pairwise_exterior_angle(*leaves[:2], curv=curv, scale=s)
    total = (at_x * weights).sum() + (at_y * weights.flip(-1)).sum() + 0.5 * (single * weights).sum()
    return (at_x.detach(), at_y.detach(), single.detach()), torch.autograd.grad(total, leaves)


@needs_kernel
@pytest.mark.parametrize("lead, b1, b2, scale", [((), 37, 53, None), ((2,), 5, 300, -7.5), ((), 1, 7, 0.0),
                                                 ((3,), 8, 1, 2.5)])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_kernel_matches_the_pytorch_passes_and_float64(lead, b1, b2, scale, threads, kernel_threads):
    kernel_threads(threads)
    x, y, c, weights = _points(lead, b1, b2, 6)
    as32 = [t.float() for t in (x, y, c, weights)]
    kernel = _both_angles(*as32, scale)
    with npa.turned_off():
        passes = _both_angles(*as32, scale)
    reference = _both_angles(x, y, c, weights, scale)
    resolved = torch.ones(b1, b2, dtype=torch.bool)
    resolved[0, 0] = False                     # the parallel pair: float32 floors its sine at sqrt(eps)
    size = 1.0 if scale is None else max(abs(scale), 1.0)
    for got, want, ref in zip(kernel[0], passes[0], reference[0]):
        torch.testing.assert_close(got, want, rtol=0, atol=2e-6 * size)        # the kernel's atan2: 2 ulp
        torch.testing.assert_close(got.double()[..., resolved], ref[..., resolved], rtol=0, atol=1e-4 * size)
    for name, got, want in zip("xycs", kernel[1], passes[1]):
        torch.testing.assert_close(got, want, rtol=2e-4, atol=1e-5 * size, msg=name)
    if scale is not None:                       # d(scale phi)/d scale = sum g phi, also at scale 0
        at_x, at_y, single = (t.double() for t in _both_angles(*as32)[0])
        w = weights.double()
        direct = (at_x * w).sum() - (at_y * w.flip(-1)).sum() + 0.5 * (single * w).sum()
        torch.testing.assert_close(kernel[1][3].double(), direct, rtol=1e-5, atol=1e-5)


@needs_kernel
def test_parallel_pairs_sit_on_the_sine_floor():
    """A parallel pair has sin = sqrt(eps) (the floor) and no gradient through it: the angle at x
    towards a point farther out on its ray is near 0, towards one nearer the root near pi."""
    x = torch.tensor([[0.6, -0.3, 0.2]], requires_grad=True)
    y = torch.cat([2.0 * x.detach(), 0.5 * x.detach()]).requires_grad_()
    phi = lorentz.pairwise_exterior_angle(x, y, curv=1.0)
    assert phi[0, 0] < 1e-2 and phi[0, 1] > math.pi - 1e-2
    with npa.turned_off():
        torch.testing.assert_close(phi, lorentz.pairwise_exterior_angle(x, y, curv=1.0), rtol=0, atol=2e-6)
    gx, gy = torch.autograd.grad(phi.sum(), (x, y))
    assert torch.isfinite(gx).all() and torch.isfinite(gy).all()


@needs_kernel
def test_kernel_applies_to_float32_cpu_batches_only():
    assert npa.applies(torch.zeros(1, 3, 4))
    assert not npa.applies(torch.zeros(1, 3, 4, dtype=torch.float64))
    with npa.turned_off():
        assert not npa.applies(torch.zeros(1, 3, 4)) and not npa.available()


@needs_kernel
@pytest.mark.parametrize("used", [0, 1])
def test_one_end_of_both_used_matches_the_pytorch_passes(used):
    """Both ends from one call, the loss reading one of them (the other output gets no gradient)."""
    x, y, c, weights = (t.float() for t in _points((), 9, 11, 5))

    def grads():
        leaves = [t.clone().requires_grad_() for t in (x, y, c)]
        s = torch.tensor(-2.0, requires_grad=True)
        ends = lorentz.pairwise_exterior_angles(*leaves[:2], curv=leaves[2], scales=(s, 3.0))
        return torch.autograd.grad((ends[used] * weights).sum(), [*leaves, s], allow_unused=True)

    kernel = grads()
    with npa.turned_off():
        passes = grads()
    for name, got, want in zip(("x", "y", "c", "scale"), kernel, passes):
        if want is None:
            assert got is None or not got.abs().max(), name
        else:
            torch.testing.assert_close(got, want, rtol=2e-4, atol=1e-5, msg=name)
