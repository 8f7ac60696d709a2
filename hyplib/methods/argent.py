"""ARGENT: adaptive hierarchical entailment with a norm regulariser — a **reconstruction**.

Only ARGENT's abstract and figure captions are public: no equations and no code. What they
state: the entailment loss is *adaptive* (it weights each parent-child pair, near-identical
pairs weigh about nothing), it drops the aperture term, it treats intra- and inter-modal pairs
separately, and a norm regulariser keeps parents away from the region ``|x| <= 2K/sqrt(c)``
where the cone's half-aperture saturates to a half-space (the "cone collapse" in which the
plain entailment loss is zero for every child). Everything below that is more specific than
that is **our choice**, each piece a named, swappable function or config key:

* adaptive entailment ``A(p, q) = mean h(d(p, q)) * phi(p, q)`` over HyCoCLIP's four pairs
  (same parents/children and the same 1/2 factor), with per-kind ``sigma`` and weight
  (``sigma_inter``, ``sigma_intra``, ``weight_inter``, ``weight_intra``);
* ``h`` is looked up by name in :data:`WEIGHT_FUNCTIONS` (``weight_fn``; default ``"exp"``:
  ``1 - exp(-d/sigma)``) and is **detached** (a weight, not a path for gradients: through it
  the loss could be lowered by collapsing parent onto child);
* norm regulariser ``mean relu(2K/sqrt(c) + margin - |x|)`` over all parent embeddings
  (texts, box texts, box images), weight ``norm_weight``;
* contrastive part: HyCoCLIP's four terms with logits ``-s d``;
* numbers (``entail_weight=0.2`` as HyCoCLIP's gamma; ``sigma_inter=1``, ``sigma_intra=0.5``,
  ``norm_weight=0.1``, ``norm_margin=0.1``) are ours, not the paper's.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from hyplib import lorentz
from hyplib.methods.base import HYPERBOLIC_DEFAULTS, Embeddings, Method, as_float, log_terms
from hyplib.methods.terms import HIERARCHY_PAIRS, hierarchical_contrastive, hierarchical_entailment, per_pair

__all__ = ["ARGENT", "WEIGHT_FUNCTIONS", "adaptive_weight", "adaptive_entailment", "chordal_dist",
           "norm_regulariser"]


def _exp_weight(d: Tensor, sigma: float | Tensor) -> Tensor:
    """.. math:: h(d) = 1 - e^{-d/\\sigma}"""
    return -torch.expm1(-d / sigma)


def _tanh_weight(d: Tensor, sigma: float | Tensor) -> Tensor:
    """.. math:: h(d) = \\tanh(d/\\sigma)"""
    return torch.tanh(d / sigma)


def _linear_weight(d: Tensor, sigma: float | Tensor) -> Tensor:
    """.. math:: h(d) = \\min(1, d/\\sigma)"""
    # Saturate at 1: far pairs get full weight, never more.
    return torch.clamp(d / sigma, max=1.0)


#: Named weight functions ``h(d, sigma)``: 0 at ``d = 0``, increasing, tending to 1.
WEIGHT_FUNCTIONS: dict[str, Callable[[Tensor, float | Tensor], Tensor]] = {
    "exp": _exp_weight,
    "tanh": _tanh_weight,
    "linear": _linear_weight,
}


def chordal_dist(x: Tensor, y: Tensor, *, curv) -> Tensor:
    """Paired geodesic distance (...,) from the Lorentzian norm of ``X - Y``; exact 0 at ``x = y``.

    .. math:: d = \\frac{2}{\\sqrt c}\\operatorname{asinh}\\Big(\\frac{\\sqrt c}{2}
              \\sqrt{|x - y|^2 - (x_t - y_t)^2}\\Big)

    :func:`hyplib.lorentz.dist` floors ``acosh``'s argument at ``1 + eps``, so it returns about
    ``sqrt(2 eps)/sqrt(c)`` (1e-3 in float32) for identical points; this form does not, which
    is what a weight that must vanish on identical pairs needs. ``x_t - y_t`` is computed as
    ``(|x|^2 - |y|^2) / (x_t + y_t)`` to avoid cancellation (as :func:`hyplib.lorentz.dist`).
    Used without gradients.
    """
    # Half precision would overflow |x - y|^2 for norms beyond ~250 (float16).
    x, y = as_float(x), as_float(y)
    c = torch.as_tensor(curv, dtype=x.dtype, device=x.device)
    diff = x - y
    sq_x, sq_y = torch.linalg.vecdot(x, x), torch.linalg.vecdot(y, y)
    dt = (sq_x - sq_y) / (torch.sqrt(1.0 / c + sq_x) + torch.sqrt(1.0 / c + sq_y))
    # The difference of two hyperboloid points is spacelike; rounding can make it slightly not.
    sq = torch.clamp(torch.linalg.vecdot(diff, diff) - dt * dt, min=0.0)
    return 2.0 * torch.asinh(0.5 * c.sqrt() * sq.sqrt()) / c.sqrt()


def adaptive_weight(parent: Tensor, child: Tensor, *, curv, sigma: float | Tensor, fn: str = "exp") -> Tensor:
    """Detached pair weight ``h(d(p, q))`` (...,): 0 for identical pairs, -> 1 for far ones."""
    with torch.no_grad():
        return WEIGHT_FUNCTIONS[fn](chordal_dist(parent, child, curv=curv), sigma)


def adaptive_entailment(parent: Tensor, child: Tensor, *, curv, sigma: float | Tensor, fn: str = "exp") -> Tensor:
    """Per-pair adaptive entailment (B,): weight times exterior angle, no aperture term.

    .. math:: A(p, q) = h(d(p, q))\\,\\phi(p, q)
    """
    weight = adaptive_weight(parent, child, curv=curv, sigma=sigma, fn=fn)
    return weight * lorentz.exterior_angle(parent, child, curv=curv)


def norm_regulariser(parents: Tensor | Sequence[Tensor], *, curv, min_radius: float = 0.1,
                     margin: float = 0.1) -> Tensor:
    """Keep parents (N, D) outside the norm boundary where the aperture saturates; ().

    ``parents`` is one (N, D) tensor or several (N_k, D), whose rows are averaged together (no
    concatenated copy of the coordinates is made).

    .. math:: R = \\mathrm{mean}\\max(0, 2K/\\sqrt{c} + m - |x|)
    """
    parts = [parents] if isinstance(parents, Tensor) else list(parents)
    # as_float: squared coordinates overflow float16 beyond norms of ~250.
    norms = torch.cat([torch.linalg.vector_norm(as_float(p), dim=-1) for p in parts])
    boundary = 2.0 * min_radius / torch.as_tensor(curv, dtype=norms.dtype, device=norms.device).sqrt()
    return F.relu(boundary + margin - norms).mean()


class ARGENT(Method):
    """Reconstructed ARGENT objective (see the module docstring for what is ours).

    .. math:: L = h_{CC} + \\gamma\\,\\tfrac12\\sum_{(p,q)} w_{kind}\\,\\mathrm{mean}\\,h(d(p,q))\\phi(p,q)
              + \\mu\\,\\mathrm{mean}\\max(0, 2K/\\sqrt{c} + m - |p|)
    """

    name = "argent"
    geometry = "lorentz"
    uses_boxes = True
    PAPER_DEFAULTS = {
        "embed_dim": 512,
        **HYPERBOLIC_DEFAULTS,
        "weight_fn": "exp",
        "sigma_inter": 1.0,
        "sigma_intra": 0.5,
        "weight_inter": 1.0,
        "weight_intra": 1.0,
        "norm_weight": 0.1,
        "norm_margin": 0.1,
        "min_radius": 0.1,
    }

    def _validate(self) -> None:
        super()._validate()
        if self.defaults["weight_fn"] not in WEIGHT_FUNCTIONS:
            raise ValueError(f"argent: unknown weight_fn {self.defaults['weight_fn']!r}; valid: "
                             f"{sorted(WEIGHT_FUNCTIONS)}")
        for key in ("sigma_inter", "sigma_intra"):
            if not self.defaults[key] > 0:
                raise ValueError(f"argent: {key} must be > 0, got {self.defaults[key]}")

    def loss(self, emb: Embeddings) -> dict:
        """Args: ``emb`` with image, text, image_box, text_box (B, D) and ``curv`` ()."""
        self.check(emb)
        cfg, curv = self.defaults, emb.curv
        contrastive = hierarchical_contrastive(emb, lambda a, b, s: lorentz.pairwise_dist(a, b, curv=curv, scale=s))
        sigma = {"inter": cfg["sigma_inter"], "intra": cfg["sigma_intra"]}
        weight = {"inter": cfg["weight_inter"], "intra": cfg["weight_intra"]}
        entail = hierarchical_entailment(emb, lambda p, c: per_pair(weight, p) * adaptive_entailment(
            p, c, curv=curv, sigma=per_pair(sigma, p), fn=cfg["weight_fn"]))
        parent_keys = list(dict.fromkeys(p for p, _, _ in HIERARCHY_PAIRS))
        norm_reg = norm_regulariser([getattr(emb, k) for k in parent_keys], curv=curv,
                                    min_radius=cfg["min_radius"], margin=cfg["norm_margin"])
        loss = (contrastive["contrastive"] + cfg["entail_weight"] * entail["entailment"]
                + cfg["norm_weight"] * norm_reg)
        return {"loss": loss, "logs": log_terms(**contrastive, **entail, norm_regulariser=norm_reg)}

    def similarity(self, image: Tensor, text: Tensor, *, curv) -> Tensor:
        """Lorentz inner product (N_img, N_txt), same ranking as ``-d``."""
        return lorentz.pairwise_inner(image, text, curv=curv)
