"""Product of hyperboloids: split/merge, combinations, per-factor curvature, pairwise forms."""
import pytest
import torch

from hyplib import lorentz as L
from hyplib import product as P


def test_split_merge_round_trip():
    x = torch.arange(24.0).reshape(2, 12)
    f = P.split(x, 3)
    assert f.shape == (2, 3, 4)
    assert torch.equal(f[1, 2], x[1, 8:12])
    assert torch.equal(P.merge(f), x)
    with pytest.raises(ValueError, match="k=5"):
        P.split(x, 5)


def test_combine_hand_values():
    d = torch.tensor([[1.0, 2.0, 6.0]])
    assert P.combine(d, "l1").item() == pytest.approx(3.0)
    assert P.combine(d, "l2").item() == pytest.approx((41 / 3) ** 0.5)
    assert P.combine(d, "linf").item() == pytest.approx(6.0)
    with pytest.raises(ValueError, match="l3"):
        P.combine(d, "l3")


def test_pairwise_product_matches_factor_loops(gen, dtype, tol):
    k, d = 3, 4
    x = torch.randn(5, k, d, generator=gen, dtype=torch.float64).to(dtype)
    y = torch.randn(2, k, d, generator=gen, dtype=torch.float64).to(dtype)
    curv = torch.tensor([0.2, 1.0, 7.0], dtype=dtype)
    per = torch.stack([L.pairwise_dist(x[:, i], y[:, i], curv=float(curv[i])) for i in range(k)], -1)
    torch.testing.assert_close(P.pairwise_factor_dists(x, y, curv=curv), per, **tol)
    for how in P.COMBINATIONS:
        torch.testing.assert_close(P.pairwise_dist(x, y, curv=curv, how=how), P.combine(per, how), **tol)
        paired = P.dist(x[:2], y, curv=curv, how=how)
        torch.testing.assert_close(paired, P.pairwise_dist(x[:2], y, curv=curv, how=how).diagonal(), **tol)
    inner = torch.stack([L.pairwise_inner(x[:, i], y[:, i], curv=float(curv[i])) for i in range(k)], -1)
    torch.testing.assert_close(P.pairwise_factor_inner(x, y, curv=curv), inner, **tol)
    torch.testing.assert_close(P.pairwise_inner_sum(x, y, curv=curv), inner.sum(-1), **tol)


def test_single_factor_is_one_hyperboloid(gen, dtype, tol):
    x = torch.randn(4, 1, 6, generator=gen, dtype=torch.float64).to(dtype)
    y = torch.randn(3, 1, 6, generator=gen, dtype=torch.float64).to(dtype)
    for how in P.COMBINATIONS:
        torch.testing.assert_close(P.pairwise_dist(x, y, curv=0.5, how=how),
                                   L.pairwise_dist(x[:, 0], y[:, 0], curv=0.5), **tol)


def test_per_factor_exp_log(gen, dtype, tol):
    v = torch.randn(4, 3, 2, generator=gen, dtype=torch.float64).to(dtype)
    curv = torch.tensor([0.5, 1.0, 2.0], dtype=dtype)
    x = P.expmap0(v, curv=curv)
    torch.testing.assert_close(x[:, 2], L.expmap0(v[:, 2], curv=2.0), **tol)
    torch.testing.assert_close(P.logmap0(x, curv=curv), v, **tol)
    torch.testing.assert_close(P.dist0(x, curv=curv)[:, 0], L.dist0(x[:, 0], curv=0.5), **tol)


def test_bad_curvature_shape_and_layout():
    x = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        P.pairwise_dist(x, x, curv=torch.ones(2))
    with pytest.raises(ValueError, match="factored"):
        P.pairwise_dist(torch.zeros(2, 12), torch.zeros(2, 12), curv=1.0)
