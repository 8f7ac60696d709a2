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
    "hierarchical_contrastive", "hierarchical_entailment",
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
    """Both diagonal cross-entropies of a square (B, B) matrix, without transposed copies.

    ``F.cross_entropy(logits.t())`` makes a strided copy of the matrix and its gradient (on CPU
    each costs several contiguous passes); here the column direction is a ``logsumexp`` over
    dim 0, and the gradient is ``g_r softmax_rows + g_c softmax_cols - (g_r + g_c) I``, over B.

    The softmaxes are max-subtracted exponentials divided by their own sums, not
    ``exp(logits - logsumexp)``: with MERU's logits (``-s d``, logsumexp near -280 at s = 100)
    the latter's rows sum to 1 only to ~eps |logsumexp| ~ 1e-5, all of one sign, which biased
    the logit-scale and curvature gradients ~100x beyond ``F.cross_entropy``'s rounding.
    """

    @staticmethod
    def forward(ctx, logits):
        rows, cols = torch.logsumexp(logits, 1), torch.logsumexp(logits, 0)
        diag = logits.diagonal()
        ctx.save_for_backward(logits)
        return torch.stack([(rows - diag).mean(), (cols - diag).mean()])

    @staticmethod
    def backward(ctx, g):
        (logits,) = ctx.saved_tensors
        n = logits.shape[0]
        grad = _scaled_softmax(logits, 1, g[0] / n)
        grad.add_(_scaled_softmax(logits, 0, g[1] / n))
        grad.diagonal().sub_((g[0] + g[1]) / n)
        return grad


def _scaled_softmax(logits: Tensor, dim: int, scale: Tensor) -> Tensor:
    """``scale * softmax(logits, dim)`` as max-subtracted exponentials over their own sum
    (sums to ``scale`` to rounding for any logit offset); three passes, and on CPU several
    times faster than ``torch.softmax`` along dim 0 of a contiguous matrix."""
    e = torch.sub(logits, logits.amax(dim, keepdim=True)).exp_()
    return e.mul_(scale / e.sum(dim, keepdim=True))


def symmetric_ce(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Both directions of a square (B, B) logit matrix: (CE(rows), CE(columns)).

    Equal to ``(diagonal_ce(logits), diagonal_ce(logits.t()))`` in value and gradient.
    """
    if logits.dim() != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"symmetric_ce needs a square (B, B) matrix, got shape {tuple(logits.shape)}")
    both = _SymmetricCE.apply(as_float(logits))
    return both[0], both[1]


def entailment_violation(parent: Tensor, child: Tensor, *, curv, eta: float = 1.0,
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
            scale * d`` (B1, B2): :func:`hyplib.lorentz.pairwise_dist` applies the scale in its
            own passes.

    Returns:
        ``{"contrastive_<query>_<candidate>": ()}`` for the four pairs, plus ``"contrastive"``
        (their mean). The image-text matrix is computed once and serves both directions.
    """
    neg_s = -emb.logit_scale
    image_text, text_image = symmetric_ce(distance(emb.image, emb.text, neg_s))
    terms = {
        "contrastive_image_text": image_text,
        "contrastive_text_image": text_image,
        "contrastive_image_box_text": diagonal_ce(distance(emb.image_box, emb.text, neg_s)),
        "contrastive_text_box_image": diagonal_ce(distance(emb.text_box, emb.image, neg_s)),
    }
    terms["contrastive"] = sum(terms.values()) / 4.0
    return terms


def hierarchical_entailment(emb, violation: Callable[[Tensor, Tensor, str], Tensor]) -> dict[str, Tensor]:
    """HyCoCLIP's four entailment terms, averaged with HyCoCLIP's 1/2 factor.

    .. math:: h_{CE} = \\tfrac12[E(T,I) + E(T_{box},I_{box}) + E(I_{box},I) + E(T_{box},T)]

    Args:
        emb: :class:`~hyplib.methods.base.Embeddings` with boxes.
        violation: ``(parent, child, kind) -> tensor`` of per-sample violations (any shape,
            meaned here); ``kind`` is "inter" (cross-modal) or "intra" (same modality).

    Returns:
        ``{"entail_<parent>_<child>": ()}`` for the four pairs, plus ``"entailment"``.
    """
    terms = {
        f"entail_{p}_{c}": violation(_get(emb, p), _get(emb, c), kind).mean()
        for p, c, kind in HIERARCHY_PAIRS
    }
    terms["entailment"] = 0.5 * sum(terms.values())
    return terms
