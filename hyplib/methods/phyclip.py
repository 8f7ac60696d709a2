"""PHyCLIP (2025): an l1 product of ``k`` small hyperboloids with HyCoCLIP's objective."""
from __future__ import annotations

from torch import Tensor

from hyplib import product
from hyplib.methods.base import HYPERBOLIC_DEFAULTS, Embeddings, Method, log_terms
from hyplib.methods.fused import pairwise_product_dist
from hyplib.methods.terms import entailment_violation, hierarchical_contrastive, hierarchical_entailment, per_pair

__all__ = ["PHyCLIP", "SCORES"]


def _score_inner_sum(image: Tensor, text: Tensor, curv, k: int, how: str) -> Tensor:
    """Sum over factors of Lorentz inner products (the authors' zero-shot/retrieval score)."""
    return product.pairwise_inner_sum(product.split(image, k), product.split(text, k), curv=curv)


def _score_distance(image: Tensor, text: Tensor, curv, k: int, how: str) -> Tensor:
    """Negative product distance (the training metric)."""
    return -product.pairwise_dist(product.split(image, k), product.split(text, k), curv=curv, how=how)


#: Named scoring functions for :meth:`PHyCLIP.similarity`.
SCORES = {"inner_sum": _score_inner_sum, "distance": _score_distance}


class PHyCLIP(Method):
    """HyCoCLIP's objective in a product of ``k`` hyperboloids ``H^d``.

    .. math:: d_{prod}(x, y) = \\mathrm{combine}_i\\, d_{c_i}(x_i, y_i)\\quad(l1: \\tfrac1k\\sum_i)
    .. math:: L = h_{CC}(-s\\,d_{prod}) + \\gamma\\,\\tfrac12\\sum_{(p,q,\\eta)}
              \\frac{1}{Bk}\\sum_{b,i}\\max(0, \\phi_{c_i}(p_{bi}, q_{bi}) - \\eta\\,\\omega_{c_i}(p_{bi}))

    Contrastive logits use the combined product distance; the four entailment terms are
    computed inside every factor and averaged over batch and factors. Defaults: ``k = 64``,
    ``d = 8``, ``how = "l1"`` (mean over factors), per-factor ``c_i`` init 1 clamped to
    ``[0.1, 10]``, per-factor alphas init ``d**-0.5``, ``gamma = 0.2``, HyCoCLIP's
    ``eta_inter = 0.7``, ``eta_intra = 1.2``; ``score = "inner_sum"`` (authors') or
    ``"distance"``. ``fused_distance`` (default True) computes the logits with
    :func:`hyplib.methods.fused.pairwise_product_dist` (same values and gradients as
    :func:`hyplib.product.pairwise_dist`, far less memory); False uses the latter.
    """

    name = "phyclip"
    geometry = "product"
    uses_boxes = True
    PAPER_DEFAULTS = {
        "embed_dim": 512,
        "k": 64,
        "d": 8,
        "how": "l1",
        "score": "inner_sum",
        **HYPERBOLIC_DEFAULTS,
        "eta_inter": 0.7,
        "eta_intra": 1.2,
        "min_radius": 0.1,
        # Our engineering choice, not the paper's: same values and gradients as
        # product.pairwise_dist, computed chunk-wise without (k, B, B) autograd buffers.
        "fused_distance": True,
    }

    def _resolve(self, cfg: dict, overrides: dict) -> dict:
        """``embed_dim`` follows ``k * d``; an explicit, inconsistent ``embed_dim`` is an error."""
        if "embed_dim" in overrides and overrides["embed_dim"] != cfg["k"] * cfg["d"]:
            raise ValueError(f"phyclip: embed_dim={overrides['embed_dim']} must equal k*d="
                             f"{cfg['k']}*{cfg['d']}={cfg['k'] * cfg['d']}")
        return {**cfg, "embed_dim": cfg["k"] * cfg["d"]}

    def _validate(self) -> None:
        super()._validate()
        if self.defaults["score"] not in SCORES:
            raise ValueError(f"phyclip: unknown score {self.defaults['score']!r}; valid: {sorted(SCORES)}")
        if self.defaults["how"] not in product.COMBINATIONS:
            raise ValueError(f"phyclip: unknown how {self.defaults['how']!r}; "
                             f"valid: {list(product.COMBINATIONS)}")

    def loss(self, emb: Embeddings) -> dict:
        """Args: ``emb`` with image, text, image_box, text_box (B, k*d) and ``curv`` (k,)."""
        self.check(emb)
        cfg, curv, k = self.defaults, emb.curv, self.defaults["k"]
        pairwise = pairwise_product_dist if cfg["fused_distance"] else product.pairwise_dist
        contrastive = hierarchical_contrastive(emb, lambda a, b, s: s * pairwise(
            product.split(a, k), product.split(b, k), curv=curv, how=cfg["how"]))
        eta = {"inter": cfg["eta_inter"], "intra": cfg["eta_intra"]}
        factor_curv = product.factor_curv(curv, k, emb.image)

        def violation(parents: Tensor, children: Tensor) -> Tensor:
            parents = product.split(parents, k)
            return entailment_violation(parents, product.split(children, k), curv=factor_curv,
                                        eta=per_pair(eta, parents), min_radius=cfg["min_radius"])

        entail = hierarchical_entailment(emb, violation)
        loss = contrastive["contrastive"] + cfg["entail_weight"] * entail["entailment"]
        return {"loss": loss, "logs": log_terms(**contrastive, **entail)}

    def similarity(self, image: Tensor, text: Tensor, *, curv) -> Tensor:
        """(N_img, k*d) x (N_txt, k*d) -> (N_img, N_txt) by ``score`` (higher = better)."""
        return SCORES[self.defaults["score"]](image, text, curv, self.defaults["k"], self.defaults["how"])
