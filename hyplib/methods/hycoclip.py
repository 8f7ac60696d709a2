"""HyCoCLIP (Pal et al., 2025): MERU's space with boxes as an explicit hierarchy."""
from __future__ import annotations

from torch import Tensor

from hyplib import lorentz
from hyplib.methods.base import HYPERBOLIC_DEFAULTS, Embeddings, Method, log_terms
from hyplib.methods.terms import entailment_violation, hierarchical_contrastive, hierarchical_entailment, per_pair

__all__ = ["HyCoCLIP"]


class HyCoCLIP(Method):
    """Hierarchical contrastive plus hierarchical entailment over (I, T, I_box, T_box).

    .. math:: h_{CC} = \\tfrac14[CE(I\\to T) + CE(T\\to I) + CE(I_{box}\\to T) + CE(T_{box}\\to I)]
    .. math:: h_{CE} = \\tfrac12[E(T,I;\\eta_e) + E(T_{box},I_{box};\\eta_e) + E(I_{box},I;\\eta_a)
              + E(T_{box},T;\\eta_a)]
    .. math:: L = h_{CC} + \\gamma\\,h_{CE},\\quad
              E(p,q;\\eta) = \\mathrm{mean}\\max(0, \\phi(p,q) - \\eta\\,\\omega(p))

    Logits are ``-s d(query, candidate)``; boxes are queries against full texts/images, never
    candidates. Defaults: ``eta_inter = 0.7`` (cross-modal pairs), ``eta_intra = 1.2``
    (same-modality pairs), ``gamma = 0.2`` (``entail_weight``), ``c0 = 1`` learnable in
    ``[c0/10, 10 c0]``.
    """

    name = "hycoclip"
    geometry = "lorentz"
    uses_boxes = True
    PAPER_DEFAULTS = {
        "embed_dim": 512,
        **HYPERBOLIC_DEFAULTS,
        "eta_inter": 0.7,
        "eta_intra": 1.2,
        "min_radius": 0.1,
    }

    def loss(self, emb: Embeddings) -> dict:
        """Args: ``emb`` with image, text, image_box, text_box (B, D) and ``curv`` ()."""
        self.check(emb)
        curv = emb.curv
        contrastive = hierarchical_contrastive(emb, lambda a, b, s: lorentz.pairwise_dist(a, b, curv=curv, scale=s))
        eta = {"inter": self.defaults["eta_inter"], "intra": self.defaults["eta_intra"]}
        min_radius = self.defaults["min_radius"]
        entail = hierarchical_entailment(emb, lambda p, c: entailment_violation(
            p, c, curv=curv, eta=per_pair(eta, p), min_radius=min_radius))
        loss = contrastive["contrastive"] + self.defaults["entail_weight"] * entail["entailment"]
        return {"loss": loss, "logs": log_terms(**contrastive, **entail)}

    def similarity(self, image: Tensor, text: Tensor, *, curv) -> Tensor:
        """Lorentz inner product (N_img, N_txt), same ranking as ``-d``."""
        return lorentz.pairwise_inner(image, text, curv=curv)
