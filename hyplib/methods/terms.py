"""Objective pieces shared by several methods (contrastive CE, entailment, HyCoCLIP's hierarchy).

All pairwise scores are (B1, B2) matrices from one matmul plus elementwise work; nothing here
builds a (B1, B2, D) tensor.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from hyplib import lorentz
from hyplib.methods.base import as_float

__all__ = [
    "diagonal_ce", "symmetric_ce", "entailment_violation", "HIERARCHY_PAIRS",
    "hierarchical_contrastive", "hierarchical_entailment", "per_pair",
]

#: (parent, child, kind) of HyCoCLIP's four entailment pairs; the parent is the more general
#: side: image below its text below the box text; image below its box.
HIERARCHY_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("text", "image", "inter"),
    ("text_box", "image_box", "inter"),
    ("image_box", "image", "intra"),
    ("text_box", "text", "intra"),
)


def diagonal_ce(logits: Tensor) -> Tensor:
    """Cross-entropy of (B, B') logits whose row ``i`` has its positive in column ``i``.

    .. math:: \\mathrm{CE} = -\\frac1B\\sum_i \\log \\frac{e^{\\ell_{ii}}}{\\sum_j e^{\\ell_{ij}}}
    """
    logits = as_float(logits)
    if logits.dim() == 2 and not logits.is_contiguous() and logits.t().is_contiguous():
        # A transposed view: normalise down the columns of the stored matrix, since
        # cross_entropy would first copy it (and its gradient) with strided passes.
        # log_softmax, not logsumexp: the latter's backward is exp(logits - logsumexp), whose
        # columns sum to 1 only to ~eps |logsumexp| (see _SymmetricCE).
        return -torch.log_softmax(logits.t(), 0).diagonal().mean()
    target = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, target)


class _SymmetricCE(torch.autograd.Function):
    """Both diagonal cross-entropies of square (B, B) matrices, without transposed copies: the
    row direction over ``rows`` and the column direction over ``cols`` (often the same matrix).

    ``F.cross_entropy(logits.t())`` makes a strided copy of the matrix and its gradient (on CPU
    each costs several contiguous passes); here the column direction is a ``logsumexp`` over
    dim 0, and the gradients are ``g_r softmax_rows(rows) - g_r I`` and ``g_c softmax_cols(cols)
    - g_c I``, over B (summed into one matrix where ``rows`` is ``cols``).

    The softmaxes are max-subtracted exponentials divided by their own sums, not
    ``exp(logits - logsumexp)``: with MERU's logits (``-s d``, logsumexp near -280 at s = 100)
    the latter's rows sum to 1 only to ~eps |logsumexp| ~ 1e-5, all of one sign, which biased
    the logit-scale and curvature gradients ~100x beyond ``F.cross_entropy``'s rounding.
    """

    @staticmethod
    def forward(ctx, rows, cols):
        by_row, by_col = torch.logsumexp(rows, 1), torch.logsumexp(cols, 0)
        ctx.same = rows is cols
        ctx.save_for_backward(rows, cols)
        return torch.stack([(by_row - rows.diagonal()).mean(), (by_col - cols.diagonal()).mean()])

    @staticmethod
    def backward(ctx, g):
        rows, cols = ctx.saved_tensors
        n = rows.shape[0]
        grad_rows = _scaled_softmax(rows, 1, g[0] / n)
        grad_rows.diagonal().sub_(g[0] / n)
        grad_cols = _scaled_softmax(cols, 0, g[1] / n)
        grad_cols.diagonal().sub_(g[1] / n)
        if ctx.same:
            return grad_rows.add_(grad_cols), None
        return grad_rows, grad_cols


def _scaled_softmax(logits: Tensor, dim: int, scale: Tensor) -> Tensor:
    """``scale * softmax(logits, dim)`` as max-subtracted exponentials over their own sum
    (sums to ``scale`` to rounding for any logit offset); three passes, and on CPU several
    times faster than ``torch.softmax`` along dim 0 of a contiguous matrix."""
    e = torch.sub(logits, logits.amax(dim, keepdim=True)).exp_()
    return e.mul_(scale / e.sum(dim, keepdim=True))


def symmetric_ce(logits: Tensor, column_logits: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Both directions of square (B, B) logits: (CE(rows of ``logits``), CE(columns of
    ``column_logits``)), the latter defaulting to ``logits`` itself.

    Equal to ``(diagonal_ce(logits), diagonal_ce(column_logits.t()))`` in value and gradient.
    """
    columns = logits if column_logits is None else column_logits
    for name, matrix in (("logits", logits), ("column_logits", columns)):
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"symmetric_ce needs a square (B, B) matrix as {name}, got shape {tuple(matrix.shape)}")
    if columns.shape != logits.shape:
        raise ValueError(f"symmetric_ce: logits {tuple(logits.shape)} and column_logits {tuple(columns.shape)} differ")
    rows = as_float(logits)
    both = _SymmetricCE.apply(rows, rows if column_logits is None else as_float(columns))
    return both[0], both[1]


