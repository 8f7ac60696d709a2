"""What every method is made of: the :class:`Embeddings` it consumes and the :class:`Method` base.

A method is a registry entry (see :mod:`hyplib.methods`): a subclass of :class:`Method` that
states its geometry, whether it uses boxes, its paper defaults (one dict, ``PAPER_DEFAULTS``,
with per-variant updates in ``VARIANTS``) and three functions: :meth:`Method.loss`,
:meth:`Method.similarity` and :meth:`Method.distance_to_root`. Callers never branch on a
method's name; they ask the instance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from hyplib.methods.spaces import Space, make_space

__all__ = ["Embeddings", "Method", "COMMON_DEFAULTS", "HYPERBOLIC_DEFAULTS"]

#: Defaults every method shares (MERU's/CLIP's parametrisation, docs/METHODS.md section 2).
COMMON_DEFAULTS: dict = {
    "embed_dim": 512,
    "logit_scale_init": 1.0 / 0.07,
    "logit_scale_max": 100.0,
    "learn_logit_scale": True,
    # None -> embed_dim**-0.5 (lorentz) or d**-0.5 (product), resolved by the model.
    "alpha_init": None,
    "learn_alpha": True,
    "alpha_max": 1.0,
}


@dataclass
class Embeddings:
    """One batch of embeddings, as the objectives consume them.

    Attributes:
        image: (B, D) space coordinates (lorentz), (B, k*d) flat factors (product) or unit
            vectors (euclidean).
        text: (B, D), same convention as ``image``.
        curv: () curvature ``c`` (lorentz), (k,) per-factor curvatures (product); ignored by
            euclidean methods.
        logit_scale: () the scale ``s`` itself (already exponentiated and clamped).
        image_box: (B, D) embeddings of one box crop per sample, or None.
        text_box: (B, D) embeddings of that box's phrase, or None.

    Every objective runs in float32 at least: half-precision tensors (float16, bfloat16) are
    upcast here, once, so no method's arithmetic (e.g. a squared norm of 180**2 overflowing
    float16) can run in half precision.
    """

    image: Tensor
    text: Tensor
    curv: Tensor
    logit_scale: Tensor
    image_box: Tensor | None = None
    text_box: Tensor | None = None

    def __post_init__(self) -> None:
        for name in ("image", "text", "curv", "logit_scale", "image_box", "text_box"):
            value = getattr(self, name)
            if isinstance(value, Tensor):
                setattr(self, name, as_float(value))


#: MERU's hyperbolic recipe, shared by the Lorentz-space methods that build on it.
HYPERBOLIC_DEFAULTS: dict = {
    "curv_init": 1.0,
    "learn_curv": True,
    "curv_clamp_ratio": 10.0,
    "entail_weight": 0.2,
}


def boxes_as_pairs(emb: Embeddings) -> Embeddings:
    """The batch with its box crops and box phrases appended as extra image-text pairs.

    HyCoCLIP's ablation trains CLIP and MERU "with boxes" this way: the boxes only add
    (B, D) pairs to the contrastive batch, with no compositional terms.
    """
    missing = [k for k in ("image_box", "text_box") if getattr(emb, k) is None]
    if missing:
        raise ValueError(f"use_boxes=True needs image_box and text_box in the batch, missing {missing}")
    return Embeddings(image=torch.cat([emb.image, emb.image_box]), text=torch.cat([emb.text, emb.text_box]),
                      curv=emb.curv, logit_scale=emb.logit_scale)


class Method:
    """Base class of the six methods; a subclass is one paper.

    Class attributes a subclass sets:
        name: registry name ("clip", "meru", ...).
        geometry: "euclidean" | "lorentz" | "product".
        uses_boxes: whether :meth:`loss` needs ``image_box``/``text_box``.
        PAPER_DEFAULTS: the paper's defaults (merged over :data:`COMMON_DEFAULTS`).
        VARIANTS: optional ``{variant: updates}``; the chosen ``variant`` key's updates are
            applied over ``PAPER_DEFAULTS`` before the caller's overrides.
        EVAL_DEFAULTS: how the evaluation protocols treat this method where papers differ
            (``prompt_agg``: zero-shot prompt aggregation, ``"tangent_mean"`` or
            ``"score_mean"``, see :mod:`hyplib.evaluation.zeroshot`); not training
            hyper-parameters, so not in ``defaults``.

    Instance attribute:
        defaults: the effective configuration (paper defaults, variant, then overrides), with
            ``curv_clamp`` resolved to ``(curv_init / r, curv_init * r)`` from
            ``curv_clamp_ratio`` unless given explicitly.
    """

    name: ClassVar[str] = ""
    geometry: ClassVar[str] = ""
    uses_boxes: ClassVar[bool] = False
    PAPER_DEFAULTS: ClassVar[dict] = {}
    VARIANTS: ClassVar[dict[str, dict]] = {}
    EVAL_DEFAULTS: ClassVar[dict] = {"prompt_agg": "tangent_mean"}

    def __init__(self, **overrides):
        base = {**COMMON_DEFAULTS, **self.PAPER_DEFAULTS}
        # curv_clamp is derived from curv_init unless given, so it is valid wherever curvature is.
        valid = set(base) | ({"curv_clamp"} if "curv_init" in base else set())
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ValueError(
                f"unknown override key(s) {unknown} for method {self.name!r}; valid keys: {sorted(valid)}"
            )
        for key, value in overrides.items():
            _check_value(self.name, key, value, base.get(key))
        if self.VARIANTS:
            variant = overrides.get("variant", base["variant"])
            if variant not in self.VARIANTS:
                raise ValueError(
                    f"unknown variant {variant!r} for method {self.name!r}; valid variants: "
                    f"{sorted(self.VARIANTS)}"
                )
            base.update(self.VARIANTS[variant])
        cfg = {**base, **overrides}
        if "curv_init" in cfg and "curv_clamp" not in overrides:
            ratio = cfg["curv_clamp_ratio"]
            cfg["curv_clamp"] = (cfg["curv_init"] / ratio, cfg["curv_init"] * ratio)
        elif "curv_clamp" in cfg:
            cfg["curv_clamp"] = tuple(cfg["curv_clamp"])  # YAML gives lists
        self.defaults = self._resolve(cfg, overrides)
        if self.defaults.get("use_boxes"):  # opt-in box pairs (CLIP/MERU ablation)
            self.uses_boxes = True
        self._validate()
        self.space: Space = make_space(self.geometry, self.defaults)

    # ----------------------------------------------------------------- hooks for subclasses
    def _resolve(self, cfg: dict, overrides: dict) -> dict:
        """Derive dependent defaults (e.g. PHyCLIP's ``embed_dim = k * d``); identity here."""
        return cfg

    def _validate(self) -> None:
        """Raise ValueError on an inconsistent configuration; subclasses extend it."""
        if "curv_clamp" in self.defaults:
            lo, hi = self.defaults["curv_clamp"]
            if not 0 < lo <= self.defaults["curv_init"] <= hi:
                raise ValueError(
                    f"{self.name}: need 0 < curv_clamp[0] <= curv_init <= curv_clamp[1], got "
                    f"curv_clamp={self.defaults['curv_clamp']}, curv_init={self.defaults['curv_init']}"
                )

    # ----------------------------------------------------------------- public API
    def check(self, emb: Embeddings) -> None:
        """Raise ValueError when ``emb`` lacks what this method needs (boxes)."""
        if self.uses_boxes:
            missing = [k for k in ("image_box", "text_box") if getattr(emb, k) is None]
            if missing:
                raise ValueError(
                    f"method {self.name!r} uses boxes but the embeddings lack {missing}; it needs "
                    f"image, text, image_box and text_box"
                )

    def loss(self, emb: Embeddings) -> dict:
        """Objective on one batch.

        Args:
            emb: the batch's :class:`Embeddings`.

        Returns:
            ``{"loss": () tensor, "logs": {term: () detached tensor}}``; every term that makes up
            the loss is logged.
        """
        raise NotImplementedError

    def similarity(self, image: Tensor, text: Tensor, *, curv) -> Tensor:
        """Scores (N_img, D) x (N_txt, D) -> (N_img, N_txt); higher means a better match."""
        raise NotImplementedError

    def distance_to_root(self, x: Tensor, *, curv) -> Tensor:
        """Distance from the origin of embeddings (N, D) -> (N,), for diagnostics."""
        return self.space.distance_to_root(x, curv=curv)

    def lift(self, features: Tensor, *, alpha, curv) -> Tensor:
        """Tangent features (N, D) -> embeddings (N, D) in this method's space (float32)."""
        return self.space.lift(features, alpha=alpha, curv=curv)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.defaults})"


