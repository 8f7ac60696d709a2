"""Shared plumbing of the evaluators: model-or-embeddings resolution, batched encoding,
geometry checks and the similarity variants.

Every evaluator accepts either a trained model (``hyplib.models`` API: ``image_features``,
``text_features``, ``lift``, ``curv``, ``method``) or a mapping of precomputed embeddings
(torch tensors or numpy arrays, plus ``"curv"``). Embeddings are *lifted* (space
coordinates for lorentz, flat ``(N, k*d)`` factors for product, unit vectors for euclidean).
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from hyplib.methods.spaces import SPACES, Product, method_space

GEOMETRIES = tuple(SPACES)

try:  # the training loader's normalisation, so evaluation sees the same pixels
    from hyplib.data.preprocess import MEAN as CLIP_MEAN
    from hyplib.data.preprocess import STD as CLIP_STD
except ImportError:  # pragma: no cover - hyplib.data without preprocess
    #: CLIP's (OpenAI) per-channel mean and std.
    CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
    CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# --------------------------------------------------------------------------- resolution
def is_model(obj) -> bool:
    """True for a model object (it can lift tangent features), False for embeddings."""
    return hasattr(obj, "lift") and hasattr(obj, "text_features") and hasattr(obj, "image_features")


def resolve_method(source, method=None):
    """The Method to score with: ``method`` if given, else ``source.method`` (a model)."""
    if method is not None:
        return method
    found = getattr(source, "method", None)
    if found is None and isinstance(source, Mapping):
        found = source.get("method")
    if found is None:
        raise ValueError("no method to score with: pass method=<hyplib.methods.Method> "
                         "or a model that has a .method attribute")
    if getattr(found, "geometry", None) not in GEOMETRIES:
        raise ValueError(f"method geometry must be one of {GEOMETRIES}, got "
                         f"{getattr(found, 'geometry', None)!r}")
    return found


def resolve_curv(source, curv=None) -> Tensor:
    """Curvature as a float32 CPU tensor: ``curv`` if given, else the model's or the mapping's."""
    if curv is None:
        if is_model(source):
            curv = source.curv
        elif isinstance(source, Mapping) and "curv" in source:
            curv = source["curv"]
        else:
            raise ValueError("no curvature: pass curv=... or include 'curv' in the embeddings")
    return torch.as_tensor(np.asarray(curv.detach().cpu() if isinstance(curv, Tensor) else curv),
                           dtype=torch.float32)


def as_float(x, name: str = "x") -> Tensor:
    """numpy/torch array -> floating CPU tensor (half precision upcast to float32)."""
    t = torch.as_tensor(x.detach().cpu() if isinstance(x, Tensor) else np.asarray(x))
    if not torch.is_floating_point(t):
        raise ValueError(f"{name} must be floating point embeddings, got dtype {t.dtype}")
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def need(mapping: Mapping, keys: Sequence[str], what: str) -> None:
    """Raise ValueError listing the keys of ``mapping`` that ``what`` needs but lacks."""
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{what} lacks key(s) {missing}; it has {sorted(mapping)}")


# --------------------------------------------------------------------------- geometry checks
def space(method):
    """The method's :class:`hyplib.methods.spaces.Space`: the one place geometry is known."""
    return method_space(method)


def product_k(method) -> int:
    """Number of factors of a product method (``space(method).k``)."""
    return space(method).k


def check_embeddings(x: Tensor, method, curv: Tensor, name: str = "embeddings") -> None:
    """Raise ValueError when ``x`` (N, D) cannot be embeddings of ``method``'s geometry.

    Checks: 2-D, then the space's own checks (:meth:`hyplib.methods.spaces.Space.check_points`):
    euclidean rows are unit vectors (lorentz/product points are not, except by accident);
    lorentz takes a scalar curvature and space coordinates (rows that satisfy the hyperboloid
    equation with the first column as time part are full coordinates: refused); product needs
    ``D = k*d`` and a scalar or (k,) curvature.
    """
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        return
    space(method).check_points(x, curv, name, getattr(method, "name", str(method)))


def check_pair(image: Tensor, text: Tensor, method, curv: Tensor) -> None:
    """Check both modalities and that they share their last dimension."""
    if image.dim() == 2 and text.dim() == 2 and image.shape[1] != text.shape[1]:
        raise ValueError(f"image and text embeddings differ in last dim: {image.shape[1]} vs {text.shape[1]}")
    check_embeddings(image, method, curv, "image embeddings")
    check_embeddings(text, method, curv, "text embeddings")


# --------------------------------------------------------------------------- similarity
SCORES = ("method", "product_inner", "product_dist")


