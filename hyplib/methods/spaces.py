"""The three embedding spaces a method can live in, as small objects the model and the
evaluators ask.

Geometry is known here and nowhere else. Each space says how many learnable scalars it needs
(``alpha_shape``, ``curv_shape``; None when it has none), how tangent features are lifted onto
it, and, for evaluation, its factor count ``k`` and factor dimension ``d``, its distances
(to the root, pairwise), its tangent map at the root, its entailment cones and its geodesics
to the root. Callers never branch on ``method.geometry``; they ask ``method.space``.

Conventions: curvature is ``-c`` with ``c > 0``; a Lorentz point stores its space part only,
(N, D); a product point stores its ``k`` factors flat, (N, k*d), factor ``i`` in columns
``i*d:(i+1)*d``, with a scalar or (k,) curvature; euclidean points are unit vectors (N, D).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hyplib import lorentz, product

__all__ = ["Space", "Euclidean", "Lorentz", "Product", "make_space", "SPACES", "method_space"]


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
    #: Number of hyperbolic factors a point is made of (1 unless a product).
    k: int = 1
    #: Dimension of one factor (None when the space does not fix it: lorentz, euclidean).
    d: int | None = None
    #: Whether points have entailment cones and geodesics to the root (hyperbolic spaces).
    hyperbolic: bool = False
    #: Whether a point is a tuple of factors with their own radii (``factor_radii``).
    factored: bool = False
    #: Scores other than the method's own that :func:`hyplib.evaluation._common.similarity_fn`
    #: can offer for this space.
    extra_scores: tuple = ()

    @classmethod
    def from_config(cls, cfg: dict) -> Space:
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

    def tangent(self, x: Tensor, *, curv) -> Tensor:
        """(N, D) embeddings -> (N, D) tangent vectors at the root (``logmap0``)."""
        raise NotImplementedError

    def pairwise_dist(self, x: Tensor, y: Tensor, *, curv) -> Tensor:
        """(N, D) x (M, D) -> (N, M) geodesic distances."""
        raise NotImplementedError(f"the {self.name} space has no pairwise distance here")

    def cone_angles(self, parent: Tensor, child: Tensor, *, curv, min_radius: float = 0.1):
        """Row-aligned (P, D) pairs -> ``(phi, omega)``: the exterior angle at the parent towards
        the child and the parent's half-aperture, each (P,) (product: (P, k))."""
        raise ValueError(f"the {self.name} space has no entailment cones")

    def cone_mask(self, texts: Tensor, images: Tensor, *, curv, min_radius: float = 0.1) -> Tensor:
        """(N_img, M) bool: text ``j``'s entailment cone contains image ``i``."""
        raise ValueError(f"the {self.name} space has no entailment cones")

    def path_to_root(self, x: Tensor, *, curv, steps: int) -> Tensor:
        """(N, D) -> (N, steps, D) points on the geodesic from each point to the root."""
        raise ValueError(f"the {self.name} space has no geodesics to a root")

    def check_points(self, x: Tensor, curv: Tensor, name: str, owner: str) -> None:
        """Raise ValueError when (N, D) ``x`` cannot be points of this space (``owner``: the
        method's name, for the message)."""


class Euclidean(Space):
    """CLIP: L2-normalised features on the unit sphere; no alpha, no curvature."""

    name = "euclidean"

    def lift(self, features: Tensor, *, alpha=None, curv=None) -> Tensor:
        """.. math:: x = v / |v|"""
        return F.normalize(_float(features), dim=-1)

    def distance_to_root(self, x: Tensor, *, curv=None) -> Tensor:
        """Euclidean norm |x| (the pre-normalisation norm is not available)."""
        return _float(x).norm(dim=-1)

    def tangent(self, x: Tensor, *, curv=None) -> Tensor:
        """Identity: the sphere's points are their own features."""
        return x

    def check_points(self, x: Tensor, curv: Tensor, name: str, owner: str) -> None:
        """Rows must be unit vectors."""
        norms = x.double().norm(dim=-1)
        # 1e-3: unit vectors stored in float16 are off by ~1e-3 at most.
        if not bool(torch.all((norms - 1).abs() < 1e-3)):
            raise ValueError(
                f"{name} are not unit vectors (norms in [{norms.min():.3g}, {norms.max():.3g}]) but method "
                f"{owner!r} is euclidean and expects L2-normalised embeddings; hyperbolic embeddings passed?")