def log_terms(**terms: Tensor) -> dict[str, Tensor]:
    """Detach loss terms for logging."""
    return {k: v.detach() for k, v in terms.items()}


def _check_value(method: str, key: str, value, default) -> None:
    """An override must have its default's type: ``True``/``False`` for a flag, a string for a
    choice, an integer >= 1 for a size (``embed_dim``, ``k``, ``d``), a finite number >= 0 for a
    float (every float hyper-parameter here is a weight, scale, radius, margin or curvature);
    ``curv_clamp`` two such numbers; ``alpha_init`` None or such a number. ValueError otherwise,
    naming the key, the value and what is allowed."""
    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0

    if key == "curv_clamp":
        ok, what = isinstance(value, (list, tuple)) and len(value) == 2 and all(map(number, value)), \
            "two finite numbers [low, high]"
    elif key == "alpha_init":
        ok, what = value is None or number(value), "null or a finite number >= 0"
    elif isinstance(default, bool):
        ok, what = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, what = isinstance(value, int) and not isinstance(value, bool) and value >= 1, "an integer >= 1"
    elif isinstance(default, float):
        ok, what = number(value), "a finite number >= 0"
    elif isinstance(default, str):
        ok, what = isinstance(value, str), "a string"
    else:
        return
    if not ok:
        raise ValueError(f"method {method!r} override {key} = {value!r}: expected {what}")


def as_float(t: Tensor) -> Tensor:
    """Objectives run in float32 at least (half precision -> float32)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