def similarity_fn(method, score: str = "method"):
    """Callable ``(image (Ni,D), text (Nt,D), curv) -> (Ni, Nt)``, higher = better match.

    ``"method"``: ``method.similarity`` (the paper's training/scoring rule). For product
    methods (the space lists them in ``extra_scores``) two alternatives: ``"product_inner"`` is
    the sum over factors of the Lorentz inner products (PHyCLIP's released zero-shot/retrieval
    scoring), ``"product_dist"`` is minus the combined product distance (its training metric).

    The sum of per-factor inner products is computed as two matmuls,
    ``sum_i <x_i, y_i>_L = x . y - sum_i x_t,i y_t,i`` (no (Ni, Nt, k) intermediate); a
    method whose own score is ``"inner_sum"`` is scored this way (tests check it equals
    ``method.similarity``). The returned callable has an attribute ``width``: how many floats
    per score entry its intermediates take (the space's ``k`` for a product distance), so
    callers can size their blocks.
    """
    if score not in SCORES:
        raise ValueError(f"score={score!r} unknown; choose one of {SCORES}")
    sp = space(method)
    if score != "method" and score not in sp.extra_scores:
        raise ValueError(f"score={score!r} needs a product method, got geometry {method.geometry!r}")
    if score == "product_inner" or (score == "method" and "product_inner" in sp.extra_scores
                                    and method.defaults.get("score") == "inner_sum"):
        def fn(image, text, curv):
            return sp.pairwise_inner_sum(image, text, curv=curv)
        fn.width = 1
        return fn
    if score == "product_dist":
        def fn(image, text, curv):
            return -sp.pairwise_dist(image, text, curv=curv)
        fn.width = sp.k
        return fn

    def fn(image, text, curv):
        return method.similarity(image, text, curv=curv)
    fn.width = sp.k
    return fn


def product_inner_sum(image: Tensor, text: Tensor, curv, k: int) -> Tensor:
    """Flat (Ni, k*d) x (Nt, k*d) -> (Ni, Nt): :func:`hyplib.product.pairwise_inner_sum`."""
    return Product(k, None).pairwise_inner_sum(image, text, curv=curv)


def paired_similarity(sim, image: Tensor, text: Tensor, curv, block: int = 512) -> Tensor:
    """Scores of row-aligned pairs: ``sim(image[i], text[i])`` for i in range(N) -> (N,).

    Blocks of ``block`` rows; the (block, block) matrix's diagonal is kept.
    """
    if image.shape[0] != text.shape[0]:
        raise ValueError(f"paired scoring needs as many texts as images, got {image.shape[0]} and {text.shape[0]}")
    # Shrink the block for wide similarities so the (block, block, width) temporaries stay small.
    block = max(1, min(block, int((block * block / getattr(sim, "width", 1)) ** 0.5)))
    out = []
    for s in range(0, image.shape[0], block):
        out.append(torch.diagonal(sim(image[s:s + block], text[s:s + block], curv)))
    return torch.cat(out) if out else torch.zeros(0)


def distance_to_root(method, x: Tensor, curv) -> Tensor:
    """(N, D) -> (N,) through the method (euclidean: |x|)."""
    return method.distance_to_root(x, curv=curv)


def tangent(method, x: Tensor, curv) -> Tensor:
    """Tangent vectors at the root (logmap0; per factor for product; identity for euclidean)."""
    return space(method).tangent(x, curv=curv)


# --------------------------------------------------------------------------- ranking under ties
#: The tie rule of every ranking protocol (retrieval, zero-shot, hierarchy predictions,
#: HierarCaps threshold retrieval): ties are broken **pessimistically**. A right item counts as
#: ranked above a wrong one only when it scores strictly higher; a tie with a wrong item is a
#: miss. A NaN score counts as +inf for a wrong item and -inf for a right one, so a model whose
#: scores are all equal (collapsed embeddings) or undefined scores zero, never a hit.
TIE_RULE = "pessimistic"


def split_right_wrong(scores: Tensor, right: Tensor) -> tuple[Tensor, Tensor]:
    """(B, M) scores and (B, M) bool ``right`` -> (right scores, wrong scores), each with the
    other class's entries at -inf and NaN resolved against the model (see :data:`TIE_RULE`)."""
    if scores.shape != right.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and right-item mask {tuple(right.shape)} differ")
    ninf = torch.tensor(-torch.inf, dtype=scores.dtype)
    r = torch.where(right, scores.nan_to_num(nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf), ninf)
    w = torch.where(right, ninf, scores.nan_to_num(nan=torch.inf, posinf=torch.inf, neginf=-torch.inf))
    return r, w


