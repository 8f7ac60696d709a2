"""Worst float32 error of the exterior angle on a grid, against float64 on the same inputs.

Grid (issue 17): ``|x|``, ``|y|`` in logspace(-4, 2, 13), ``c`` in logspace(-2, 2, 5), 64 random
direction pairs in 8-D per cell (seed 0), inputs rounded to float32 first. Prints, for
:func:`hyplib.lorentz.exterior_angle`, the pairwise form and the both-ends form, the worst
``|phi_float32 - phi_float64|`` and where it occurs; and the same for the arccos form MERU and
the papers' code evaluate (``acos((y_t + c<x,y> x_t) / (|x| sqrt((c<x,y>)^2 - 1)))``, written
out here), against the atan2 form's float64 value.

    python benchmarks/angle_accuracy.py
"""
from __future__ import annotations

import itertools

import torch

from hyplib import lorentz


def arccos_form(x, y, c):
    """The exterior angle as the papers' code writes it (without their ``+ eps``)."""
    xt, yt = lorentz.time_component(x, curv=c), lorentz.time_component(y, curv=c)
    cp = c * lorentz.inner(x, y, curv=c)
    eps = lorentz.eps_for(x.dtype)
    ratio = (yt + cp * xt) / (x.norm(dim=-1) * torch.sqrt(torch.clamp(cp * cp - 1.0, min=eps)))
    return torch.acos(ratio.clamp(-1.0 + eps, 1.0 - eps))


FORMS = {
    "exterior_angle": lambda x, y, c: lorentz.exterior_angle(x, y, curv=c),
    "pairwise_exterior_angle": lambda x, y, c: lorentz.pairwise_exterior_angle(x[:, None], y[:, None], curv=c)[:, 0, 0],
    "pairwise_exterior_angles (at y)": lambda x, y, c: lorentz.pairwise_exterior_angles(
        y[:, None], x[:, None], curv=c)[1][:, 0, 0],
    "arccos form (papers' code)": arccos_form,
}


def main() -> None:
    g = torch.Generator().manual_seed(0)
    norms = torch.logspace(-4, 2, 13, dtype=torch.float64)
    worst = {name: (0.0, None) for name in FORMS}
    for c in torch.logspace(-2, 2, 5, dtype=torch.float64).tolist():
        for a, b in itertools.product(norms.tolist(), norms.tolist()):
            dx, dy = (torch.randn(64, 8, generator=g, dtype=torch.float64) for _ in range(2))
            x = (a * dx / dx.norm(dim=-1, keepdim=True)).float()
            y = (b * dy / dy.norm(dim=-1, keepdim=True)).float()
            exact = lorentz.exterior_angle(x.double(), y.double(), curv=c)
            for name, fn in FORMS.items():
                err = (fn(x, y, c).double() - exact).abs().max().item()
                if err > worst[name][0]:
                    worst[name] = (err, (c, a, b))
    print("worst float32 error (rad) over |x|, |y| in 1e-4..1e2, c in 1e-2..1e2")
    for name, (err, (c, a, b)) in worst.items():
        print(f"{name:<34}{err:>10.2e}   at c={c:g} |x|={a:.3g} |y|={b:.3g}")


if __name__ == "__main__":
    main()
