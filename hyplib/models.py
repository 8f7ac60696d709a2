"""open_clip towers built from scratch, lifted into a method's space.

Pipeline per modality (docs/METHODS.md section 2)::

    tower (ViT / text transformer) -> bias-free linear projection to embed_dim
        -> float32 -> times alpha (per modality; per factor for products) -> expmap0
        (per factor for products; L2-normalisation for CLIP)

**The one projection.** open_clip's towers already end in a bias-free projection to
``embed_dim`` (``visual.proj`` and ``text.text_projection``, plain ``(width, embed_dim)``
matrices; we force ``proj_bias=False``). Those *are* the projection; no second linear layer
is stacked on top.

Learned scalars are stored as logs: ``log_logit_scale`` (init ``1/0.07``, clamp ``<= 100``),
``log_alpha_image``/``log_alpha_text`` (init ``embed_dim**-0.5``, or ``d**-0.5`` per factor;
clamp ``alpha <= 1``), ``log_curv`` (init ``c0``, clamped to the method's ``curv_clamp``;
a buffer instead of a parameter when the curvature is fixed). The clamps are applied in
place by :meth:`HypVLM.clamp_parameters_` after each optimiser step; the properties also
clamp functionally (identity with full gradient inside the bounds), never mutating ``.data``.

Nothing is downloaded: ``pretrained=None`` always, the tokenizer's BPE vocabulary ships with
open_clip.
"""
from __future__ import annotations

import math
import re

import open_clip
import torch
from open_clip.model import CLIPTextCfg, CLIPVisionCfg, _build_text_tower, _build_vision_tower
from torch import Tensor, nn

from hyplib.attention_pool import use_first_token_pool
from hyplib.methods.base import Embeddings, Method

__all__ = ["HypVLM", "build_model", "param_groups", "MODEL_KEYS", "VISION_MODELS", "VISION_TOWERS", "NAMED_MODEL_KEYS",
           "tower_configs"]

#: Keys accepted in a run config's ``model:`` section.
MODEL_KEYS = (
    "vision_model", "vision_tower", "image_size", "patch_size", "vision_width", "vision_layers", "vision_heads",
    "text_width", "text_layers", "text_heads", "context_length", "embed_dim",
)

#: Keys of ``MODEL_KEYS`` that take a name (every other one takes a positive integer).
NAMED_MODEL_KEYS = ("vision_model", "vision_tower")

#: open_clip vision configs the paper-scale runs use.
VISION_MODELS = ("ViT-S-16", "ViT-B-16")

#: Image tower kinds: open_clip's VisionTransformer (every paper's) or its ModifiedResNet.
VISION_TOWERS = ("vit", "resnet")

#: Text tower of every paper: 12 layers, 512 wide, 8 heads, 77 tokens.
_TEXT_DEFAULTS = {"text_width": 512, "text_layers": 12, "text_heads": 8, "context_length": 77}

#: Vocabulary of open_clip's SimpleTokenizer.
VOCAB_SIZE = 49408