def entailment_violation(parent: Tensor, child: Tensor, *, curv, eta: float | Tensor = 1.0,
                         min_radius: float = 0.1) -> Tensor:
    """Paired cone violation of ``child`` w.r.t. ``parent``'s cone (..., n) -> (...).

    .. math:: E(p, q) = \\max(0, \\phi(p, q) - \\eta\\,\\omega(p))

    Zero when ``q`` lies inside ``p``'s cone shrunk (or widened) by ``eta``.
    """
    phi = lorentz.exterior_angle(parent, child, curv=curv)
    omega = lorentz.half_aperture(parent, curv=curv, min_radius=min_radius)
    return F.relu(phi - eta * omega)


def _get(emb, key: str) -> Tensor:
    return getattr(emb, key)


def hierarchical_contrastive(emb, distance: Callable[[Tensor, Tensor, Tensor], Tensor]) -> dict[str, Tensor]:
    """HyCoCLIP's four contrastive terms with logits ``-s * distance(query, candidate)``.

    .. math:: h_{CC} = \\tfrac14[CE(I\\to T) + CE(T\\to I) + CE(I_{box}\\to T) + CE(T_{box}\\to I)]

    Args:
        emb: :class:`~hyplib.methods.base.Embeddings` with boxes.
        distance: scaled pairwise distance ``(query (B1, D), candidate (B2, D), scale ()) ->
            scale * d`` (B1, B2), symmetric (``distance(a, b) = distance(b, a).T``, as a metric
            is): :func:`hyplib.lorentz.pairwise_dist` applies the scale in its own passes.

    Returns:
        ``{"contrastive_<query>_<candidate>": ()}`` for the four pairs, plus ``"contrastive"``
        (their mean). The image-text matrix is computed once and serves both directions; the
        box text -> image term runs down the columns of ``distance(image, text_box)``, beside
        the box image -> text term along the rows of its matrix, so that both box terms are one
        :func:`symmetric_ce` (no ``cross_entropy``, whose backward writes a zero matrix first).
    """
    neg_s = -emb.logit_scale
    image_text, text_image = symmetric_ce(distance(emb.image, emb.text, neg_s))
    image_box_text, text_box_image = symmetric_ce(distance(emb.image_box, emb.text, neg_s),
                                                  distance(emb.image, emb.text_box, neg_s))
    terms = {
        "contrastive_image_text": image_text,
        "contrastive_text_image": text_image,
        "contrastive_image_box_text": image_box_text,
        "contrastive_text_box_image": text_box_image,
    }
    terms["contrastive"] = sum(terms.values()) / 4.0
    return terms


def per_pair(values: dict[str, float], points: Tensor) -> Tensor:
    """``values[kind]`` for each of :data:`HIERARCHY_PAIRS`, shaped (4, 1, ..., 1) to broadcast
    against per-point results of ``points`` (4, ..., n): one dimension fewer than ``points``.

    At least float32 (a bfloat16 0.7 is 0.699). Built on ``points``' device by fills, not copied
    from the host: a host-to-device copy of a Python list would wait for the GPU's queue to drain.
    """
    dtype, ones = torch.promote_types(points.dtype, torch.float32), (1,) * (points.dim() - 1)
    return torch.cat([points.new_full(ones, values[kind], dtype=dtype) for _, _, kind in HIERARCHY_PAIRS])


def hierarchical_entailment(emb, violation: Callable[[Tensor, Tensor], Tensor]) -> dict[str, Tensor]:
    """HyCoCLIP's four entailment terms, averaged with HyCoCLIP's 1/2 factor.

    .. math:: h_{CE} = \\tfrac12[E(T,I) + E(T_{box},I_{box}) + E(I_{box},I) + E(T_{box},T)]

    The four pairs go through ``violation`` at once, stacked along a new first axis in the order
    of :data:`HIERARCHY_PAIRS`: one call runs about a quarter of the operators of four calls,
    and on a GPU each operator is a kernel launch.

    Args:
        emb: :class:`~hyplib.methods.base.Embeddings` with boxes.
        violation: ``(parents (4, B, D), children (4, B, D)) -> (4, B, ...)`` per-sample
            violations (meaned per pair here). A value that depends on the pair's kind ("inter":
            cross-modal, "intra": same modality) comes from :func:`per_pair`.

    Returns:
        ``{"entail_<parent>_<child>": ()}`` for the four pairs, plus ``"entailment"``.
    """
    parents = torch.stack([_get(emb, p) for p, _, _ in HIERARCHY_PAIRS])
    children = torch.stack([_get(emb, c) for _, c, _ in HIERARCHY_PAIRS])
    means = violation(parents, children).flatten(1).mean(1)
    terms = {f"entail_{p}_{c}": mean for (p, c, _), mean in zip(HIERARCHY_PAIRS, means.unbind())}
    terms["entailment"] = 0.5 * means.sum()
    return terms
