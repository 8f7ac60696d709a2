"""Adversarial numerics: every registered method's loss, logged terms, gradients and similarity
stay finite for inputs of norm 0 to 1e4, coincident points, curvature 1e-2 to 1e2, and
float32, bfloat16 or float16 inputs.

Inputs are rounded to the input dtype. The loss, its logged terms and the similarity are
evaluated on the half-precision tensors themselves; gradients are taken in float32, with
respect to float32 leaves holding the rounded values (under AMP the lift hands the objectives
float32 points; a float16 *gradient* may legitimately exceed float16's range, which is
GradScaler's business, not the objective's). Inputs enter two ways:
``points``, used as the embeddings themselves (space coordinates of norm 0..1e4; not for
CLIP, whose embeddings are unit vectors by contract), and ``features``, lifted by the
method's own ``lift`` (alpha 1), which reaches every norm the lift's clamp allows. Curvature
and logit scale are float32 leaves (the model keeps its scalars in float32), the scale at its
clamp, 100.
"""
from __future__ import annotations

import pytest
import torch

from hyplib import methods, product
from hyplib.methods import Embeddings

B, DIM, K = 10, 8, 2  # PHyCLIP: K factors of DIM // K
NORMS = torch.tensor([0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4])
CURVS = [1e-2, 1.0, 1e2]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def _directions(g: torch.Generator, n: int = B) -> torch.Tensor:
    d = torch.randn(n, DIM, generator=g)
    return d / d.norm(dim=-1, keepdim=True)


def _case(name: str) -> list[torch.Tensor]:
    """image, text, image_box, text_box (B, DIM) float32 for one adversarial case."""
    g = torch.Generator().manual_seed(0)
    if name == "zero":
        return [torch.zeros(B, DIM) for _ in range(4)]
    if name in ("coincident", "coincident_huge"):
        point = (1e4 if name == "coincident_huge" else 1.0) * _directions(g, 1).expand(B, DIM)
        return [point.clone() for _ in range(4)]
    if name == "spread":  # every norm from 0 to 1e4 in each role, shuffled between roles
        return [NORMS[torch.randperm(B, generator=g)][:, None] * _directions(g) for _ in range(4)]
    if name == "same_direction":  # each pair on one ray, norms 0..1e4 against each other
        ray = _directions(g)
        return [NORMS[torch.randperm(B, generator=g)][:, None] * ray for _ in range(4)]
    if name == "antipodal_huge":
        ray = 1e4 * _directions(g)
        return [ray, -ray, -ray, ray]
    raise ValueError(name)


CASES = ["zero", "coincident", "coincident_huge", "spread", "same_direction", "antipodal_huge"]


def _configs() -> list[tuple[str, dict]]:
    """Every registered method, each variant, and PHyCLIP's combinations and both distance paths."""
    out = []
    for name in methods.names():
        cls = methods.REGISTRY[name]
        for variant in cls.VARIANTS or [None]:
            out.append((name, {"variant": variant} if variant else {}))
    out = [(n, o) for n, o in out if n != "phyclip"]
    for how in product.COMBINATIONS:
        for fused in (True, False):
            out.append(("phyclip", {"k": K, "d": DIM // K, "how": how, "fused_distance": fused}))
    return out


CONFIGS = _configs()


def _id(config) -> str:
    name, overrides = config
    return name + "".join(f"-{k}={v}" for k, v in overrides.items() if k not in ("k", "d"))


def _embeddings(method, mode: str, inputs: list[torch.Tensor], curv, scale) -> Embeddings:
    if mode == "features":
        inputs = [method.lift(t, alpha=1.0, curv=curv) for t in inputs]
    return Embeddings(inputs[0], inputs[1], curv, scale, inputs[2], inputs[3])


def _non_finite(method, mode: str, case: str, c: float, dtype) -> list[str]:
    """Names of the non-finite loss terms, similarity and leaf gradients for one input."""
    k = method.defaults["k"] if method.geometry == "product" else None
    rounded = [t.to(dtype) for t in _case(case)]
    curv = torch.full((k,) if k else (), c)
    scale = torch.tensor(100.0)
    bad = []
    with torch.no_grad():  # forward on the half-precision tensors themselves
        emb = _embeddings(method, mode, rounded, curv, scale)
        out = method.loss(emb)
        bad += [key for key, v in {"loss": out["loss"], **out["logs"]}.items() if not torch.isfinite(v).all()]
        bad += [] if torch.isfinite(method.similarity(emb.image, emb.text, curv=curv)).all() else ["similarity"]
    names = ("image", "text", "image_box", "text_box", "curv", "logit_scale")
    leaves = [t.float().requires_grad_() for t in rounded] + [curv.requires_grad_(), scale.requires_grad_()]
    out = method.loss(_embeddings(method, mode, leaves[:4], leaves[4], leaves[5]))
    grads = torch.autograd.grad(out["loss"], leaves, allow_unused=True)
    return bad + [f"grad {key}" for key, g in zip(names, grads) if g is not None and not torch.isfinite(g).all()]


@pytest.mark.slow  # ~70 s in all on 2 shared cores (each config 2-8 s)
@pytest.mark.parametrize("config", CONFIGS, ids=[_id(c) for c in CONFIGS])
def test_every_method_finite_on_adversarial_inputs(config):
    name, overrides = config
    method = methods.get(name, **overrides)
    modes = ["features"] + (["points"] if method.geometry != "euclidean" else [])
    bad = [(mode, case, c, str(dtype), term)
           for mode in modes for case in CASES for c in CURVS for dtype in DTYPES
           for term in _non_finite(method, mode, case, c, dtype)]
    assert not bad, f"{_id(config)}: non-finite {bad[:10]} ({len(bad)} in all)"


def test_configs_cover_every_registered_method():
    assert {name for name, _ in CONFIGS} == set(methods.names())
    assert ("atmg", {"variant": "code"}) in CONFIGS
