"""The three embedding spaces a method can live in, as small objects the model asks.

Each space says how many learnable scalars it needs (``alpha_shape``, ``curv_shape``; None
when it has none), how tangent features are lifted onto it and how far a point is from the
origin. The model builds its parameters from these, so it never branches on a method's name.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hyplib import lorentz, product

__all__ = ["Space", "Euclidean", "Lorentz", "Product", "make_space", "SPACES"]


def _float(t: Tensor) -> Tensor:
    # Towers may run in bf16/fp16 under autocast; lifts and objectives run in float32.
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class Space:
    """Interface of an embedding space."""

    name: str = ""
    #: Shape of the per-modality scale alpha, or None when the space has none.
    alpha_shape: tuple | None = None
    #: Shape of the curvature, or None when the space has none.
    curv_shape: tuple | None = None

    @classmethod
    def from_config(cls, cfg: dict) -> "Space":
        """Build the space from a method's resolved defaults."""
        return cls()

    def alpha_init(self, embed_dim: int) -> float:
        """Default initial alpha for features of width ``embed_dim``."""
        return embed_dim ** -0.5

    def lift(self, features: Tensor, *, alpha, curv) -> Tensor:
        """(N, D) tangent features -> (N, D) embeddings."""
        raise NotImplementedError

    def distance_to_root(self, x: Tensor, *, curv) -> Tensor:
        """(N, D) embeddings -> (N,) distance from the origin."""
        raise NotImplementedError


class Euclidean(Space):
    """CLIP: L2-normalised features on the unit sphere; no alpha, no curvature."""

    name = "euclidean"

    def lift(self, features: Tensor, *, alpha=None, curv=None) -> Tensor:
        """.. math:: x = v / |v|"""
        return F.normalize(_float(features), dim=-1)

    def distance_to_root(self, x: Tensor, *, curv=None) -> Tensor:
        """Euclidean norm |x| (the pre-normalisation norm is not available)."""
        return _float(x).norm(dim=-1)


class Lorentz(Space):
    """One hyperboloid of curvature ``-c``; ``x = expmap0(alpha v)``."""

    name = "lorentz"
    alpha_shape = ()
    curv_shape = ()

    def lift(self, features: Tensor, *, alpha, curv) -> Tensor:
        """.. math:: x = \\exp_O(\\alpha v)"""
        return lorentz.expmap0(_float(features) * alpha, curv=curv)

    def distance_to_root(self, x: Tensor, *, curv) -> Tensor:
        """.. math:: d(O, x) = \\operatorname{asinh}(\\sqrt{c}|x|)/\\sqrt{c}"""
        return lorentz.dist0(x, curv=curv)


class Product(Space):
    """``k`` hyperboloids ``H^d`` with per-factor curvature and per-factor alphas (PHyCLIP).

    Args:
        k: number of factors.
        d: dimension of each factor.
        how: combination of per-factor distances ("l1", "l2", "linf"), see
            :func:`hyplib.product.combine`.
    """

    name = "product"

    def __init__(self, k: int, d: int, how: str = "l1"):
        if how not in product.COMBINATIONS:
            raise ValueError(f"how={how!r} is not a known combination; choose one of {product.COMBINATIONS}")
        self.k, self.d, self.how = int(k), int(d), how
        self.alpha_shape = (self.k,)
        self.curv_shape = (self.k,)

    @classmethod
    def from_config(cls, cfg: dict) -> "Product":
        """Uses ``cfg["k"]``, ``cfg["d"]`` and ``cfg["how"]`` (default "l1")."""
        return cls(cfg["k"], cfg["d"], cfg.get("how", "l1"))

    def alpha_init(self, embed_dim: int) -> float:
        """Per-factor alphas start at ``d**-0.5`` (each factor sees a d-dim slice)."""
        return self.d ** -0.5

    def lift(self, features: Tensor, *, alpha, curv) -> Tensor:
        """(N, k*d) -> (N, k*d): per factor ``x_i = expmap0_{c_i}(alpha_i v_i)``."""
        v = product.split(_float(features), self.k)
        alpha = torch.as_tensor(alpha, dtype=v.dtype, device=v.device)
        if alpha.dim() == 1:
            alpha = alpha.unsqueeze(-1)  # (k,) -> (k, 1): one scale per factor
        return product.merge(product.expmap0(v * alpha, curv=curv))

    def distance_to_root(self, x: Tensor, *, curv) -> Tensor:
        """Per-factor root distances combined with ``how`` (the training metric)."""
        return product.combine(product.dist0(product.split(x, self.k), curv=curv), self.how)


SPACES = {"euclidean": Euclidean, "lorentz": Lorentz, "product": Product}


def make_space(geometry: str, cfg: dict) -> Space:
    """Instantiate the space named ``geometry`` from a method's resolved defaults."""
    if geometry not in SPACES:
        raise ValueError(f"unknown geometry {geometry!r}; valid: {sorted(SPACES)}")
    return SPACES[geometry].from_config(cfg)
