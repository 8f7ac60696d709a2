"""The C kernel of the paired exterior angle's coordinate passes (hyplib/native/paired_angle.c)
against the PyTorch passes it replaces (the kernel turned off) and against float64."""
from __future__ import annotations

import math

import pytest
import torch

from hyplib import lorentz
from hyplib.native import paired_angle as npa

needs_kernel = pytest.mark.skipif(not npa.available(), reason=f"C kernel unavailable: {npa.unavailable_reason()}")


def _pairs(lead, n, seed=0):
    """Random pairs over three decades of norm, with an anti-parallel and a parallel pair (the
    sine on its floor), a point at the root, and a curvature per pair."""
    g = torch.Generator().manual_seed(seed)
    scale = lambda: 10 ** (3 * torch.rand(*lead, 1, generator=g, dtype=torch.float64) - 2)  # noqa: E731
    x = torch.randn(*lead, n, generator=g, dtype=torch.float64) * scale()
    y = torch.randn(*lead, n, generator=g, dtype=torch.float64) * scale()
    flat_x, flat_y = x.view(-1, n), y.view(-1, n)
    if flat_x.shape[0] >= 3:
        flat_y[0] = -0.5 * flat_x[0]
        flat_y[1] = 3.0 * flat_x[1]
        flat_x[2] = 0.0
    c = 0.1 + 3.0 * torch.rand(lead, generator=g, dtype=torch.float64)
    return x, y, c, torch.randn(lead, generator=g, dtype=torch.float64)


def _angle_and_grads(x, y, c, weights):
    leaves = [t.clone().requires_grad_() for t in (x, y, c)]
    phi = lorentz.exterior_angle(leaves[0], leaves[1], curv=leaves[2])
    return phi.detach(), torch.autograd.grad((phi * weights).sum(), leaves)


@needs_kernel
@pytest.mark.parametrize("lead, n", [((37,), 53), ((2, 300), 6), ((1,), 7), ((5,), 1), ((64,), 512)])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_kernel_matches_the_pytorch_passes_and_float64(lead, n, threads, kernel_threads):
    kernel_threads(threads)
    x, y, c, weights = _pairs(lead, n)
    as32 = [t.float() for t in (x, y, c, weights)]
    kernel = _angle_and_grads(*as32)
    with npa.turned_off():
        passes = _angle_and_grads(*as32)
    reference = _angle_and_grads(x, y, c, weights)
    torch.testing.assert_close(kernel[0], passes[0], rtol=0, atol=2e-6)
    for name, got, want in zip("xyc", kernel[1], passes[1]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5, msg=name)
    # Against float64 away from the (anti)parallel pairs and the root, whose float32 gradients
    # are ill-conditioned on both paths alike.
    regular = torch.ones(lead, dtype=torch.bool).view(-1)
    regular[:3] = False
    regular = regular.view(lead)
    torch.testing.assert_close(kernel[0].double()[regular], reference[0][regular], rtol=0, atol=2e-5)
    for name, got, ref in zip("xy", kernel[1], reference[1]):
        torch.testing.assert_close(got.double()[regular], ref[regular], rtol=1e-3, atol=1e-4, msg=name)


@needs_kernel
def test_special_pairs_match_the_pytorch_passes():
    """Anti-parallel (pi), parallel (0 or pi by side), the root (pi/2) and y at the root (pi)."""
    x = torch.tensor([[0.6, -0.3, 0.2], [0.6, -0.3, 0.2], [0.6, -0.3, 0.2], [0.0, 0.0, 0.0], [0.2, 0.1, 0.0]])
    y = torch.stack([-x[0], 2.0 * x[1], 0.5 * x[2], torch.tensor([0.1, 0.2, 0.3]), torch.zeros(3)])
    got = lorentz.exterior_angle(x, y, curv=1.0)
    with npa.turned_off():
        want = lorentz.exterior_angle(x, y, curv=1.0)
    torch.testing.assert_close(got, want, rtol=0, atol=2e-6)
    assert got[0] > math.pi - 1e-3 and got[1] < 1e-2 and got[2] > math.pi - 1e-2
    assert abs(got[3] - math.pi / 2) < 1e-5 and abs(got[4] - math.pi) < 1e-6


@needs_kernel
def test_kernel_applies_to_float32_cpu_pairs_of_one_shape_only():
    x = torch.zeros(4, 3)
    assert npa.applies(x, x) and npa.applies(x[None], x[None])
    assert not npa.applies(x, x[:1]) and not npa.applies(x.double(), x.double()) and not npa.applies(x, x.double())
    with npa.turned_off():
        assert not npa.applies(x, x) and not npa.available()


@needs_kernel
def test_broadcast_pairs_take_the_pytorch_path_with_the_same_values():
    """A (1, n) parent against (B, n) children, or a curvature per row of a wider batch, is not the
    kernel's one-row-per-pair layout: the PyTorch path computes it, and its gradients sum back."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 5, generator=g, requires_grad=True)
    y = torch.randn(4, 5, generator=g, requires_grad=True)
    phi = lorentz.exterior_angle(x, y, curv=0.5)
    rows = lorentz.exterior_angle(x.detach().expand(4, 5), y.detach(), curv=0.5)
    torch.testing.assert_close(phi.detach(), rows, rtol=0, atol=2e-6)
    gx, = torch.autograd.grad(phi.sum(), x)
    assert gx.shape == (1, 5) and torch.isfinite(gx).all()
    wide = lorentz.exterior_angle(y[:1].detach(), y[1:2].detach(), curv=torch.tensor([0.5, 2.0]))
    assert wide.shape == (2,)