class Lorentz(Space):
    """One hyperboloid of curvature ``-c``; ``x = expmap0(alpha v)``."""

    name = "lorentz"
    alpha_shape = ()
    curv_shape = ()

    def lift(self, features: Tensor, *, alpha, curv) -> Tensor:
        """.. math:: x = \\exp_O(\\alpha v)"""
        return lorentz.expmap0(_float(features) * alpha, curv=curv)

    hyperbolic = True

    def distance_to_root(self, x: Tensor, *, curv) -> Tensor:
        """.. math:: d(O, x) = \\operatorname{asinh}(\\sqrt{c}|x|)/\\sqrt{c}"""
        return lorentz.dist0(x, curv=curv)

    def tangent(self, x: Tensor, *, curv) -> Tensor:
        """:func:`hyplib.lorentz.logmap0`."""
        return lorentz.logmap0(x, curv=curv)

    def pairwise_dist(self, x: Tensor, y: Tensor, *, curv) -> Tensor:
        """:func:`hyplib.lorentz.pairwise_dist` with the scalar curvature."""
        return lorentz.pairwise_dist(x, y, curv=_scalar(curv))

    def cone_angles(self, parent: Tensor, child: Tensor, *, curv, min_radius: float = 0.1):
        c = _scalar(curv)
        return (lorentz.exterior_angle(parent, child, curv=c),
                lorentz.half_aperture(parent, curv=c, min_radius=min_radius))

    def cone_mask(self, texts: Tensor, images: Tensor, *, curv, min_radius: float = 0.1) -> Tensor:
        """``phi(t_j, x_i) <= omega(t_j)``."""
        c = _scalar(curv)
        phi = lorentz.pairwise_exterior_angle(texts, images, curv=c)  # (M, N)
        return (phi <= lorentz.half_aperture(texts, curv=c, min_radius=min_radius).unsqueeze(1)).T

    def path_to_root(self, x: Tensor, *, curv, steps: int) -> Tensor:
        return lorentz.geodesic(x, torch.zeros_like(x), curv=_scalar(curv), steps=steps)

    def check_points(self, x: Tensor, curv: Tensor, name: str, owner: str) -> None:
        """One (scalar) curvature; space coordinates, not full ones (time first)."""
        if curv.numel() != 1:
            raise ValueError(f"method {owner!r} is lorentz (one curvature) but curv has shape "
                             f"{tuple(curv.shape)}; product embeddings passed?")
        if x.shape[1] >= 2 and _looks_full(x, curv):
            raise ValueError(f"{name} look like full hyperboloid coordinates (time first, D={x.shape[1]}); "
                             f"pass space parts only (D-1 columns)")