def _vision_defaults(name: str) -> dict:
    vc = open_clip.get_model_config(name)["vision_cfg"]
    head_width = vc.get("head_width", 64)
    return {"image_size": vc["image_size"], "patch_size": vc["patch_size"], "vision_width": vc["width"],
            "vision_layers": vc["layers"], "vision_heads": vc["width"] // head_width}


def tower_configs(model_cfg: dict, embed_dim: int) -> tuple[CLIPVisionCfg, CLIPTextCfg]:
    """open_clip tower configs from a ``model:`` section.

    ``vision_model`` (default "ViT-B-16") supplies the vision defaults from open_clip's bundled
    configs; explicit keys override them. The text tower defaults to 12 x 512 (8 heads, 77
    tokens).

    ``vision_tower: resnet`` builds open_clip's ModifiedResNet from scratch instead of the ViT:
    ``vision_layers`` residual blocks in each of its 4 stages, ``vision_width`` stem channels
    (the last stage has 32x as many) and ``vision_heads`` heads in its attention pool, which must
    divide ``32 * vision_width``; ``patch_size`` is unused. The embedded CPU reproduction uses it
    because convolutions learn object shape at 32 px far sooner than a 2-layer ViT (README,
    "What the default run can and cannot show").
    """
    unknown = sorted(set(model_cfg) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(f"unknown model config key(s) {unknown}; valid keys: {list(MODEL_KEYS)}")
    name = model_cfg.get("vision_model", "ViT-B-16")
    if name not in VISION_MODELS:
        raise ValueError(f"unknown vision_model {name!r}; valid: {list(VISION_MODELS)}")
    tower = model_cfg.get("vision_tower", "vit")
    if tower not in VISION_TOWERS:
        raise ValueError(f"unknown vision_tower {tower!r}; valid: {list(VISION_TOWERS)}")
    cfg = {**_vision_defaults(name), **_TEXT_DEFAULTS, **model_cfg}
    # ModifiedResNet's attention pool runs over 32 x the stem width.
    pooled = 32 * cfg["vision_width"] if tower == "resnet" else cfg["vision_width"]
    checks = (("vision_width", pooled, "vision_heads"), ("text_width", cfg["text_width"], "text_heads"))
    for width, value, heads in checks:
        if value % cfg[heads]:
            what = f"32 * {width}" if value != cfg[width] else width
            raise ValueError(f"{what}={value} must be divisible by {heads}={cfg[heads]}")
    if tower == "resnet":
        vision = CLIPVisionCfg(layers=(cfg["vision_layers"],) * 4, width=cfg["vision_width"],
                               head_width=pooled // cfg["vision_heads"], image_size=cfg["image_size"])
    else:
        vision = CLIPVisionCfg(layers=cfg["vision_layers"], width=cfg["vision_width"],
                               head_width=cfg["vision_width"] // cfg["vision_heads"],
                               patch_size=cfg["patch_size"], image_size=cfg["image_size"])
    text = CLIPTextCfg(context_length=cfg["context_length"], vocab_size=VOCAB_SIZE, width=cfg["text_width"],
                       heads=cfg["text_heads"], layers=cfg["text_layers"], proj_type="linear",
                       proj_bias=False)
    return vision, text


class HypVLM(nn.Module):
    """Two open_clip towers plus the learned scalars of ``method``'s space.

    Args:
        vision_cfg, text_cfg: open_clip tower configs (see :func:`tower_configs`).
        embed_dim: output width of both towers' projections, ``D``.
        method: the :class:`~hyplib.methods.base.Method` whose space and defaults are used.
    """

    def __init__(self, vision_cfg: CLIPVisionCfg, text_cfg: CLIPTextCfg, embed_dim: int, method: Method):
        super().__init__()
        self.method = method
        self.space = method.space
        self.embed_dim = embed_dim
        self.context_length = text_cfg.context_length
        #: Side of the square input images in pixels (the ViT stores a pair, the ResNet an int).
        size = vision_cfg.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        # open_clip's ResNet pool, computed for the one token it returns (hyplib.attention_pool)
        self.visual = use_first_token_pool(_build_vision_tower(embed_dim, vision_cfg))
        self.text = _build_text_tower(embed_dim, text_cfg)
        self.tokenizer = open_clip.SimpleTokenizer(context_length=self.context_length)
        cfg = method.defaults

        self._scalar("log_logit_scale", torch.tensor(math.log(cfg["logit_scale_init"])),
                     cfg["learn_logit_scale"])
        self._log_scale_max = math.log(cfg["logit_scale_max"])

        self._has_alpha = self.space.alpha_shape is not None
        if self._has_alpha:
            init = cfg["alpha_init"] if cfg["alpha_init"] is not None else self.space.alpha_init(embed_dim)
            for modality in ("image", "text"):
                value = torch.full(self.space.alpha_shape, math.log(init))
                self._scalar(f"log_alpha_{modality}", value, cfg["learn_alpha"])
            self._log_alpha_max = math.log(cfg["alpha_max"])

        if self.space.curv_shape is not None:
            lo, hi = cfg["curv_clamp"]
            self._log_curv_bounds = (math.log(lo), math.log(hi))
            value = torch.full(self.space.curv_shape, math.log(cfg["curv_init"]))
            self._scalar("log_curv", value, cfg["learn_curv"])
        else:
            # Euclidean methods ignore curvature; a fixed 1 keeps Embeddings.curv a tensor.
            self._log_curv_bounds = (0.0, 0.0)
            self.register_buffer("log_curv", torch.zeros(()))

    def _scalar(self, name: str, value: Tensor, learnable: bool) -> None:
        if learnable:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    # ------------------------------------------------------------------ learned scalars
    @property
    def logit_scale(self) -> Tensor:
        """() the logit scale ``s`` (exp'd; clamped to <= logit_scale_max)."""
        # Matches clamp_parameters_: open_clip caps s at 100 so logits cannot blow up.
        return self.log_logit_scale.clamp(max=self._log_scale_max).exp()

    @property
    def curv(self) -> Tensor:
        """() or (k,) curvature ``c`` (exp'd; clamped to the method's ``curv_clamp``)."""
        # Matches clamp_parameters_: keeps c in [c0/r, c0*r] (MERU's drift to 0 or infinity).
        return self.log_curv.clamp(*self._log_curv_bounds).exp()

    @property
    def alphas(self) -> dict[str, Tensor]:
        """``{"image": alpha, "text": alpha}``, each () or (k,); empty for euclidean methods."""
        if not self._has_alpha:
            return {}
        # Matches clamp_parameters_: alpha <= 1 so expmap0's argument cannot grow unchecked.
        return {m: getattr(self, f"log_alpha_{m}").clamp(max=self._log_alpha_max).exp()
                for m in ("image", "text")}

    @torch.no_grad()
    def clamp_parameters_(self) -> None:
        """Clamp the stored logs in place; call after every optimiser step."""
        self.log_logit_scale.clamp_(max=self._log_scale_max)  # s <= 100: logits stay bounded
        if self._has_alpha:
            for m in ("image", "text"):
                getattr(self, f"log_alpha_{m}").clamp_(max=self._log_alpha_max)  # alpha <= 1
        self.log_curv.clamp_(*self._log_curv_bounds)  # c within the method's curv_clamp

    # ------------------------------------------------------------------ encoders
    def tokenize(self, texts: list[str]) -> Tensor:
        """Strings -> (N, context_length) int64 tokens (open_clip's SimpleTokenizer)."""
        return self.tokenizer(list(texts))

    def image_features(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, D) float32 features after the projection, before alpha."""
        return self.visual(images).float()

    def text_features(self, tokens: Tensor) -> Tensor:
        """(B, L) tokens -> (B, D) float32 features after the projection, before alpha."""
        return self.text(tokens).float()

    def lift(self, features: Tensor, modality: str) -> Tensor:
        """(B, D) tangent features -> (B, D) embeddings in the method's space.

        Args:
            features: output of :meth:`image_features` / :meth:`text_features` (or averages
                of them, e.g. a class's prompts).
            modality: "image" or "text" (selects alpha).
        """
        if modality not in ("image", "text"):
            raise ValueError(f"modality must be 'image' or 'text', got {modality!r}")
        alpha = self.alphas.get(modality)
        return self.method.lift(features, alpha=alpha, curv=self.curv)

    def encode_image(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, D) embeddings."""
        return self.lift(self.image_features(images), "image")

    def encode_text(self, tokens: Tensor) -> Tensor:
        """(B, L) -> (B, D) embeddings."""
        return self.lift(self.text_features(tokens), "text")

    def forward(self, batch: dict) -> Embeddings:
        """Encode a training batch.

        Args:
            batch: ``image`` (B, 3, H, W), ``text`` (B, L); for box methods also ``image_box``
                (B, 3, H, W) and ``text_box`` (B, L), encoded by the same towers in one pass
                with the full image/text.

        Returns:
            :class:`~hyplib.methods.base.Embeddings` with ``curv`` and ``logit_scale``.
        """
        need = ["image", "text"] + (["image_box", "text_box"] if self.method.uses_boxes else [])
        missing = [k for k in need if k not in batch]
        if missing:
            raise ValueError(f"method {self.method.name!r} needs batch keys {need}; missing {missing}")
        if self.method.uses_boxes:
            b = batch["image"].shape[0]
            images = self.encode_image(torch.cat([batch["image"], batch["image_box"]]))
            texts = self.encode_text(torch.cat([batch["text"], batch["text_box"]]))
            return Embeddings(image=images[:b], text=texts[:b], curv=self.curv, logit_scale=self.logit_scale,
                              image_box=images[b:], text_box=texts[b:])
        return Embeddings(image=self.encode_image(batch["image"]), text=self.encode_text(batch["text"]),
                          curv=self.curv, logit_scale=self.logit_scale)


def build_model(model_cfg: dict, method: Method) -> HypVLM:
    """Build the model of ``method`` from a ``model:`` config section (no pretrained weights).

    Args:
        model_cfg: keys of :data:`MODEL_KEYS`; ``embed_dim`` defaults to the method's.
        method: a configured method from :func:`hyplib.methods.get`.

    Raises:
        ValueError: unknown keys, or an ``embed_dim`` that does not equal ``k * d`` for a
            product-space method.
    """
    model_cfg = dict(model_cfg or {})
    embed_dim = int(model_cfg.get("embed_dim", method.defaults["embed_dim"]))
    if getattr(method.space, "factored", False) and embed_dim != method.defaults["embed_dim"]:
        raise ValueError(f"{method.name}: model embed_dim={embed_dim} must equal "
                         f"k*d={method.defaults['embed_dim']}")
    vision, text = tower_configs(model_cfg, embed_dim)
    return HypVLM(vision, text, embed_dim, method)


#: Full-name patterns of parameters that get no weight decay: norms, biases, learned scalars.
NO_DECAY_PATTERNS = (
    r"bias$",                      # every bias, incl. attention's in_proj_bias
    r"(^|\.)ln_[^.]*\.",           # open_clip's LayerNorms (ln_pre, ln_post, ln_final, ln_1, ln_2)
    r"norm[^.]*\.",                # any other *norm* module (qk_norm, LayerNorm, ...)
    r"(^|\.)log_logit_scale$",
    r"(^|\.)log_alpha_",           # per-modality (and per-factor) alphas
    r"(^|\.)log_curv$",            # curvature, incl. PHyCLIP's per-factor vector
    r"(^|\.)class_embedding$",     # ViT's class token (a learned vector, as in open_clip)
)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decay on weight matrices, none on norms, biases and learned scalars.

    Matching is by full parameter name (:data:`NO_DECAY_PATTERNS`); additionally any
    parameter with fewer than 2 dims is put in no-decay, so no scalar can slip through.
    Frozen parameters are left out.

    Returns:
        ``[{"params": [...], "weight_decay": wd, "names": [...]},
        {"params": [...], "weight_decay": 0.0, "names": [...]}]``.
    """
    decay, no_decay = {"params": [], "names": []}, {"params": [], "names": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exempt = p.ndim < 2 or any(re.search(pat, name) for pat in NO_DECAY_PATTERNS)
        group = no_decay if exempt else decay
        group["params"].append(p)
        group["names"].append(name)
    return [{**decay, "weight_decay": float(weight_decay)}, {**no_decay, "weight_decay": 0.0}]
