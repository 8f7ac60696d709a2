"""CLIP (Radford et al., 2021): the Euclidean baseline.

Features are L2-normalised (no alpha, no curvature, no entailment) and compared by cosine.
"""
from __future__ import annotations

from torch import Tensor

from hyplib.methods.base import Embeddings, Method, as_float, boxes_as_pairs, log_terms
from hyplib.methods.terms import symmetric_ce

__all__ = ["CLIP"]


class CLIP(Method):
    """Symmetric InfoNCE on cosine similarities.

    .. math:: L = \\tfrac12[CE(s\\cos(I, T)) + CE(s\\cos(T, I))]
    """

    name = "clip"
    geometry = "euclidean"
    uses_boxes = False
    PAPER_DEFAULTS = {"embed_dim": 512, "use_boxes": False}

    def loss(self, emb: Embeddings) -> dict:
        """Args: ``emb.image``, ``emb.text`` (B, D) unit vectors; ``emb.logit_scale`` ()."""
        self.check(emb)
        if self.defaults["use_boxes"]:
            emb = boxes_as_pairs(emb)
        image_text, text_image = symmetric_ce(emb.logit_scale * as_float(emb.image) @ as_float(emb.text).t())
        loss = 0.5 * (image_text + text_image)
        return {"loss": loss, "logs": log_terms(contrastive_image_text=image_text,
                                                 contrastive_text_image=text_image, contrastive=loss)}

    def similarity(self, image: Tensor, text: Tensor, *, curv=None) -> Tensor:
        """Cosine (N_img, D) x (N_txt, D) -> (N_img, N_txt); inputs are unit vectors."""
        return as_float(image) @ as_float(text).t()
