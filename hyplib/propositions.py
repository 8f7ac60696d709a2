"""Numerical checks of the papers' propositions (docs/METHODS.md section 6).

Each check returns ``(numbers, fig)``: ``numbers`` is a JSON-able dict with ``"headline"`` (the
few numbers a test asserts and the report quotes), ``"rows"`` (one dict per configuration, for
a pandas table) and ``"params"``; ``fig`` is a matplotlib figure drawn with
:mod:`hyplib.plotting`. Everything runs in float64 on CPU, seeded, in seconds.

Conventions are :mod:`hyplib.lorentz`'s: curvature ``-curv``, points stored as space parts,
``omega(x)`` the half-aperture with ``K = min_radius``, ``phi(x, y)`` the exterior angle at
``x``. In 2-D, *geodesic polar coordinates* ``(rho, theta)`` at ``x`` are measured from the
outward direction (:func:`hyplib.plotting.polar_point`), so ``|theta| = phi(x, y)`` and the
cone of ``x`` is ``|theta| <= omega(x)``; the hyperbolic area element is
``sinh(sqrt(c) rho) / sqrt(c) drho dtheta``.
"""
from __future__ import annotations

import itertools
import math

import geoopt
import numpy as np
import seaborn as sns
import torch

from hyplib import lorentz, plotting, product
from hyplib.plotting import COLORS, polar_point

__all__ = [
    "atmg_prop1", "atmg_prop2", "cone_collapse", "meru_overflow", "phyclip_boolean_lattice",
    "distortion", "run_all", "jsonable",
]

F64 = torch.float64


def _x_axis(norm: float) -> torch.Tensor:
    """The 2-D point ``(norm, 0)``: by rotation symmetry the only thing that matters is ``|x|``."""
    return torch.tensor([norm, 0.0], dtype=F64)


