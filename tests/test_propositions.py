"""The papers' propositions, checked numerically (hyplib.propositions), and the plotting
geometry they rely on (geodesic polar coordinates, cone rays, stable figure files)."""
import json
import math

import matplotlib.pyplot as plt
import pytest
import torch

from hyplib import lorentz, plotting, propositions

F64 = torch.float64


@pytest.fixture(scope="module")
def quick():
    """Each check once with its quick settings; figures closed after the module."""
    results = {name: fn(**propositions.QUICK[name]) for name, fn in propositions.CHECKS.items()}
    yield {name: numbers for name, (numbers, _) in results.items()}
    for _, fig in results.values():
        plt.close(fig)


# --------------------------------------------------------------------------- plotting geometry
@pytest.mark.parametrize("curv", [0.3, 1.0, 2.5])
def test_polar_point_distance_angle_and_inverse(gen, curv):
    x = torch.randn(40, 2, generator=gen, dtype=F64)
    rho = 0.05 + 3 * torch.rand(40, generator=gen, dtype=F64)
    theta = (2 * torch.rand(40, generator=gen, dtype=F64) - 1) * 3.1
    y = plotting.polar_point(x, rho, theta, curv=curv)
    torch.testing.assert_close(lorentz.dist(x, y, curv=curv), rho, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(lorentz.exterior_angle(x, y, curv=curv), theta.abs(), rtol=0, atol=1e-8)
    rho2, theta2 = plotting.polar_coords(x, y, curv=curv)
    torch.testing.assert_close(rho2, rho, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(theta2, theta, rtol=1e-9, atol=1e-10)


def test_polar_point_at_root_and_from_poincare(gen):
    y = plotting.polar_point(torch.zeros(2, dtype=F64), 1.0, 0.0, curv=1.0)
    torch.testing.assert_close(y, torch.tensor([math.sinh(1.0), 0.0], dtype=F64))
    x = 3 * torch.randn(30, 2, generator=gen, dtype=F64)
    back = plotting.from_poincare(lorentz.to_poincare(x, curv=0.5), curv=0.5)
    torch.testing.assert_close(back, x, rtol=1e-10, atol=1e-10)


def test_cone_boundary_rays_make_the_half_aperture():
    x = torch.tensor([0.8, -0.6], dtype=F64)
    omega = lorentz.half_aperture(x, curv=1.0)
    for ray in plotting.cone_boundary(x, curv=1.0, steps=20):
        phi = lorentz.exterior_angle(x.expand_as(ray[1:]), ray[1:], curv=1.0)
        torch.testing.assert_close(phi, omega.expand_as(phi), rtol=0, atol=1e-7)


def test_descent_field_points_downhill():
    target = torch.tensor([0.5, 0.2], dtype=F64)
    x = plotting.disk_grid(1.0, n=5)
    p, v = plotting.descent_field(lambda y: lorentz.dist(y, target, curv=1.0), x, curv=1.0)
    step = plotting.from_poincare(p + 1e-4 * v, curv=1.0)
    assert (lorentz.dist(step, target, curv=1.0) < lorentz.dist(x, target, curv=1.0) + 1e-12).all()


def test_savefig_is_byte_stable(tmp_path):
    fig, ax = plotting.disk_axes()
    plotting.poincare_disk(ax, 1.0, rings=(1.0,))
    plotting.plot_cone(ax, torch.tensor([0.3, 0.4]), 1.0)
    plotting.plot_geodesic(ax, torch.zeros(2), torch.tensor([0.3, 0.4]), 1.0)
    first = plotting.savefig(fig, tmp_path / "a" / "fig")
    second = plotting.savefig(fig, tmp_path / "b" / "fig.pdf")
    plt.close(fig)
    assert [p.suffix for p in first] == [".pdf", ".png"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()


# --------------------------------------------------------------------------- propositions
@pytest.mark.slow
def test_atmg_prop1_someone_leaves_the_cone(quick):
    h, rows = quick["atmg_prop1"]["headline"], quick["atmg_prop1"]["rows"]
    assert h["max_outside_start"] == 0  # all start inside the cone
    assert h["min_outside"] >= 1
    assert all(r["outside_end"] >= max(1, r["outside_bound"]) for r in rows)
    assert h["max_gap_error"] < 0.05  # the ascent reached equal spacing


@pytest.mark.slow
def test_atmg_prop2_area_formula_and_shrinkage(quick):
    h = quick["atmg_prop2"]["headline"]
    assert h["max_rel_err_polar"] < 0.05
    assert h["max_rel_err_chart"] < 0.05
    assert h["log_area_slope"] >= h["sqrt_curv"]  # at least exponential shrinkage
    assert propositions.cone_area(0.3, 2.0, curv=4.0) == pytest.approx(0.6 * (math.cosh(4.0) - 1) / 4)


@pytest.mark.slow
def test_cone_collapse_meru_zero_adaptive_not(quick):
    h, rows = quick["cone_collapse"]["headline"], quick["cone_collapse"]["rows"]
    assert h["omega_gap_to_half_space"] < 1e-6
    assert h["meru_zero_frac_inside"] == 1.0 and h["meru_max_grad_inside"] == 0.0
    assert h["adaptive_zero_frac_inside"] == 0.0 and h["adaptive_min_grad_inside"] > 0.1
    assert all(r["zero_frac_meru"] < 0.9 for r in rows if not r["inside_boundary"])


@pytest.mark.slow
def test_meru_overflow(quick):
    h = quick["meru_overflow"]["headline"]
    assert h["sinh_sqrt_dim"] == pytest.approx(math.sinh(math.sqrt(512)))
    assert h["sinh_sqrt_dim"] > 1e9 and h["exp_sqrt_dim"] == pytest.approx(6.7e9, rel=0.01)
    assert not h["float16_unscaled_finite"]
    assert h["float32_constraint_residual"] >= 0.5  # x_t^2 - |x|^2 = 1/c is lost in float32
    assert not h["float32_unscaled_4x_finite"]
    assert h["scaled_float16_finite"] and h["scaled_max_float16"] < 2.0
    assert h["hyplib_clamped_float16_finite"] and h["hyplib_clamped_max_norm"] <= 2**15 * (1 + 1e-5)


@pytest.mark.slow
def test_phyclip_lattice_product_isometric_single_space_not(quick):
    h = quick["phyclip_boolean_lattice"]["headline"]
    assert h["product_max_distortion"] < 1 + 1e-6
    assert h["product_max_sum_error"] < 1e-6
    assert h["single_min_distortion"] > 1.3


def test_distortion_is_scale_free():
    _, ham = propositions._hamming(3)
    assert propositions.distortion(7.5 * ham, ham).item() == pytest.approx(1.0)


@pytest.mark.slow
def test_numbers_are_strict_json(quick):
    text = json.dumps(propositions.jsonable(quick), allow_nan=False)
    assert json.loads(text)["meru_overflow"]["rows"][0]["max_norm"] == "inf"