class Product(Space):
    """``k`` hyperboloids ``H^d`` with per-factor curvature and per-factor alphas (PHyCLIP).

    Args:
        k: number of factors.
        d: dimension of each factor (None: not fixed, any width ``k*d`` is accepted).
        how: combination of per-factor distances ("l1", "l2", "linf"), see
            :func:`hyplib.product.combine`.
    """

    name = "product"
    hyperbolic = True
    factored = True
    extra_scores = ("product_inner", "product_dist")

    def __init__(self, k: int, d: int, how: str = "l1"):
        if how not in product.COMBINATIONS:
            raise ValueError(f"how={how!r} is not a known combination; choose one of {product.COMBINATIONS}")
        self.k, self.d, self.how = int(k), None if d is None else int(d), how
        self.alpha_shape = (self.k,)
        self.curv_shape = (self.k,)

    @classmethod
    def from_config(cls, cfg: dict) -> Product:
        """Uses ``cfg["k"]``, ``cfg["d"]`` and ``cfg["how"]`` (default "l1")."""
        return cls(cfg["k"], cfg["d"], cfg.get("how", "l1"))

    def alpha_init(self, embed_dim: int) -> float:
        """Per-factor alphas start at ``d**-0.5`` (each factor sees a d-dim slice)."""
        return (self.d or embed_dim // self.k) ** -0.5

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

    def factor_curv(self, curv, like: Tensor) -> Tensor:
        """Curvature as (k,) on ``like``'s device (:func:`hyplib.product.factor_curv`)."""
        return product.factor_curv(curv, self.k, like)

    def factor_radii(self, x: Tensor, *, curv) -> Tensor:
        """(N, k*d) -> (N, k) per-factor distance to the root."""
        xs = product.split(x, self.k)
        return product.dist0(xs, curv=self.factor_curv(curv, xs))

    def tangent(self, x: Tensor, *, curv) -> Tensor:
        """Per-factor ``logmap0``, flat (N, k*d)."""
        return product.merge(product.logmap0(product.split(x, self.k), curv=self.factor_curv(curv, x)))

    def pairwise_dist(self, x: Tensor, y: Tensor, *, curv) -> Tensor:
        """Per-factor distances combined with ``how`` (:func:`hyplib.product.pairwise_dist`)."""
        c = self.factor_curv(curv, x)
        return product.pairwise_dist(product.split(x, self.k), product.split(y, self.k), curv=c, how=self.how)

    def pairwise_inner_sum(self, x: Tensor, y: Tensor, *, curv) -> Tensor:
        """(N, k*d) x (M, k*d) -> (N, M) sum over factors of the Lorentz inner products."""
        x = _float(x)
        y = y.to(x.dtype)
        c = self.factor_curv(curv, x).to(x.dtype)
        return product.pairwise_inner_sum(product.split(x, self.k), product.split(y, self.k), curv=c)

    def cone_angles(self, parent: Tensor, child: Tensor, *, curv, min_radius: float = 0.1):
        """Per factor: ``phi`` and ``omega`` each (P, k)."""
        c = self.factor_curv(curv, parent)
        parent, child = product.split(parent, self.k), product.split(child, self.k)
        return (lorentz.exterior_angle(parent, child, curv=c),
                lorentz.half_aperture(parent, curv=c, min_radius=min_radius))

    def cone_mask(self, texts: Tensor, images: Tensor, *, curv, min_radius: float = 0.1) -> Tensor:
        """Mean over factors of ``phi_i / omega_i <= 1``."""
        c = self.factor_curv(curv, texts)
        tf, xf = product.split(texts, self.k).transpose(0, 1), product.split(images, self.k).transpose(0, 1)
        phi = lorentz.pairwise_exterior_angle(tf, xf, curv=c)  # (k, M, N)
        omega = lorentz.half_aperture(tf, curv=c.unsqueeze(-1), min_radius=min_radius)  # (k, M)
        return ((phi / omega.unsqueeze(-1)).mean(0) <= 1.0).T

    def path_to_root(self, x: Tensor, *, curv, steps: int) -> Tensor:
        """Per-factor geodesics, flat: (N, steps, k*d)."""
        xs = product.split(x, self.k)
        path = lorentz.geodesic(xs, torch.zeros_like(xs), curv=self.factor_curv(curv, xs), steps=steps)
        return product.merge(path.transpose(1, 2))  # (N, k, steps, d) -> (N, steps, k*d)

    def check_points(self, x: Tensor, curv: Tensor, name: str, owner: str) -> None:
        """Width ``k*d`` (``D`` divisible by ``k``); a scalar or (k,) curvature."""
        k, d = self.k, self.d
        if x.shape[1] % k != 0:
            raise ValueError(f"{name} have last dim {x.shape[1]}, not divisible by the product method's "
                             f"k={k} factors")
        if d is not None and x.shape[1] != k * d:
            raise ValueError(f"{name} have last dim {x.shape[1]} but the product method has k*d = {k}*{d} = {k * d}")
        if curv.numel() not in (1, k):
            raise ValueError(f"product method with k={k} needs a scalar or ({k},) curvature, got shape "
                             f"{tuple(curv.shape)}")


def _scalar(curv):
    """A Lorentz space's curvature as a 0-d tensor (a (1,) tensor from a mapping is reshaped)."""
    return curv.reshape(()) if isinstance(curv, Tensor) else curv


def _looks_full(x: Tensor, curv: Tensor) -> bool:
    xd = x.double()
    t, rest = xd[:, 0], xd[:, 1:]
    expected = torch.sqrt(1.0 / curv.double().reshape(()) + (rest * rest).sum(-1))
    # Relative tolerance 1e-4: float32 round-off of genuine full coordinates stays far below it.
    return bool(torch.all(t > 0)) and bool(torch.all((t - expected).abs() <= 1e-4 * expected))


SPACES = {"euclidean": Euclidean, "lorentz": Lorentz, "product": Product}


def make_space(geometry: str, cfg: dict) -> Space:
    """Instantiate the space named ``geometry`` from a method's resolved defaults."""
    if geometry not in SPACES:
        raise ValueError(f"unknown geometry {geometry!r}; valid: {sorted(SPACES)}")
    return SPACES[geometry].from_config(cfg)


def method_space(method) -> Space:
    """The space of ``method``: its ``space`` attribute, else one built from its ``geometry``
    and ``defaults`` (a method-like object without a space, e.g. a released checkpoint's)."""
    space = getattr(method, "space", None)
    if isinstance(space, Space):
        return space
    geometry = getattr(method, "geometry", None)
    if geometry == "product" and "k" not in getattr(method, "defaults", {}):
        raise ValueError(f"product method {getattr(method, 'name', method)!r} does not state its factor count k")
    if geometry == "product":
        cfg = method.defaults
        return Product(cfg["k"], cfg.get("d"), cfg.get("how", "l1"))
    return make_space(geometry, getattr(method, "defaults", {}))