# --------------------------------------------------------------------------- ATMG Prop. 1
def _spread_on_circle(x, r, n, *, curv, steps, lr, gen, min_radius):
    """Maximise the total pairwise distance of ``n`` points at distance ``r`` from ``x``.

    ``x`` (B, 2) and ``r`` (B,) are B independent problems solved together (Adam's moments are
    per point, so batching does not couple them). The points are ``exp_x(r w)`` with ``w`` on
    the unit circle of the tangent frame (a ``geoopt.Sphere`` parameter), started inside the
    cone (``|theta| <= omega/2``). Returns initial and final points (B, n, 2).
    """
    omega = lorentz.half_aperture(x, curv=curv, min_radius=min_radius)
    theta0 = (torch.rand(len(x), n, generator=gen, dtype=F64) - 0.5) * omega[:, None]
    w = geoopt.ManifoldParameter(torch.stack([theta0.cos(), theta0.sin()], -1), manifold=geoopt.Sphere())
    points = lambda: plotting.frame_exp(x[:, None, :], r[:, None, None] * w, curv=curv)  # noqa: E731
    start = points().detach()
    opt = geoopt.optim.RiemannianAdam([w], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = -lorentz.pairwise_dist(points(), points(), curv=curv).sum()
        loss.backward()
        opt.step()
    return start, points().detach()


def atmg_prop1(ns=(2, 3, 5, 8), radii=(0.5, 1.0, 2.0), norms=(0.3, 1.0, 3.0), *, curv=1.0,
               min_radius=0.1, steps=300, lr=0.05, seed=0):
    """ATMG Prop. 1: points at distance ``r`` from ``x`` pushed apart leave ``x``'s cone.

    For every ``n`` in ``ns`` and ``(r, |x|)`` in ``radii x norms``, ``n`` points on the circle
    of radius ``r`` around ``x`` start inside the cone and are moved by RiemannianAdam to
    maximise their summed pairwise distance; we count how many end with ``phi(x, y) > omega(x)``.
    """
    gen = torch.Generator().manual_seed(seed)
    configs = list(itertools.product(radii, norms))
    r = torch.tensor([c[0] for c in configs], dtype=F64)
    x = torch.stack([_x_axis(c[1]) for c in configs])
    omega = lorentz.half_aperture(x, curv=curv, min_radius=min_radius)
    rows, examples = [], {}
    for n in ns:
        start, end = _spread_on_circle(x, r, n, curv=curv, steps=steps, lr=lr, gen=gen, min_radius=min_radius)
        phi0, phi = (lorentz.exterior_angle(x[:, None], y, curv=curv) for y in (start, end))
        total = lorentz.pairwise_dist(end, end, curv=curv).triu(1).sum((-1, -2))
        theta = plotting.polar_coords(x[:, None], end, curv=curv)[1].sort(-1).values
        gaps = torch.diff(theta, dim=-1, append=theta[:, :1] + 2 * math.pi)
        for b, (rb, nb) in enumerate(configs):
            rows.append({"n": n, "r": rb, "x_norm": nb, "omega": float(omega[b]),
                         "outside_start": int((phi0[b] > omega[b]).sum()),
                         "outside_end": int((phi[b] > omega[b]).sum()),
                         # n equally spaced angles put at most floor(n omega / pi) + 1 in the cone
                         "outside_bound": n - 1 - math.floor(n * float(omega[b]) / math.pi),
                         "max_phi": float(phi[b].max()), "total_dist": float(total[b]),
                         "gap_error": float((gaps[b] - 2 * math.pi / n).abs().max())})
        examples[n] = (start, end)
    headline = {"min_outside": min(row["outside_end"] for row in rows),
                "max_outside_start": max(row["outside_start"] for row in rows),
                "max_gap_error": max(row["gap_error"] for row in rows), "configs": len(rows)}
    fig = _prop1_figure(rows, examples, x, r, configs, curv=curv, min_radius=min_radius)
    params = dict(ns=list(ns), radii=list(radii), norms=list(norms), curv=curv, min_radius=min_radius,
                  steps=steps, lr=lr, seed=seed)
    return {"headline": headline, "rows": rows, "params": params}, fig


def _prop1_figure(rows, examples, x, r, configs, *, curv, min_radius):
    plotting.set_style()
    fig, (ax, hm) = plotting.disk_axes(2, size=3.6)
    n = sorted(examples)[len(examples) // 2]
    b = min(range(len(configs)), key=lambda i: abs(configs[i][0] - 1.0) + abs(configs[i][1] - 1.0))
    start, end = examples[n][0][b], examples[n][1][b]
    plotting.poincare_disk(ax, curv)
    plotting.plot_cone(ax, x[b], curv, min_radius)
    circle = polar_point(x[b], r[b], torch.linspace(-math.pi, math.pi, 200, dtype=F64), curv=curv)
    plotting.plot_geodesic(ax, circle[:-1], circle[1:], curv, steps=2, lw=0.6, ls="--")
    plotting.plot_points(ax, x[b], curv, color=COLORS["root"], marker="s", s=14)
    plotting.plot_points(ax, start, curv, facecolors="none", edgecolors=COLORS["text"], label="start")
    plotting.plot_points(ax, end, curv, color=COLORS["image"], label="after ascent")
    ax.legend(loc="lower left", fontsize=7)
    ax.set_title(f"n={n}, r={configs[b][0]:g}, |x|={configs[b][1]:g}", fontsize=9)
    table = np.array([[row["outside_end"] for row in rows if (row["r"], row["x_norm"]) == c] for c in configs])
    ns = sorted(examples)
    sns.heatmap(table, annot=True, fmt="d", cbar=False, cmap="Blues", ax=hm, xticklabels=ns,
                yticklabels=[f"r={a:g}, |x|={b:g}" for a, b in configs])
    hm.set_xlabel("n points")
    hm.set_title("points outside the cone", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- ATMG Prop. 2
def cone_area(omega, d_max, *, curv=1.0):
    """Area of ``{y : d(x, y) <= d_max, phi(x, y) <= omega}`` in ``H^2``.

    .. math:: A = \\int_{-\\omega}^{\\omega}\\int_0^{d_{max}} \\frac{\\sinh(\\sqrt c\\rho)}{\\sqrt c}
              d\\rho\\, d\\theta = \\frac{2\\omega(\\cosh(\\sqrt c\\, d_{max}) - 1)}{c}
    """
    return 2.0 * omega * (math.cosh(math.sqrt(curv) * d_max) - 1.0) / curv


def _in_cone_region(x, y, d_max, *, curv, min_radius):
    """Boolean mask (N,) of points ``y`` (N, 2) within ``d_max`` of ``x`` and inside its cone."""
    omega = lorentz.half_aperture(x, curv=curv, min_radius=min_radius)
    return (lorentz.dist(x, y, curv=curv) <= d_max) & (lorentz.exterior_angle(x, y, curv=curv) <= omega)


def _mc_polar(x, d_max, n, gen, *, curv, min_radius):
    """Area estimate from points uniform (in hyperbolic area) on a sector of ``B(x, d_max)``.

    ``theta ~ U(-w, w)`` with the window ``w = min(pi, 2 omega)``, twice the cone, so that half
    the samples must be rejected; ``rho`` has density ``sinh(sqrt(c) rho)``, sampled by
    inverting ``F(rho) = (cosh(sqrt(c) rho) - 1) / (cosh(sqrt(c) d_max) - 1)``. Membership is
    decided by :mod:`hyplib.lorentz`'s distance and exterior angle, not by ``theta``.
    Returns (estimate, points, inside mask).
    """
    sc = math.sqrt(curv)
    window = min(math.pi, 2.0 * lorentz.half_aperture(x, curv=curv, min_radius=min_radius).item())
    u, v = torch.rand(2, n, generator=gen, dtype=F64)
    rho = torch.acosh(1.0 + u * (math.cosh(sc * d_max) - 1.0)) / sc
    y = polar_point(x, rho, (2 * v - 1) * window, curv=curv)
    # Tolerance on d_max: rho = d_max exactly must not be lost to rounding in dist.
    inside = _in_cone_region(x, y, d_max * (1 + 1e-12), curv=curv, min_radius=min_radius)
    sector = 2 * window * (math.cosh(sc * d_max) - 1.0) / curv
    return sector * inside.double().mean().item(), y, inside


def _mc_chart(x, d_max, n, gen, *, curv, min_radius):
    """Independent estimate: uniform points in a Poincare-chart box around the region, weighted
    by the area density ``lambda(p)^2 = (2 / (1 - c|p|^2))^2`` (no polar coordinates used).

    The box is the bounding box of the region's boundary (two rays and an arc), which
    contains the region; it is clipped to the disk.
    """
    omega = lorentz.half_aperture(x, curv=curv, min_radius=min_radius)
    rho = torch.linspace(0, d_max, 200, dtype=F64)
    theta = torch.linspace(-omega.item(), omega.item(), 200, dtype=F64)
    rim = torch.cat([polar_point(x, rho, omega, curv=curv), polar_point(x, d_max, theta, curv=curv),
                     polar_point(x, rho, -omega, curv=curv)])
    p = lorentz.to_poincare(rim, curv=curv)
    lo, hi = p.min(0).values, p.max(0).values
    lo, hi = lo - 0.01 * (hi - lo), hi + 0.01 * (hi - lo)  # pad: the rim is sampled, not exact
    q = lo + (hi - lo) * torch.rand(n, 2, generator=gen, dtype=F64)
    ok = curv * (q * q).sum(-1) < 1.0
    q = q[ok]
    weight = (2.0 / (1.0 - curv * (q * q).sum(-1))) ** 2
    inside = _in_cone_region(x, plotting.from_poincare(q, curv=curv), d_max, curv=curv, min_radius=min_radius)
    return float(torch.prod(hi - lo)) * float((weight * inside).sum()) / n


def atmg_prop2(d_maxs=(0.5, 1.0, 2.0, 3.0, 4.0), norms=(0.5, 2.0), *, curv=1.0, min_radius=0.1,
               n_samples=100_000, seed=0):
    """ATMG Prop. 2: the in-cone area within ``d_max`` is ``2 omega (cosh(sqrt(c) d_max) - 1) / c``.

    The region is ``{y : d(x, y) <= d_max and phi(x, y) <= omega(x)}``. Two Monte Carlo
    estimates per ``(|x|, d_max)``: uniform sampling of a sector of the disk (twice the cone's
    angle) in geodesic polar coordinates,
    and importance sampling in the Poincare chart; both are compared with the formula.
    The area falls at least like ``exp(-sqrt(c) Delta)`` as ``d_max`` shrinks by ``Delta``
    (the log-slope between the two largest ``d_max`` is reported; it exceeds ``sqrt(c)``).
    """
    gen = torch.Generator().manual_seed(seed)
    rows, sample = [], None
    for norm, d_max in itertools.product(norms, d_maxs):
        x = _x_axis(norm)
        omega = lorentz.half_aperture(x, curv=curv, min_radius=min_radius).item()
        exact = cone_area(omega, d_max, curv=curv)
        polar, y, inside = _mc_polar(x, d_max, n_samples, gen, curv=curv, min_radius=min_radius)
        chart = _mc_chart(x, d_max, n_samples, gen, curv=curv, min_radius=min_radius)
        rows.append({"x_norm": norm, "d_max": d_max, "omega": omega, "area": exact, "mc_polar": polar,
                     "mc_chart": chart, "rel_err_polar": abs(polar - exact) / exact,
                     "rel_err_chart": abs(chart - exact) / exact,
                     "ratio_to_largest": exact / cone_area(omega, max(d_maxs), curv=curv)})
        if sample is None and d_max == sorted(d_maxs)[len(d_maxs) // 2]:
            sample = (x, y[:2000], inside[:2000], d_max)
    # Log-slope of the area between the two largest radii: sqrt(c) coth(sqrt(c) d / 2) > sqrt(c),
    # tending to sqrt(c) -- the area shrinks at least like exp(-sqrt(c) * decrease of d_max).
    (a, b) = sorted((r for r in rows if r["x_norm"] == norms[0]), key=lambda r: r["d_max"])[-2:]
    slope = (math.log(b["area"]) - math.log(a["area"])) / (b["d_max"] - a["d_max"])
    headline = {"max_rel_err_polar": max(r["rel_err_polar"] for r in rows),
                "max_rel_err_chart": max(r["rel_err_chart"] for r in rows),
                "log_area_slope": float(slope), "sqrt_curv": math.sqrt(curv)}
    fig = _prop2_figure(rows, sample, curv=curv, min_radius=min_radius)
    params = dict(d_maxs=list(d_maxs), norms=list(norms), curv=curv, min_radius=min_radius,
                  n_samples=n_samples, seed=seed)
    return {"headline": headline, "rows": rows, "params": params}, fig


def _prop2_figure(rows, sample, *, curv, min_radius):
    plotting.set_style()
    fig, (ax, ar) = plotting.disk_axes(2, size=3.6)
    x, y, inside, d_max = sample
    plotting.poincare_disk(ax, curv)
    plotting.plot_points(ax, y[~inside], curv, s=1, color="0.75", zorder=1)
    plotting.plot_points(ax, y[inside], curv, s=1, color=COLORS["image"], zorder=2)
    plotting.plot_cone(ax, x, curv, min_radius, fill=False)
    plotting.plot_points(ax, x, curv, color=COLORS["root"], marker="s", s=14)
    ax.set_title(f"samples in a sector of B(x, {d_max:g});\nin-cone region in colour", fontsize=9)
    for norm in sorted({r["x_norm"] for r in rows}):
        sub = [r for r in rows if r["x_norm"] == norm]
        d = np.linspace(min(r["d_max"] for r in sub), max(r["d_max"] for r in sub), 100)
        line, = ar.plot(d, [cone_area(sub[0]["omega"], t, curv=curv) for t in d], label=f"formula, |x|={norm:g}")
        ar.plot([r["d_max"] for r in sub], [r["mc_polar"] for r in sub], "o", color=line.get_color(), ms=4)
        ar.plot([r["d_max"] for r in sub], [r["mc_chart"] for r in sub], "x", color=line.get_color(), ms=5)
    ar.plot([], [], "ok", ms=4, label="MC, polar")
    ar.plot([], [], "xk", ms=5, label="MC, Poincare chart")
    ar.set_yscale("log")
    ar.set_xlabel("$d_{max}$")
    ar.set_ylabel("in-cone area")
    ar.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- ARGENT's collapse
def adaptive_weight(d, sigma=0.5):
    """ARGENT-style pair weight ``h(d) = 1 - exp(-d / sigma)``: 0 for identical pairs."""
    return 1.0 - torch.exp(-d / sigma)


def cone_collapse(parent_norms=(0.02, 0.05, 0.1, 0.15, 0.19, 0.3, 0.5, 1.0, 2.0), *, curv=1.0,
                  min_radius=0.1, sigma=0.5, n_children=4000, max_child_dist=3.0, seed=0):
    """ARGENT's cone collapse: below ``|x| = 2K / sqrt(c)`` the aperture is a half-space.

    For each parent ``x`` children are drawn in its outer half-space (``phi(x, y) < pi/2``:
    ``theta ~ U(-pi/2, pi/2)``, ``rho ~ U(0.05, max_child_dist)``). MERU's loss
    ``relu(phi - omega)`` is then zero for every child of a parent inside the norm boundary
    (so is its gradient), while the adaptive loss ``h(d) phi`` (no aperture) is not.
    Reports per parent norm the fraction of children with zero loss for each and the gradient
    norm of the mean loss with respect to the parent.
    """
    gen = torch.Generator().manual_seed(seed)
    boundary = 2.0 * min_radius / math.sqrt(curv)
    rows = []
    for norm in parent_norms:
        x = _x_axis(norm)
        theta = (torch.rand(n_children, generator=gen, dtype=F64) - 0.5) * math.pi
        rho = 0.05 + (max_child_dist - 0.05) * torch.rand(n_children, generator=gen, dtype=F64)
        y = polar_point(x, rho, theta, curv=curv)
        xg = x.clone().requires_grad_(True)
        phi = lorentz.exterior_angle(xg, y, curv=curv)
        omega = lorentz.half_aperture(xg, curv=curv, min_radius=min_radius)
        meru = torch.relu(phi - omega)
        adaptive = adaptive_weight(lorentz.dist(xg, y, curv=curv), sigma) * phi
        (g_meru,) = torch.autograd.grad(meru.mean(), xg, retain_graph=True)
        (g_adapt,) = torch.autograd.grad(adaptive.mean(), xg)
        rows.append({"x_norm": norm, "inside_boundary": norm < boundary, "omega": omega.item(),
                     "zero_frac_meru": (meru == 0).double().mean().item(),
                     "zero_frac_adaptive": (adaptive == 0).double().mean().item(),
                     "mean_meru": meru.mean().item(), "mean_adaptive": adaptive.mean().item(),
                     "grad_meru": g_meru.norm().item(), "grad_adaptive": g_adapt.norm().item()})
    inner = [r for r in rows if r["inside_boundary"]]
    headline = {"boundary": boundary, "omega_gap_to_half_space": math.pi / 2 - max(r["omega"] for r in rows),
                "meru_zero_frac_inside": min(r["zero_frac_meru"] for r in inner),
                "adaptive_zero_frac_inside": max(r["zero_frac_adaptive"] for r in inner),
                "meru_max_grad_inside": max(r["grad_meru"] for r in inner),
                "adaptive_min_grad_inside": min(r["grad_adaptive"] for r in inner)}
    fig = _collapse_figure(rows, boundary, curv=curv, min_radius=min_radius)
    params = dict(parent_norms=list(parent_norms), curv=curv, min_radius=min_radius, sigma=sigma,
                  n_children=n_children, max_child_dist=max_child_dist, seed=seed)
    return {"headline": headline, "rows": rows, "params": params}, fig


def _collapse_figure(rows, boundary, *, curv, min_radius):
    plotting.set_style()
    fig, (ax, om, fr) = plotting.disk_axes(3, size=3.3)
    plotting.poincare_disk(ax, curv, rings=(boundary,))
    for norm, colour in ((0.6 * boundary, COLORS["image"]), (5 * boundary, COLORS["text"])):
        x = torch.tensor([norm, norm], dtype=F64) / math.sqrt(2)
        plotting.plot_cone(ax, x, curv, min_radius, color=colour)
        plotting.plot_points(ax, x, curv, color=colour, s=14)
    ax.set_title("cones inside / outside\nthe norm boundary (dotted)", fontsize=9)
    norms = np.geomspace(0.2 * boundary, 20 * boundary, 200)
    omega = lorentz.half_aperture(torch.tensor(norms)[:, None] * torch.tensor([[1.0, 0.0]], dtype=F64),
                                  curv=curv, min_radius=min_radius)
    om.semilogx(norms, omega.numpy(), color=COLORS["cone"])
    om.axhline(math.pi / 2, ls=":", color="0.5")
    om.axvline(boundary, ls="--", color="0.5")
    om.set(xlabel="|x|", ylabel=r"half-aperture $\omega(x)$")
    xs = [r["x_norm"] for r in rows]
    fr.semilogx(xs, [r["zero_frac_meru"] for r in rows], "o-", label=r"MERU relu($\phi-\omega$)")
    fr.semilogx(xs, [r["zero_frac_adaptive"] for r in rows], "s-", label=r"adaptive $h(d)\,\phi$")
    fr.axvline(boundary, ls="--", color="0.5")
    fr.set(xlabel="parent |x|", ylabel="children with zero loss", ylim=(-0.05, 1.05))
    fr.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- MERU's overflow
def _sinh_norm(norm: torch.Tensor, curv: float) -> torch.Tensor:
    """``|expmap0(v)| = sinh(sqrt(c)|v|) / sqrt(c)`` evaluated in ``norm``'s dtype, unclamped."""
    return torch.sinh(math.sqrt(curv) * norm) / math.sqrt(curv)


def meru_overflow(dim=512, *, curv=1.0, n=256, seed=0):
    """MERU's remark: ``expmap0`` of unscaled ``dim``-d features (norm ~ sqrt(dim)) explodes.

    Features ``v ~ N(0, I)``. The unclamped formula ``sinh(sqrt(c)|v|)/sqrt(c)`` gives space
    norms ~3.4e9 for ``dim = 512``: ``inf`` in float16 (max 65504); finite in float32, whose
    limit is reached at ``|v| ~ 89.4`` (features four times larger), and even at ``|v| ~ 22.6``
    float32 can no longer represent the hyperboloid constraint ``x_t^2 - |x|^2 = 1/c``.
    Scaling by ``alpha = dim**-0.5`` keeps ``|x| ~ sinh(1)``; hyplib's clamp keeps float16 finite.
    """
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, dim, generator=gen, dtype=F64)
    norm = v.norm(dim=-1)
    unscaled = {str(dt).replace("torch.", ""): _sinh_norm(norm.to(dt), curv)
                for dt in (torch.float16, torch.float32, F64)}
    x32 = _sinh_norm(norm.float(), curv)
    t32 = torch.cosh(math.sqrt(curv) * norm.float()) / math.sqrt(curv)
    residual = ((t32 * t32 - x32 * x32) * curv - 1.0).abs().max().item()  # exact value: 0
    alpha = dim ** -0.5
    scaled16 = _sinh_norm((alpha * norm).half(), curv)
    clamped = lorentz.expmap0((4 * v).half(), curv=curv)  # features 4x larger: beyond float32 too
    clamped16 = clamped.half()
    headline = {
        "feature_norm_mean": norm.mean().item(), "sinh_sqrt_dim": math.sinh(math.sqrt(curv * dim)) / math.sqrt(curv),
        "exp_sqrt_dim": math.exp(math.sqrt(curv * dim)),
        "float16_unscaled_finite": bool(torch.isfinite(unscaled["float16"]).all()),
        "float32_unscaled_max": unscaled["float32"].max().item(),
        "float32_constraint_residual": residual,
        "float32_unscaled_4x_finite": bool(torch.isfinite(_sinh_norm(4 * norm.float(), curv)).all()),
        "overflow_norm_float16": math.asinh(torch.finfo(torch.float16).max * math.sqrt(curv)) / math.sqrt(curv),
        "overflow_norm_float32": math.asinh(torch.finfo(torch.float32).max * math.sqrt(curv)) / math.sqrt(curv),
        "alpha": alpha, "scaled_max_float16": scaled16.max().item(),
        "scaled_float16_finite": bool(torch.isfinite(scaled16).all()),
        "hyplib_clamped_float16_finite": bool(torch.isfinite(clamped16).all()),
        "hyplib_clamped_max_abs": clamped16.abs().max().item(),
        "hyplib_clamped_max_norm": clamped.double().norm(dim=-1).max().item(),
    }
    rows = [{"dtype": k, "max_norm": t.max().item(), "finite": bool(torch.isfinite(t).all())}
            for k, t in unscaled.items()]
    params = dict(dim=dim, curv=curv, n=n, seed=seed)
    return {"headline": headline, "rows": rows, "params": params}, _overflow_figure(headline, curv)


def _overflow_figure(h, curv):
    plotting.set_style()
    fig, ax = plotting.disk_axes(1, size=4.2)
    fig.set_size_inches(5.2, 3.4)
    s = np.linspace(0.05, 100.0, 400)
    with np.errstate(over="ignore"):
        ax.semilogy(s, np.sinh(np.sqrt(curv) * s) / np.sqrt(curv), label="unclamped $|\\exp_0(v)|$")
    cap = lorentz.expmap0(torch.tensor(s)[:, None], curv=curv)[:, 0].numpy()
    ax.semilogy(s, cap, "--", label="hyplib expmap0 (clamped)")
    for name, dt in (("float16", torch.float16), ("float32", torch.float32)):
        ax.axhline(torch.finfo(dt).max, ls=":", color="0.4")
        ax.text(1, torch.finfo(dt).max * 3, f"{name} max", fontsize=7)
    ax.axvline(h["feature_norm_mean"], color=COLORS["image"], lw=0.8)
    ax.axvline(h["feature_norm_mean"] * h["alpha"], color=COLORS["text"], lw=0.8)
    ax.text(h["feature_norm_mean"] + 1, 1e1, "unscaled\n512-d", fontsize=7)
    ax.text(h["feature_norm_mean"] * h["alpha"] + 1, 1e-1, r"$\alpha$-scaled", fontsize=7)
    ax.set(xlabel="feature norm |v|", ylabel="space-part norm |x|", ylim=(1e-2, 1e45))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- PHyCLIP's lattice
def distortion(emb: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Multiplicative distortion of distance matrices (..., N, N) against ``ref`` (N, N).

    ``max(emb/ref) * max(ref/emb)`` over off-diagonal pairs (expansion times contraction);
    1 exactly for an isometry up to scale, so the scale of ``emb`` does not matter.
    """
    off = ~torch.eye(ref.shape[-1], dtype=torch.bool)
    ratio = emb[..., off] / ref[off]
    return ratio.amax(-1) / ratio.amin(-1)


def _hamming(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``2**n`` bit vectors (2**n, n) and their Hamming distance matrix."""
    bits = torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=F64)
    return bits, torch.cdist(bits, bits, p=1)


def _product_embedding(bits: torch.Tensor, *, curv, factor_dim):
    """Bit ``i`` -> factor ``i`` of a product of ``H^factor_dim``: 0 at the root, 1 at distance 1
    along the first axis (a geodesic). Returns factored points (2**n, n, factor_dim)."""
    tangent = torch.zeros(*bits.shape, factor_dim, dtype=F64)
    tangent[..., 0] = bits
    return product.expmap0(tangent, curv=curv)


def _best_single_space(ham, dim, *, curv, restarts, steps, lr, temperature, gen):
    """Lowest distortion found for ``N`` points in one ``H^dim`` (geoopt.Lorentz, k = 1/c).

    ``restarts`` independent problems are optimised together with RiemannianAdam on a
    smoothed distortion: soft-max of ``log(d/ham)`` plus soft-max of ``-log(d/ham)``.
    Returns the best exact distortion seen and its distance matrix.
    """
    manifold = geoopt.Lorentz(k=1.0 / curv)
    start = lorentz.expmap0(torch.randn(restarts, ham.shape[0], dim, generator=gen, dtype=F64), curv=curv)
    pts = geoopt.ManifoldParameter(lorentz.lift(start, curv=curv), manifold=manifold)
    opt = geoopt.optim.RiemannianAdam([pts], lr=lr)
    off = ~torch.eye(ham.shape[0], dtype=torch.bool)
    best, best_d = math.inf, None
    for _ in range(steps):
        opt.zero_grad()
        d = lorentz.pairwise_dist(pts[..., 1:], pts[..., 1:], curv=curv)
        log_ratio = torch.log(d[:, off] / ham[off])
        smooth = temperature * (torch.logsumexp(log_ratio / temperature, -1)
                                + torch.logsumexp(-log_ratio / temperature, -1))
        smooth.sum().backward()
        opt.step()
        with torch.no_grad():
            exact = distortion(d, ham)
            i = int(exact.argmin())
            if exact[i] < best:
                best, best_d = exact[i].item(), d[i].detach().clone()
    return best, best_d


def phyclip_boolean_lattice(ns=(2, 3, 4), *, curv=1.0, factor_dim=2, restarts=4, steps=600, lr=0.05,
                            temperature=0.02, seed=0):
    """PHyCLIP: the Boolean lattice ``{0,1}^n`` (Hamming) embeds isometrically in an l1 product.

    Product: one ``H^factor_dim`` factor per bit, the two values at distance 1 on a geodesic,
    so the *sum* of per-factor distances is the Hamming distance; ``product.combine``'s "l1"
    is the mean, i.e. Hamming / n, and distortion is scale-free, so it is exactly 1. Single
    space ``H^m`` with ``m = n * factor_dim`` (as many coordinates): the best embedding found
    by RiemannianAdam over several restarts keeps a distortion well above 1 (its 4-cycles
    cannot be isometric in a CAT(0) space; the short-diagonal bound there is ``sqrt(2)``).
    Coincident points get distance ``acosh(1 + eps)`` (lorentz's clamp, ~6e-8 in float64), so
    the product's distortion is 1 up to ~1e-7.
    """
    gen = torch.Generator().manual_seed(seed)
    rows, best_mats = [], {}
    for n in ns:
        bits, ham = _hamming(n)
        emb = _product_embedding(bits, curv=curv, factor_dim=factor_dim)
        per_factor = product.pairwise_factor_dists(emb, emb, curv=curv)
        mean_l1 = product.pairwise_dist(emb, emb, curv=curv, how="l1")
        single, mat = _best_single_space(ham, n * factor_dim, curv=curv, restarts=restarts, steps=steps,
                                         lr=lr, temperature=temperature, gen=gen)
        best_mats[n] = (ham, mat, mean_l1)
        rows.append({"n": n, "points": 2**n, "product_distortion": distortion(mean_l1, ham).item(),
                     "product_sum_vs_hamming": (per_factor.sum(-1) - ham).abs().max().item(),
                     "product_mean_vs_hamming_over_n": (mean_l1 - ham / n).abs().max().item(),
                     "single_dim": n * factor_dim, "single_distortion": single,
                     "euclidean_cube_distortion": math.sqrt(n)})
    headline = {"product_max_distortion": max(r["product_distortion"] for r in rows),
                "single_min_distortion": min(r["single_distortion"] for r in rows),
                "product_max_sum_error": max(r["product_sum_vs_hamming"] for r in rows)}
    params = dict(ns=list(ns), curv=curv, factor_dim=factor_dim, restarts=restarts, steps=steps, lr=lr,
                  temperature=temperature, seed=seed)
    return {"headline": headline, "rows": rows, "params": params}, _lattice_figure(rows, best_mats)


def _lattice_figure(rows, best_mats):
    plotting.set_style()
    fig, (bar, sc) = plotting.disk_axes(2, size=3.6)
    ns = [r["n"] for r in rows]
    w = 0.38
    bar.bar(np.arange(len(ns)) - w / 2, [r["product_distortion"] for r in rows], w,
            label="l1 product", color=COLORS["image"])
    bar.bar(np.arange(len(ns)) + w / 2, [r["single_distortion"] for r in rows], w,
            label="best single $H^m$", color=COLORS["text"])
    bar.plot(np.arange(len(ns)) + w / 2, [r["euclidean_cube_distortion"] for r in rows], "_k", ms=18,
             label=r"Euclidean optimum $\sqrt{n}$")
    bar.set(xticks=np.arange(len(ns)), xticklabels=[f"n={n}" for n in ns], ylabel="distortion", ylim=(0, None))
    bar.legend(fontsize=7, loc="lower right")
    ham, mat, mean_l1 = best_mats[max(best_mats)]
    off = ~torch.eye(ham.shape[0], dtype=torch.bool)
    jitter = 0.08 * (torch.rand(int(off.sum()), generator=torch.Generator().manual_seed(0), dtype=F64) - 0.5)
    scale = (ham[off] / mat[off]).mean()
    sc.plot(ham[off] + jitter, scale * mat[off], ".", ms=3, color=COLORS["text"], label="best single $H^m$ (rescaled)")
    sc.plot(ham[off], mean_l1[off] * max(best_mats), "o", mfc="none", color=COLORS["image"], label="l1 product (x n)")
    sc.set(xlabel="Hamming distance", ylabel="embedded distance", title=f"n={max(best_mats)}")
    sc.legend(fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- all together
CHECKS = {
    "atmg_prop1": atmg_prop1, "atmg_prop2": atmg_prop2, "cone_collapse": cone_collapse,
    "meru_overflow": meru_overflow, "phyclip_boolean_lattice": phyclip_boolean_lattice,
}

#: Smaller settings for tests and quick runs: same claims, a fraction of the time.
QUICK = {
    "atmg_prop1": dict(ns=(2, 5), radii=(0.5, 2.0), norms=(0.3, 3.0), steps=150),
    "atmg_prop2": dict(d_maxs=(1.0, 3.0), norms=(1.0,), n_samples=40_000),
    "cone_collapse": dict(n_children=1000),
    "meru_overflow": dict(n=64),
    "phyclip_boolean_lattice": dict(ns=(2, 3), restarts=3, steps=300),
}


def run_all(quick: bool = False, seed: int = 0) -> dict:
    """Run every check; returns ``{name: (numbers, fig)}`` (``QUICK`` settings if ``quick``)."""
    return {name: fn(**(QUICK[name] if quick else {}), seed=seed) for name, fn in CHECKS.items()}


def jsonable(obj):
    """``obj`` with non-finite floats as strings ("inf", "nan") and numpy/torch scalars as
    Python numbers, so ``json.dump`` writes strict JSON."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (torch.Tensor, np.generic)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj
