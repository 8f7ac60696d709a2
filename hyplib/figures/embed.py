"""Quantities figures compute from embeddings, and from a trained model at evaluation time
(the figure modules' ``eval_arrays``; small subsets, CPU, no gradients).

* :func:`sphere_root_distance`: CLIP's stand-in for a distance to the root (unit vectors have
  none): the angle to the normalised centroid of all embeddings, MERU's ``[ROOT]`` for CLIP.
* :func:`h2_projection`: Lorentz embeddings -> points of ``H^2`` for a 2-D picture (distance to
  the root kept exactly, direction from a fixed 2-D PCA of the tangent vectors).
* :func:`prompt_factor_norms`: PHyCLIP per-factor radii of single-concept prompts (zero-shot
  class prompts) and composed captions (composition positives).
* :func:`pep_pair_weights`: ARGENT's adaptive weight ``h(d)`` over the PEP benchmark's pairs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from hyplib import lorentz, product
from hyplib.data.benchmarks import load_benchmark
from hyplib.evaluation import _common as C

__all__ = ["sphere_root_distance", "h2_projection", "prompt_factor_norms", "pep_pair_weights"]


def sphere_root_distance(image, text) -> tuple[np.ndarray, np.ndarray]:
    """Angle (radians) of unit vectors to the normalised mean of all of them (both modalities).

    CLIP's embeddings all have norm 1, so ``|x|`` cannot separate generic from specific; the
    centroid plays the root, as MERU does for CLIP's traversals.
    """
    x_i, x_t = (np.asarray(v, dtype=np.float64) for v in (image, text))
    mu = np.concatenate([x_i, x_t]).mean(0)
    mu = mu / max(np.linalg.norm(mu), 1e-12)  # floor: a zero mean has no direction

    def ang(x):
        u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return np.arccos(np.clip(u @ mu, -1.0, 1.0))  # clip: round-off beyond +-1

    return ang(x_i), ang(x_t)


def h2_projection(image, text, *, curv: float) -> tuple[np.ndarray, np.ndarray]:
    """Lorentz embeddings (N, D), (M, D) -> 2-D Lorentz space parts (N, 2), (M, 2) in ``H^2``.

    Tangent vectors ``v = logmap0(x)`` are projected on the top-2 principal axes of their
    pooled covariance (fitted once per call, so both modalities share the plane) for the
    *direction*, and rescaled to ``|v|`` so every point keeps its exact distance to the root;
    then ``expmap0`` in ``H^2``. Angles between points are approximate, radii exact.
    """
    x_i = torch.as_tensor(np.asarray(image), dtype=torch.float64)
    x_t = torch.as_tensor(np.asarray(text), dtype=torch.float64)
    v = lorentz.logmap0(torch.cat([x_i, x_t]), curv=curv)
    centred = v - v.mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    u = v @ vh[:2].T
    # Floor the planar norm: a vector orthogonal to the plane keeps its radius on the x-axis.
    scale = v.norm(dim=1, keepdim=True) / torch.clamp(u.norm(dim=1, keepdim=True), min=1e-12)
    x2 = lorentz.expmap0(u * scale, curv=curv).numpy()
    return x2[: len(x_i)], x2[len(x_i):]


def _factor_radii(x, method, curv) -> np.ndarray:
    k = C.product_k(method)
    xs = product.split(C.as_float(x), k)
    return product.dist0(xs, curv=product.factor_curv(curv, k, xs)).double().numpy()


def prompt_factor_norms(model, method, bench_dir, *, max_items: int = 200) -> dict[str, np.ndarray]:
    """PHyCLIP per-factor radii ``{"single": (N, k), "composed": (M, k)}``.

    Single: each zero-shot class name in the first template (one concept per prompt).
    Composed: the composition benchmark's true captions (several objects/attributes).
    """
    curv = C.resolve_curv(model)
    out = {}
    zs = load_benchmark(bench_dir, "zeroshot")
    template = zs["templates"][0]
    prompts = [template.format(c) for c in zs["classnames"][:max_items]]
    out["single"] = _factor_radii(C.encode_texts(model, prompts), method, curv)
    comp = load_benchmark(bench_dir, "composition")
    out["composed"] = _factor_radii(C.encode_texts(model, list(comp["positives"][:max_items])), method, curv)
    return out


def pep_pair_weights(model, method, bench_dir) -> pd.DataFrame:
    """ARGENT's detached weight ``h(d(parent, child))`` on every PEP pair.

    Columns: ``pair_type, label, kind`` (``inter``: image-text, ``intra``: same modality),
    ``distance`` (chordal, exact 0 for identical points), ``weight`` (the method's ``weight_fn``
    with ``sigma_inter``/``sigma_intra``).
    """
    from hyplib.methods.argent import WEIGHT_FUNCTIONS, chordal_dist

    b = load_benchmark(bench_dir, "pep")
    curv = C.resolve_curv(model)
    image = C.encode_images(model, b["images"], batch_size=64)
    text = C.encode_texts(model, list(b["texts"]), batch_size=128)
    pairs = np.asarray(b["pairs"], dtype=np.int64)

    def gather(kind, idx):
        out = torch.empty(len(kind), image.shape[1])
        m = kind == 0
        out[torch.from_numpy(m)] = image[torch.from_numpy(idx[m])]
        out[torch.from_numpy(~m)] = text[torch.from_numpy(idx[~m])]
        return out

    parent, child = gather(pairs[:, 0], pairs[:, 1]), gather(pairs[:, 2], pairs[:, 3])
    d = chordal_dist(parent.double(), child.double(), curv=curv.double()).numpy()
    inter = pairs[:, 0] != pairs[:, 2]
    cfg = method.defaults
    fn = WEIGHT_FUNCTIONS[cfg.get("weight_fn", "exp")]
    sigma = np.where(inter, cfg.get("sigma_inter", 1.0), cfg.get("sigma_intra", 0.5))
    w = fn(torch.as_tensor(d), torch.as_tensor(sigma)).numpy()
    types = list(b.get("pair_types") or ["all"] * len(pairs))
    return pd.DataFrame({"pair_type": types, "label": np.asarray(b["labels"]).astype(int),
                         "kind": np.where(inter, "inter", "intra"), "distance": d, "weight": w})