def rank_among_wrong(scores: Tensor, right: Tensor) -> Tensor:
    """Pessimistic rank of each row's best right item: how many wrong items score at least as
    high (ties count against the model).

    Args:
        scores: (B, M) higher = better.
        right: (B, M) bool, the right items of each row (several allowed: a hit is any of them).

    Returns:
        (B,) long in [0, #wrong]; a query hits at K iff its rank < K. A row without a right
        item, or whose right items all score -inf/NaN, gets the count of its wrong items
        (every one of them ties or beats -inf).
    """
    r, w = split_right_wrong(scores, right)
    return ((w >= r.amax(1, keepdim=True)) & ~right).sum(1)


def pessimistic_argmax(scores: Tensor, right: Tensor) -> Tensor:
    """(B, M) scores, (B, M) bool right -> (B,) index of a top-scoring item, a wrong one
    whenever a wrong item ties (or beats) the best right one; among tied wrong items the lowest
    index. Used as the prediction of zero-shot and the hierarchy metrics."""
    r, w = split_right_wrong(scores, right)
    best_r, idx_r = r.max(1)
    best_w, idx_w = w.max(1)
    # All wrong scores -inf: max may point at a (masked) right item; take the first wrong one.
    idx_w = torch.where(best_w == -torch.inf, (~right).float().argmax(1), idx_w)
    has_wrong = (~right).any(1)
    return torch.where(has_wrong & (best_w >= best_r), idx_w, idx_r)


# --------------------------------------------------------------------------- encoding
@contextlib.contextmanager
def eval_mode(model):
    """Put ``model`` in eval mode with gradients off; restore its training flag after."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training and hasattr(model, "train"):
            model.train()


def model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def model_image_size(model) -> int | None:
    holders = (model, getattr(model, "visual", None), getattr(model, "cfg", None), getattr(model, "model_cfg", None))
    for holder in holders:
        if holder is None:
            continue
        size = holder.get("image_size") if isinstance(holder, Mapping) else getattr(holder, "image_size", None)
        if isinstance(size, (int, np.integer)):
            return int(size)
        if isinstance(size, (tuple, list)) and size:
            return int(size[0])
    return None


def images_to_tensor(images: np.ndarray, image_size: int | None = None) -> Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, S, S) normalised with CLIP's mean/std.

    Images are resized to a square ``image_size`` without cropping (bilinear, antialiased),
    the papers' retrieval setting.
    """
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3), got shape {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 255.0
    if image_size is not None and (x.shape[-1] != image_size or x.shape[-2] != image_size):
        x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear",
                                            antialias=True, align_corners=False)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def image_features(model, images: np.ndarray, *, batch_size: int = 128) -> Tensor:
    """Tangent image features (before alpha), (N, D) float32 on CPU; batched, no_grad, eval."""
    device, size = model_device(model), model_image_size(model)
    out = []
    with eval_mode(model):
        for s in range(0, len(images), batch_size):
            batch = images_to_tensor(images[s:s + batch_size], size).to(device)
            out.append(model.image_features(batch).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def text_features(model, texts: Sequence[str], *, batch_size: int = 256) -> Tensor:
    """Tangent text features (before alpha), (N, D) float32 on CPU; batched, no_grad, eval."""
    device = model_device(model)
    out = []
    with eval_mode(model):
        for s in range(0, len(texts), batch_size):
            tokens = model.tokenize(list(texts[s:s + batch_size])).to(device)
            out.append(model.text_features(tokens).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def lift(model, features: Tensor, modality: str) -> Tensor:
    """``model.lift`` under no_grad on the model's device; result on CPU."""
    with eval_mode(model):
        return model.lift(features.to(model_device(model)), modality).float().cpu()


def encode_images(model, images: np.ndarray, *, batch_size: int = 128) -> Tensor:
    """Lifted image embeddings (N, D) on CPU."""
    return lift(model, image_features(model, images, batch_size=batch_size), "image")


def encode_texts(model, texts: Sequence[str], *, batch_size: int = 256, cache: dict | None = None) -> Tensor:
    """Lifted text embeddings (N, D) on CPU.

    Each distinct string is encoded once (benchmarks repeat generic captions); with
    ``cache`` (a dict string -> (D,) embedding, kept by the caller) also once across calls.
    """
    texts = [str(t) for t in texts]
    cache = {} if cache is None else cache
    todo = list(dict.fromkeys(t for t in texts if t not in cache))
    if todo:
        emb = lift(model, text_features(model, todo, batch_size=batch_size), "text")
        cache.update(zip(todo, emb))
    if not texts:
        return torch.zeros(0, 0)
    return torch.stack([cache[t] for t in texts])


def embeddings(source, key: str, encode) -> Tensor:
    """``source[key]`` for a mapping of embeddings, else ``encode()`` (a model's encodings)."""
    if is_model(source):
        return encode()
    if not isinstance(source, Mapping):
        raise ValueError(f"expected a model or a mapping of embeddings, got {type(source).__name__}")
    need(source, [key], "the embeddings mapping")
    return as_float(source[key], key)
