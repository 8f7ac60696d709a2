"""Geometry core: identities, geoopt parity, pairwise = loops, clamps, dtypes, bad input."""
import math

import geoopt
import pytest
import torch

from hyplib import lorentz as L

CURVS = [1e-2, 0.1, 1.0, 3.0, 1e2]


def _points(gen, dtype, n=6, dim=5, scale=1.0):
    return (scale * torch.randn(n, dim, generator=gen, dtype=torch.float64)).to(dtype)


@pytest.mark.parametrize("curv", CURVS)
def test_points_on_hyperboloid(gen, dtype, curv):
    v = _points(gen, dtype)
    full = L.lift(L.expmap0(v, curv=curv), curv=curv).double()
    minkowski = (full[:, 1:] ** 2).sum(-1) - full[:, 0] ** 2
    rel = (minkowski + 1 / curv).abs() / (full[:, 0] ** 2)
    assert rel.max() < (1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("curv", CURVS)
def test_log_inverts_exp(gen, dtype, tol, curv):
    v = _points(gen, dtype) / math.sqrt(curv)  # |sqrt(c) v| of order 1: away from the cap
    torch.testing.assert_close(L.logmap0(L.expmap0(v, curv=curv), curv=curv), v, **tol)


@pytest.mark.parametrize("curv", [0.1, 1.0, 3.0])
def test_distance_axioms(gen, dtype, curv):
    x, y, z = (_points(gen, dtype) for _ in range(3))
    dxy, dyx = L.dist(x, y, curv=curv), L.dist(y, x, curv=curv)
    torch.testing.assert_close(dxy, dyx)
    assert L.dist(x, x, curv=curv).max() <= 10 * L.eps_for(dtype)
    # The matmul form's diagonal is zero up to sqrt(2 eps x_t^2) (acosh near 1).
    bound = 4 * (2 * L.eps_for(dtype) * (x.norm(dim=-1).max() ** 2 + 1 / curv)) ** 0.5
    assert L.pairwise_dist(x, x, curv=curv).diagonal().max() <= bound
    slack = 1e-4 if dtype == torch.float32 else 1e-9
    assert torch.all(L.dist(x, z, curv=curv) <= dxy + L.dist(y, z, curv=curv) + slack)


@pytest.mark.parametrize("curv", CURVS)
def test_geoopt_parity(gen, curv):
    x, y = _points(gen, torch.float64), _points(gen, torch.float64)
    manifold = geoopt.Lorentz(k=1.0 / curv)
    X, Y = L.lift(x, curv=curv), L.lift(y, curv=curv)
    # geoopt carries its own internal eps, so agreement is relative, not bitwise.
    opts = dict(rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(L.dist(x, y, curv=curv), manifold.dist(X, Y), **opts)
    torch.testing.assert_close(L.dist0(x, curv=curv), manifold.dist0(X), **opts)
    v = x / math.sqrt(curv)
    V = torch.cat([torch.zeros_like(v[:, :1]), v], dim=-1)
    torch.testing.assert_close(L.lift(L.expmap0(v, curv=curv), curv=curv), manifold.expmap0(V), **opts)
    torch.testing.assert_close(L.logmap0(x, curv=curv), manifold.logmap0(X)[:, 1:], **opts)


@pytest.mark.parametrize("curv", [0.5, 2.0])
def test_poincare_matches_geoopt_ball(gen, curv):
    x, y = _points(gen, torch.float64), _points(gen, torch.float64)
    ball = geoopt.PoincareBall(c=curv)
    px, py = L.to_poincare(x, curv=curv), L.to_poincare(y, curv=curv)
    torch.testing.assert_close(ball.dist(px, py), L.dist(x, y, curv=curv), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("curv", [0.1, 1.0, 5.0])
def test_pairwise_equal_loops(gen, dtype, tol, curv):
    x, y = _points(gen, dtype, n=4), _points(gen, dtype, n=3)
    for pairwise, paired in [(L.pairwise_inner, L.inner), (L.pairwise_dist, L.dist),
                             (L.pairwise_exterior_angle, L.exterior_angle)]:
        loop = torch.stack([torch.stack([paired(xi, yj, curv=curv) for yj in y]) for xi in x])
        torch.testing.assert_close(pairwise(x, y, curv=curv), loop, **tol)


def test_pairwise_with_per_factor_curvature(gen, dtype, tol):
    x, y = _points(gen, dtype).reshape(2, 3, 5), _points(gen, dtype).reshape(2, 3, 5)
    curv = torch.tensor([0.3, 2.0], dtype=dtype)
    got = L.pairwise_dist(x, y, curv=curv)
    for f in range(2):
        torch.testing.assert_close(got[f], L.pairwise_dist(x[f], y[f], curv=float(curv[f])), **tol)


def test_exterior_angle_hand_cases(dtype):
    c = 1.0
    x = torch.tensor([1.0, 0.0], dtype=dtype)
    farther = torch.tensor([3.0, 0.0], dtype=dtype)  # further along the ray from the root
    closer = torch.tensor([0.3, 0.0], dtype=dtype)   # back towards the root
    side = L.expmap0(torch.tensor([0.0, 1.0], dtype=dtype), curv=c)
    floor = 1.1 * math.sqrt(2 * L.eps_for(dtype))  # acos/asin arguments are kept 1 eps off +-1
    assert L.exterior_angle(x, farther, curv=c) < floor
    assert L.exterior_angle(x, closer, curv=c) > math.pi - floor
    # The angle at x in O-x-y plus the interior angle at x of that triangle is pi; compare with
    # the hyperbolic law of cosines on the triangle's sides.
    a, b, o = L.dist0(x, curv=c), L.dist(x, side, curv=c), L.dist0(side, curv=c)
    interior = torch.acos((torch.cosh(a) * torch.cosh(b) - torch.cosh(o)) / (torch.sinh(a) * torch.sinh(b)))
    torch.testing.assert_close(L.exterior_angle(x, side, curv=c), math.pi - interior, rtol=1e-4, atol=1e-4)


def test_half_aperture_values(dtype):
    c, K = 1.0, 0.1
    x = torch.tensor([[0.4, 0.0], [0.01, 0.0], [100.0, 0.0]], dtype=dtype)
    got = L.half_aperture(x, curv=c, min_radius=K)
    assert abs(got[0].item() - math.asin(0.5)) < 1e-6
    floor = 1.1 * math.sqrt(2 * L.eps_for(dtype))
    assert got[1].item() > math.pi / 2 - floor         # saturated: the cone is a half-space
    assert abs(got[2].item() - math.asin(0.002)) < 1e-6


def test_einstein_midpoint(gen, dtype, tol):
    x = _points(gen, dtype, n=5, dim=3)
    for curv in (0.1, 1.0, 4.0):
        mid = L.einstein_midpoint(x, curv=curv)
        full = L.lift(x, curv=curv).sum(0)  # hyperboloid projection of the summed vectors
        expected = full[1:] / torch.sqrt(curv * (full[0] ** 2 - (full[1:] ** 2).sum()))
        torch.testing.assert_close(mid, expected, **tol)
    # Two points: the midpoint is equidistant and lies on their geodesic.
    pair = x[:2]
    mid = L.einstein_midpoint(pair, curv=1.0)
    d0, d1 = L.dist(mid, pair[0], curv=1.0), L.dist(mid, pair[1], curv=1.0)
    torch.testing.assert_close(d0, d1, **tol)
    torch.testing.assert_close(d0 + d1, L.dist(pair[0], pair[1], curv=1.0), **tol)


def test_klein_round_trip_and_geodesic(gen, dtype, tol):
    x, y = _points(gen, dtype, n=2, dim=3)
    curv = 0.7
    k = L.to_klein(x, curv=curv)
    assert k.norm(dim=-1).max() < 1
    torch.testing.assert_close(L.from_klein(k, curv=curv), x, **tol)
    path = L.geodesic(x, y, curv=curv, steps=5)
    total = L.dist(x, y, curv=curv)
    torch.testing.assert_close(path[0], x, **tol)
    torch.testing.assert_close(path[-1], y, **tol)
    torch.testing.assert_close(L.dist(x, path[2], curv=curv), total / 2, **tol)
    assert (L.to_klein(path, curv=curv)[1:-1] - L.to_klein(path, curv=curv)[:1]).norm() > 0
    # Geodesics are straight lines in the Klein model: the middle Klein points are collinear.
    kp = L.to_klein(path, curv=curv)
    direction = (kp[-1] - kp[0]) / (kp[-1] - kp[0]).norm()
    offsets = kp - kp[0]
    residual = offsets - (offsets @ direction)[:, None] * direction
    assert residual.abs().max() < (1e-5 if dtype == torch.float32 else 1e-10)


EXTREMES = [
    ("zero", lambda d: torch.zeros(3, 4, dtype=d), lambda d: torch.zeros(3, 4, dtype=d)),
    ("coincident", lambda d: torch.ones(3, 4, dtype=d), lambda d: torch.ones(3, 4, dtype=d)),
    ("huge", lambda d: 1e4 * torch.ones(3, 4, dtype=d), lambda d: -1e4 * torch.ones(3, 4, dtype=d)),
    ("huge_same", lambda d: 1e4 * torch.ones(3, 4, dtype=d), lambda d: 1e4 * torch.ones(3, 4, dtype=d)),
    ("antipodal", lambda d: torch.tensor([[1.0, 0, 0, 0]], dtype=d),
     lambda d: torch.tensor([[-1.0, 0, 0, 0]], dtype=d)),
]


@pytest.mark.parametrize("curv", [1e-2, 1.0, 1e2])
@pytest.mark.parametrize("name,make_x,make_y", EXTREMES, ids=[e[0] for e in EXTREMES])
@pytest.mark.parametrize("in_dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_finite_values_and_gradients(name, make_x, make_y, curv, in_dtype):
    x = make_x(torch.float32).to(in_dtype).requires_grad_()
    y = make_y(torch.float32).to(in_dtype).requires_grad_()
    outputs = {
        "dist": L.dist(x, y, curv=curv), "pairwise_dist": L.pairwise_dist(x, y, curv=curv),
        "dist0": L.dist0(x, curv=curv), "expmap0": L.expmap0(x, curv=curv),
        "logmap0": L.logmap0(x, curv=curv), "half_aperture": L.half_aperture(x, curv=curv),
        "exterior_angle": L.exterior_angle(x, y, curv=curv),
        "pairwise_exterior_angle": L.pairwise_exterior_angle(x, y, curv=curv),
        "einstein_midpoint": L.einstein_midpoint(x, curv=curv), "to_klein": L.to_klein(x, curv=curv),
        "to_poincare": L.to_poincare(x, curv=curv),
    }
    for op, out in outputs.items():
        assert out.dtype in (torch.float32, torch.float64), f"{op} ran in {out.dtype}"
        assert torch.isfinite(out).all(), f"{op} not finite for {name}"
        gx, gy = torch.autograd.grad(out.sum(), (x, y), allow_unused=True)
        for g in (gx, gy):
            assert g is None or torch.isfinite(g).all(), f"{op} gradient not finite for {name}"


def test_expmap0_cap_keeps_half_precision_finite():
    v = torch.full((1, 512), 1.0)  # norm sqrt(512): unscaled encoder feature
    x = L.expmap0(v, curv=1.0)
    assert torch.isfinite(x.half()).all()
    assert L.time_component(x, curv=1.0).item() == pytest.approx(2.0**15, rel=1e-3)


def test_autocast_does_not_lower_precision():
    x, y = torch.randn(8, 16), torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = L.pairwise_dist(x, y, curv=1.0)
    assert d.dtype == torch.float32
    torch.testing.assert_close(d, L.pairwise_dist(x, y, curv=1.0))


@pytest.mark.parametrize("bad", [0.0, -1.0, torch.tensor([1.0, -0.5])])
def test_nonpositive_curvature_raises(bad):
    with pytest.raises(ValueError, match="curv"):
        L.dist(torch.zeros(2, 3), torch.zeros(2, 3), curv=bad)
    with pytest.raises(ValueError, match="curv"):
        L.expmap0(torch.zeros(2, 3), curv=bad)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="x.shape"):
        L.dist(torch.zeros(2, 3), torch.zeros(2, 4), curv=1.0)
    with pytest.raises(ValueError, match="x.shape"):
        L.pairwise_dist(torch.zeros(2, 3), torch.zeros(5, 4), curv=1.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        L.exterior_angle(torch.zeros(2, 3), torch.zeros(5, 3), curv=1.0)
    with pytest.raises(ValueError, match="weights"):
        L.einstein_midpoint(torch.zeros(4, 3), curv=1.0, weights=torch.ones(3))
    with pytest.raises(ValueError, match="steps"):
        L.geodesic(torch.zeros(3), torch.ones(3), curv=1.0, steps=1)


@pytest.mark.parametrize("fn", [L.pairwise_dist, L.pairwise_exterior_angle, L.pairwise_inner,
                                L.dist, L.exterior_angle])
def test_gradcheck_float64(fn):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    curv = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: fn(a, b, curv=c), (x, y, curv))


def _scaled_pairwise_leaves(seed):
    """x (3, 4), y (5, 4), curvature 0.7 and scale -3, float64 leaves for the ``scale=`` tests."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    curv = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    return x, y, curv, torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)


def test_pairwise_dist_scale_gradcheck_and_value():
    x, y, curv, scale = _scaled_pairwise_leaves(8)
    assert torch.autograd.gradcheck(lambda a, b, c, s: L.pairwise_dist(a, b, curv=c, scale=s), (x, y, curv, scale))
    torch.testing.assert_close(L.pairwise_dist(x, y, curv=curv, scale=scale),
                               scale * L.pairwise_dist(x, y, curv=curv), rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="scale must be a number or a 0-d tensor"):
        L.pairwise_dist(x, y, curv=curv, scale=torch.ones(2))


def test_pairwise_exterior_angle_scale_gradcheck_and_value():
    x, y, curv, scale = _scaled_pairwise_leaves(9)
    assert torch.autograd.gradcheck(lambda a, b, c, s: L.pairwise_exterior_angle(a, b, curv=c, scale=s),
                                    (x, y, curv, scale))
    assert torch.autograd.gradcheck(lambda a, b, c, s: L.pairwise_exterior_angles(a, b, curv=c, scales=(s, 2 * s)),
                                    (x, y, curv, scale))
    plain = L.pairwise_exterior_angle(x, y, curv=curv)
    torch.testing.assert_close(L.pairwise_exterior_angle(x, y, curv=curv, scale=scale), scale * plain,
                               rtol=1e-14, atol=0)
    at_x, at_y = L.pairwise_exterior_angles(x, y, curv=curv, scales=(scale, 0.5))
    torch.testing.assert_close(at_x, scale * plain, rtol=1e-14, atol=0)
    torch.testing.assert_close(at_y, 0.5 * L.pairwise_exterior_angle(y, x, curv=curv).t(), rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="scale must be a number or a 0-d tensor"):
        L.pairwise_exterior_angle(x, y, curv=curv, scale=torch.ones(2))
    with pytest.raises(ValueError, match="scales must be a pair"):
        L.pairwise_exterior_angles(x, y, curv=curv, scales=(1.0,))


def test_pairwise_dist_gradcheck_per_batch_curvature():
    """The hand-written backward sums the curvature gradient over broadcast batch dims."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    curv = torch.tensor([0.3, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: L.pairwise_dist(a, b, curv=c), (x, y, curv))


def test_pairwise_dist_gradients_match_autograd_formula():
    """Hand-written backward against autograd through acosh(-c<x,y>_L)/sqrt(c), float64."""
    g = torch.Generator().manual_seed(6)
    x = (2 * torch.randn(7, 6, generator=g, dtype=torch.float64)).requires_grad_()
    y = (2 * torch.randn(9, 6, generator=g, dtype=torch.float64)).requires_grad_()
    curv = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    w = torch.rand(7, 9, generator=g, dtype=torch.float64)
    xt = torch.sqrt(1 / curv + (x * x).sum(-1, keepdim=True))
    yt = torch.sqrt(1 / curv + (y * y).sum(-1, keepdim=True))
    reference = torch.acosh(-curv * (x @ y.T - xt @ yt.T)) / curv.sqrt()
    expected = torch.autograd.grad((w * reference).sum(), (x, y, curv))
    got = torch.autograd.grad((w * L.pairwise_dist(x, y, curv=curv)).sum(), (x, y, curv))
    for e, a in zip(expected, got):
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-10)


def _grid_pairs(dtype=torch.float32, per_cell=16, seed=0):
    """(c, x, y) over |x|, |y| in 1e-4..1e2 (13 log steps each) and c in 1e-2..1e2 (5 steps):
    ``per_cell`` random direction pairs in 8-D per cell, rounded to ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    norms = torch.logspace(-4, 2, 13, dtype=torch.float64)
    a, b = (t.reshape(-1, 1, 1) for t in torch.meshgrid(norms, norms, indexing="ij"))
    dx = torch.randn(a.shape[0], per_cell, 8, generator=g, dtype=torch.float64)
    dy = torch.randn(a.shape[0], per_cell, 8, generator=g, dtype=torch.float64)
    x = (a * dx / dx.norm(dim=-1, keepdim=True)).reshape(-1, 8).to(dtype)
    y = (b * dy / dy.norm(dim=-1, keepdim=True)).reshape(-1, 8).to(dtype)
    return [(c, x, y) for c in torch.logspace(-2, 2, 5, dtype=torch.float64).tolist()]


ANGLE_FORMS = {
    "paired": lambda x, y, c: L.exterior_angle(x, y, curv=c),
    # Pairwise forms on (B, 1, n) x (B, 1, n): the diagonal pairs without a B x B matrix.
    "pairwise": lambda x, y, c: L.pairwise_exterior_angle(x[:, None], y[:, None], curv=c)[:, 0, 0],
    "pairwise_at_y": lambda x, y, c: L.pairwise_exterior_angles(y[:, None], x[:, None], curv=c)[1][:, 0, 0],
}


@pytest.mark.parametrize("form", ANGLE_FORMS)
def test_exterior_angle_float32_matches_float64_on_grid(form):
    """Norms 1e-4..1e2 and c 1e-2..1e2: float32 within 1e-4 rad of float64 on the same
    (float32-rounded) inputs. The arccos form used before was up to ~3 rad off on this grid."""
    fn = ANGLE_FORMS[form]
    for c, x, y in _grid_pairs():
        err = (fn(x, y, c).double() - fn(x.double(), y.double(), c)).abs().max().item()
        assert err < 1e-4, f"c={c}: float32 off by {err:.2e} rad"


def test_exterior_angle_float32_along_the_ray():
    """Children near the parent's ray, outwards and inwards (inside and opposite the cone):
    the paired form stays exact where sin(theta) and x_t cos - |x| y_t/|y| are small."""
    g = torch.Generator().manual_seed(1)
    for c, x, _ in _grid_pairs(torch.float64, per_cell=4):
        side = torch.randn(x.shape, generator=g, dtype=torch.float64)
        side -= (side * x).sum(-1, keepdim=True) * x / (x * x).sum(-1, keepdim=True)
        scale = torch.logspace(-2, 1, x.shape[0], dtype=torch.float64)[torch.randperm(x.shape[0], generator=g)]
        for sign in (1.0, -1.0):
            y = sign * scale[:, None] * x + 0.1 * side / side.norm(dim=-1, keepdim=True) * x.norm(dim=-1, keepdim=True)
            x32, y32 = x.float(), y.float()
            ref = L.exterior_angle(x32.double(), y32.double(), curv=c)
            err = (L.exterior_angle(x32, y32, curv=c).double() - ref).abs().max()
            assert err < 1e-4, f"c={c} sign={sign}: {err:.2e} rad"


@pytest.mark.parametrize("form", ANGLE_FORMS)
def test_exterior_angle_gradients_float32_match_float64(form):
    """Gradients in x and y (per row, relative) and in c (relative to the scale
    ``|x||dphi/dx| + |y||dphi/dy|`` that c dphi/dc is bounded by: phi depends on
    sqrt(c) x and sqrt(c) y only) agree between float32 and float64 across the grid."""
    fn = ANGLE_FORMS[form]
    for c, x, y in _grid_pairs(per_cell=4):
        grads = {}
        for dt in (torch.float32, torch.float64):
            leaves = (x.to(dt).requires_grad_(), y.to(dt).requires_grad_(),
                      torch.tensor(c, dtype=dt, requires_grad=True))
            grads[dt] = [t.double() for t in torch.autograd.grad(fn(*leaves).sum(), leaves)]
        (gx, gy, gc), (hx, hy, hc) = grads[torch.float32], grads[torch.float64]
        for got, ref in ((gx, hx), (gy, hy)):
            rel = ((got - ref).norm(dim=-1) / ref.norm(dim=-1)).max().item()
            assert rel < 1e-3, f"c={c}: relative gradient error {rel:.2e}"
        scale = (x.double().norm(dim=-1) * hx.norm(dim=-1) + y.double().norm(dim=-1) * hy.norm(dim=-1)).sum()
        assert (c * (gc - hc)).abs() < 1e-4 * scale, f"c={c}: curvature gradient {gc.item()} vs {hc.item()}"


def test_exterior_angle_equals_arccos_form_in_float64():
    """Parity with the arccos form (MERU's and the authors') where float64 resolves it."""
    g = torch.Generator().manual_seed(4)
    for c in (0.1, 1.0, 7.0):
        x, y = (torch.randn(200, 6, generator=g, dtype=torch.float64) for _ in range(2))
        xt, yt = L.time_component(x, curv=c), L.time_component(y, curv=c)
        cp = c * L.inner(x, y, curv=c)
        arccos_form = torch.acos((yt + cp * xt) / (x.norm(dim=-1) * torch.sqrt(cp * cp - 1)))
        torch.testing.assert_close(L.exterior_angle(x, y, curv=c), arccos_form, rtol=0, atol=1e-9)
        torch.testing.assert_close(L.pairwise_exterior_angle(x, y, curv=c).diagonal(), arccos_form, rtol=0, atol=1e-9)


def test_exterior_angle_gradients_equal_the_arccos_forms_in_float64():
    """The closed-form backward against autograd through the arccos form, with broadcasting
    x (4, 1, n) against y (1, 5, n) and one curvature per row of x (summed back to each shape)."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(4, 1, 6, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.tensor([[0.2], [1.0], [3.0], [7.0]], dtype=torch.float64, requires_grad=True)
    weights = torch.randn(4, 5, generator=g, dtype=torch.float64)

    def arccos_form(x, y, c):
        xt, yt = L.time_component(x, curv=c), L.time_component(y, curv=c)
        cp = c * L.inner(x, y, curv=c)
        return torch.acos((yt + cp * xt) / (x.norm(dim=-1) * torch.sqrt(cp * cp - 1)))

    got = torch.autograd.grad((L.exterior_angle(x, y, curv=c) * weights).sum(), (x, y, c))
    want = torch.autograd.grad((arccos_form(x, y, c) * weights).sum(), (x, y, c))
    for name, a, b in zip("xyc", got, want):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9, msg=name)


def test_exterior_angle_passes_no_gradient_at_coincident_points():
    x = torch.tensor([[0.3, -1.2, 0.5], [0.3, -1.2, 0.5]], requires_grad=True)
    y = torch.tensor([[0.3, -1.2, 0.5], [1.0, 0.0, 0.0]], requires_grad=True)
    c = torch.tensor(1.5, requires_grad=True)
    phi = L.exterior_angle(x, y, curv=c)
    assert phi[0].item() == pytest.approx(math.pi / 2)                   # undefined: the arccos form's value
    gx, gy, gc = torch.autograd.grad(phi[0], (x, y, c), retain_graph=True)
    assert gx.abs().max() == 0 and gy.abs().max() == 0 and gc == 0
    gx, gy, _ = torch.autograd.grad(phi[1], (x, y, c))
    assert gx[1].abs().max() > 0 and gy[1].abs().max() > 0


def test_exterior_angle_near_root_against_50_digits():
    """Near the root (where the arccos form cancels) the float64 values match a 50-digit
    evaluation of the arccos form."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    g = torch.Generator().manual_seed(5)
    for c in (0.01, 1.0, 100.0):
        for a in (1e-4, 1e-2):
            x = a * torch.randn(5, 4, generator=g, dtype=torch.float64)
            y = torch.randn(5, 4, generator=g, dtype=torch.float64)
            got = L.exterior_angle(x, y, curv=c)
            for i in range(5):
                xs, ys = [mpmath.mpf(float(v)) for v in x[i]], [mpmath.mpf(float(v)) for v in y[i]]
                cm = mpmath.mpf(c)
                xt = mpmath.sqrt(1 / cm + sum(v * v for v in xs))
                yt = mpmath.sqrt(1 / cm + sum(v * v for v in ys))
                cp = cm * (sum(u * v for u, v in zip(xs, ys)) - xt * yt)
                ref = mpmath.acos((yt + cp * xt) / (mpmath.sqrt(sum(v * v for v in xs)) * mpmath.sqrt(cp * cp - 1)))
                assert abs(got[i].item() - float(ref)) < 1e-12
