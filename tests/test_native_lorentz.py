"""The C kernel of the Lorentz all-pairs distance's elementwise passes (hyplib/native/lorentz_dist.c)
against the PyTorch passes it replaces (the kernel turned off) and against float64."""
from __future__ import annotations

import pytest
import torch

from hyplib import lorentz
from hyplib.lorentz import eps_for
from hyplib.native import lorentz_dist as nld

needs_kernel = pytest.mark.skipif(not nld.available(), reason=f"C kernel unavailable: {nld.unavailable_reason()}")


def _points(lead, b1, b2, n, seed=0):
    """Random points and a curvature per leading index. (Coincident pairs, where acosh near its
    floor turns the GEMM's rounding of z into ~sqrt(2 eps) x_t of distance and a gradient that
    either path may floor, are the next test's.)"""
    g = torch.Generator().manual_seed(seed)
    x = 0.8 * torch.randn(*lead, b1, n, generator=g, dtype=torch.float64)
    y = 0.8 * torch.randn(*lead, b2, n, generator=g, dtype=torch.float64)
    c = 0.3 + 2.0 * torch.rand(tuple(lead), generator=g, dtype=torch.float64)
    return x, y, c, torch.randn(*lead, b1, b2, generator=g, dtype=torch.float64)


def _value_and_grads(x, y, c, weights, scale=None):
    leaves = [t.clone().requires_grad_() for t in (x, y, c)]
    if scale is not None:
        leaves.append(torch.tensor(scale, dtype=x.dtype, requires_grad=True))
    out = lorentz.pairwise_dist(*leaves[:2], curv=leaves[2].unsqueeze(-1).unsqueeze(-1)
                                if leaves[2].dim() else leaves[2], scale=None if scale is None else leaves[3])
    return out.detach(), torch.autograd.grad((out * weights).sum(), leaves)


@needs_kernel
@pytest.mark.parametrize("lead, b1, b2, scale", [((), 37, 53, None), ((2,), 5, 300, -7.5), ((), 64, 64, 0.0)])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_kernel_matches_the_pytorch_passes_and_float64(lead, b1, b2, scale, threads, kernel_threads):
    kernel_threads(threads)
    x, y, c, weights = _points(lead, b1, b2, 6)
    as32 = [t.float() for t in (x, y, c, weights)]
    kernel = _value_and_grads(*as32, scale)
    with nld.turned_off():
        passes = _value_and_grads(*as32, scale)
    reference = _value_and_grads(x, y, c, weights, scale)
    torch.testing.assert_close(kernel[0], passes[0], rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(kernel[0].double(), reference[0], rtol=1e-5, atol=1e-5)
    for name, got, want, ref in zip("xy", kernel[1], passes[1], reference[1]):
        # Both float32 paths sum G y_t in different orders (the kernel by rows, the GEMM in blocks):
        # each is within ~1e-6 of the largest gradient entry of float64, and so of the other.
        size = ref.abs().max().item()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-6 * size, msg=name)
        for path in (got, want):
            torch.testing.assert_close(path.double(), ref, rtol=1e-5, atol=1e-6 * size, msg=name)
    # The curvature gradient sums terms that cancel: both float32 paths are ~1e-4 off float64.
    torch.testing.assert_close(kernel[1][2], passes[1][2], rtol=1e-4, atol=0)
    for got in (kernel[1][2], passes[1][2]):
        torch.testing.assert_close(got.double(), reference[1][2], rtol=1e-3, atol=0)
    if scale is not None:                                     # d(scale d)/d scale = sum g d, also at 0
        torch.testing.assert_close(kernel[1][3], passes[1][3], rtol=1e-5, atol=0)
        torch.testing.assert_close(kernel[1][3].double(), reference[1][3], rtol=1e-5, atol=0)


@needs_kernel
def test_coincident_pairs_sit_on_the_floor_and_pass_no_gradient():
    x = torch.tensor([[0.2, -0.4, 0.1]]).requires_grad_()
    y = x.detach().clone().requires_grad_()
    out = lorentz.pairwise_dist(x, y, curv=1.0)
    floor = 1.0 + eps_for(torch.float32)
    assert out.item() == pytest.approx(torch.acosh(torch.tensor(floor, dtype=torch.float64)).item(), rel=1e-3)
    gx, gy = torch.autograd.grad(out.sum(), (x, y))
    assert gx.abs().max() == 0 and gy.abs().max() == 0


@needs_kernel
def test_kernel_applies_to_float32_cpu_tensors_only():
    z = torch.ones(1, 4, 4)
    assert nld.applies(z) and nld.applies(z.transpose(1, 2)[:, :2])
    assert not nld.applies(z.double()) and not nld.applies(z, z.double())
    with nld.turned_off():
        assert not nld.applies(z) and not nld.available()
