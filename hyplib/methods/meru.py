"""MERU (Desai et al., 2023): one Lorentz hyperboloid, distance contrastive plus entailment."""
from __future__ import annotations

from torch import Tensor

from hyplib import lorentz
from hyplib.methods.base import HYPERBOLIC_DEFAULTS, Embeddings, Method, boxes_as_pairs, log_terms
from hyplib.methods.terms import entailment_violation, symmetric_ce

__all__ = ["MERU"]


class MERU(Method):
    """Contrastive loss on negative geodesic distances plus a text-entails-image cone loss.

    .. math:: L = \\tfrac12[CE(-s\\,d(I,T)) + CE(-s\\,d(T,I))]
              + \\lambda\\,\\frac1B\\sum_i \\max(0, \\phi(T_i, I_i) - \\omega(T_i))

    Defaults: ``lambda = 0.2`` (``entail_weight``), ``c0 = 1`` learnable, clamped to
    ``[c0/10, 10 c0]``, aperture constant ``K = 0.1`` (``min_radius``).
    """

    name = "meru"
    geometry = "lorentz"
    uses_boxes = False
    PAPER_DEFAULTS = {
        "embed_dim": 512,
        **HYPERBOLIC_DEFAULTS,
        "min_radius": 0.1,
        "use_boxes": False,
    }

    def loss(self, emb: Embeddings) -> dict:
        """Args: ``emb.image``, ``emb.text`` (B, D) space coordinates; ``emb.curv`` ()."""
        self.check(emb)
        if self.defaults["use_boxes"]:
            emb = boxes_as_pairs(emb)
        logits = lorentz.pairwise_dist(emb.image, emb.text, curv=emb.curv, scale=-emb.logit_scale)
        image_text, text_image = symmetric_ce(logits)
        contrastive = 0.5 * (image_text + text_image)
        entail = entailment_violation(emb.text, emb.image, curv=emb.curv,
                                      min_radius=self.defaults["min_radius"]).mean()
        loss = contrastive + self.defaults["entail_weight"] * entail
        return {"loss": loss, "logs": log_terms(
            contrastive_image_text=image_text, contrastive_text_image=text_image,
            contrastive=contrastive, entail_text_image=entail, entailment=entail)}

    def similarity(self, image: Tensor, text: Tensor, *, curv) -> Tensor:
        """Lorentz inner product (N_img, N_txt): ``-c<x,y>_L = cosh(sqrt(c) d)``, so it ranks
        exactly as ``-d`` does (MERU scores zero-shot and retrieval this way).

        .. math:: \\langle x, y\\rangle_L = x\\cdot y - x_t y_t
        """
        return lorentz.pairwise_inner(image, text, curv=curv)
