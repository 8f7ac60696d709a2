"""The authors' released checkpoints (MERU's code lineage) as hyplib models.

>>> from hyplib.released import load_released
>>> model = load_released("checkpoints/meru_vit_s.pth")          # method from keys + file name
>>> model = load_released("checkpoints/hycoclip_vit_b.pth", method="hycoclip")

Every released model of this research line (MERU and its CLIP baseline, HyCoCLIP and the
GRIT-trained CLIP/MERU beside it, ATMG, PHyCLIP) was saved by MERU's checkpoint manager:
``torch.save({"model": state_dict, ...})``. The state dict's layout, read from the authors'
model definitions (facts only, no code taken):

* image tower ``visual.*``: a timm ``VisionTransformer`` (class token, token pooling, no head,
  ``nn.LayerNorm`` with eps 1e-5, fixed 2-D sin-cos positions stored in ``visual.pos_embed``);
  MERU's ViT-S is MoCo-v3's (width 384 with 12 heads, not timm's 6). Here the same timm class
  is built offline (no pretrained weights) and loaded key for key.
* text tower ``textual.*``: ``token_embed.weight`` (V, W), ``posit_embed`` (L, W),
  ``resblocks.<i>.{ln_1, attn (in_proj/out_proj), ln_2, mlp.c_fc, mlp.c_proj}``,
  ``ln_final``, the causal ``attn_mask`` buffer (L, L) bool; pre-LN blocks, exact GELU,
  ``W // 64`` heads, features taken at the end-of-text token (the largest token id).
  It maps one to one onto open_clip's ``TextTransformer`` (``text.*``), whose BPE tokenizer
  is CLIP's, the one the authors ship.
* ``visual_proj.weight`` (D, Wv), ``textual_proj.weight`` (D, Wt): bias-free projections.
* learnt scalars stored as logs: ``logit_scale``; hyperbolic files add ``curv``,
  ``visual_alpha``, ``textual_alpha``; PHyCLIP adds per-factor ``curvs.<i>``,
  ``visual_concept_alphas.<i>``, ``textual_concept_alphas.<i>`` (k factors of D / k dims)
  and keeps MERU's three scalars, which its encoders never read.
* ``pixel_mean`` / ``pixel_std`` (3, 1, 1): the model normalises images in [0, 1] itself
  (ImageNet's statistics in every released config).

Telling the methods apart: the keys give the geometry (no ``curv``: CLIP; ``curv`` and the two
alphas: Lorentz; ``curvs.<i>``: PHyCLIP's product). MERU, HyCoCLIP and ATMG store exactly the
same keys, so for a Lorentz file ``method=`` decides; without it the file name must begin with
one of those names (as the released ``meru_vit_s.pth``, ``hycoclip_vit_b.pth``,
``atmg_vit_s.pth`` do), otherwise :class:`ReleasedLayoutError` asks for ``method=``. ATMG is
scored with hyplib's ``variant="code"`` (the released weights come from the released code).

Conventions of the returned :class:`ReleasedVLM` (the API of :class:`hyplib.models.HypVLM`
that the evaluation suite and figures use): :meth:`~ReleasedVLM.image_features` takes images
normalised with CLIP's mean/std like every hyplib model (the evaluation suite's input) and
maps them back to [0, 1] before the model's own ``pixel_mean``/``pixel_std``;
:meth:`~ReleasedVLM.pixel_features` takes [0, 1] pixels (e.g. from :func:`paper_transform`).
The stored curvature, alphas and logit scale are used as they are (no clamp), as the
authors' encoders do at evaluation time. Curvature is ``-c`` with ``c > 0``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["load_released", "ReleasedVLM", "ReleasedLayoutError", "read_checkpoint", "released_geometry",
           "released_sizes", "released_layout", "paper_transform", "LORENTZ_METHODS", "HEADS_BY_WIDTH"]

#: Methods whose released files share MERU's Lorentz layout (keys cannot tell them apart).
LORENTZ_METHODS = ("meru", "hycoclip", "atmg")
#: geometry (from the keys) -> hyplib methods that can have written such a file.
CANDIDATES = {"euclidean": ("clip",), "lorentz": LORENTZ_METHODS, "product": ("phyclip",)}
#: Method options a released file implies (the weights come from the authors' code).
RELEASED_OVERRIDES = {"atmg": {"variant": "code"}}
#: Attention heads of the released image towers by width (head count is not in the shapes):
#: 384 is MERU's MoCo-v3 ViT-S (12 heads), 768 ViT-B, 1024 ViT-L. Other widths: width // 64.
HEADS_BY_WIDTH = {384: 12, 768: 12, 1024: 16}
#: Top-level entries beside ``model`` that carry no weights: named in ``released_info``.
TRAINING_STATE = ("iteration", "optimizer", "scheduler", "lr_scheduler", "scaler", "amp", "grad_scaler")
#: The image size, interpolation and crop of the papers' zero-shot evaluation.
EVAL_IMAGE_SIZE = 224

_MLP_RATIO = 4  # both towers: MLP width 4 * W (timm's default, MERU's text blocks)
_BLOCK = re.compile(r"^(visual\.blocks|textual\.resblocks)\.(\d+)\.")
_FACTOR = re.compile(r"^(curvs|visual_concept_alphas|textual_concept_alphas)\.(\d+)$")


class ReleasedLayoutError(ValueError):
    """A file that is not (or not wholly) a released checkpoint of MERU's lineage."""


# ----------------------------------------------------------------------------- reading
def read_checkpoint(path) -> tuple[dict[str, Tensor], dict]:
    """``(state_dict, extras)`` of a released file.

    Accepts ``{"model": state_dict, ...}`` (the authors' wrapper) or a bare state dict.
    ``extras`` holds the other top-level entries: training state (:data:`TRAINING_STATE`) and
    CLIP's ``root`` feature vector (MERU's traversal script reads it).

    Raises:
        FileNotFoundError: no such file.
        ReleasedLayoutError: unreadable (truncated, not a torch file) or not this lineage.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"released checkpoint not found: {path}")
    try:
        # weights_only: the files hold tensors and plain containers; nothing to unpickle beyond.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for damaged archives
        if "weights only" in str(err).lower():
            raise ReleasedLayoutError(f"{path}: holds Python objects besides tensors and plain containers, which "
                                      f"the released files do not; refused to unpickle them: {err}") from err
        raise ReleasedLayoutError(f"{path}: cannot be read as a torch checkpoint (truncated or damaged "
                                  f"download?): {type(err).__name__}: {err}") from err
    if not isinstance(obj, Mapping):
        raise ReleasedLayoutError(f"{path}: holds a {type(obj).__name__}, not a state dict or a "
                                  f"{{'model': state_dict}} wrapper")
    if "model" in obj and isinstance(obj["model"], Mapping):
        state, extras = dict(obj["model"]), {k: v for k, v in obj.items() if k != "model"}
    else:
        state, extras = dict(obj), {}
    if "config" in extras and any(k.startswith("text.") for k in state):
        raise ReleasedLayoutError(f"{path}: a hyplib training checkpoint (keys 'config', 'text.*'); "
                                  f"load it with hyplib.train.load_trained")
    unknown = sorted(set(extras) - set(TRAINING_STATE) - {"root"})
    if unknown:
        raise ReleasedLayoutError(f"{path}: top-level key(s) {unknown} are not part of the released layout "
                                  f"(expected 'model' plus any of {list(TRAINING_STATE)} or 'root')")
    bad = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if bad:
        raise ReleasedLayoutError(f"{path}: state-dict entries {bad[:5]} are not tensors")
    _check_lineage(state, path)
    return state, extras


def _check_lineage(state: Mapping, path) -> None:
    """Fail early, naming the lineage, for files that are not MERU-style checkpoints."""
    anchors = ("visual_proj.weight", "textual_proj.weight", "logit_scale", "textual.token_embed.weight",
               "visual.patch_embed.proj.weight", "visual.pos_embed", "textual.posit_embed",
               "pixel_mean", "pixel_std")
    missing = [k for k in anchors if k not in state]
    if not missing:
        return
    keys = set(state)
    if {"token_embedding.weight", "positional_embedding"} & keys or "visual.conv1.weight" in keys:
        lineage = "OpenAI CLIP / open_clip layout (token_embedding, positional_embedding, visual.conv1)"
    elif any(k.startswith("text.") for k in keys) and "log_curv" in keys:
        lineage = "hyplib layout (text.*, log_curv): use hyplib.train.load_trained"
    elif any(k.startswith("module.") for k in keys):
        lineage = "a DistributedDataParallel state dict ('module.' prefix) of some other layout"
    else:
        lineage = "an unknown layout"
    sample = sorted(keys)[:6]
    raise ReleasedLayoutError(f"{path}: not a released checkpoint of MERU's lineage: lacks {missing}; "
                              f"looks like {lineage}; first keys {sample}")


# ----------------------------------------------------------------------------- layout
def released_geometry(state: Mapping) -> str:
    """"euclidean" (CLIP), "lorentz" (MERU, HyCoCLIP, ATMG) or "product" (PHyCLIP), from the keys."""
    if any(_FACTOR.match(k) for k in state):
        return "product"
    if "curv" in state:
        return "lorentz"
    return "euclidean"


def _layers(state: Mapping, prefix: str) -> int:
    found = [int(m.group(2)) for k in state if (m := _BLOCK.match(k)) and m.group(1) == prefix]
    return max(found) + 1 if found else 0


def released_sizes(state: Mapping, *, vision_heads: int | None = None, text_heads: int | None = None) -> dict:
    """Tower sizes read from the shapes (heads from :data:`HEADS_BY_WIDTH` / ``W // 64``).

    Returns ``{"vision_width", "vision_layers", "vision_heads", "patch_size", "image_size",
    "text_width", "text_layers", "text_heads", "context_length", "vocab_size", "embed_dim",
    "k"}`` (``k``: product factors, 0 unless PHyCLIP).
    """
    w, _, p, p2 = (int(s) for s in _shape(state, "visual.patch_embed.proj.weight", 4))
    tokens = int(_shape(state, "visual.pos_embed", 3)[1]) - 1  # minus the class token
    grid = math.isqrt(max(tokens, 0))
    if p != p2 or grid * grid != tokens:
        raise ReleasedLayoutError("visual.patch_embed.proj.weight "
                                  f"{tuple(state['visual.patch_embed.proj.weight'].shape)}"
                                  f" / visual.pos_embed {tuple(state['visual.pos_embed'].shape)}: expected square "
                                  f"patches and a square grid of patch tokens plus one class token")
    vocab, wt = (int(s) for s in _shape(state, "textual.token_embed.weight", 2))
    embed_dim = int(_shape(state, "visual_proj.weight", 2)[0])
    k = sum(1 for key in state if key.startswith("curvs."))
    sizes = {"vision_width": w, "vision_layers": _layers(state, "visual.blocks"),
             "vision_heads": int(vision_heads or HEADS_BY_WIDTH.get(w, w // 64)), "patch_size": p,
             "image_size": grid * p, "text_width": wt, "text_layers": _layers(state, "textual.resblocks"),
             "text_heads": int(text_heads or wt // 64),
             "context_length": int(_shape(state, "textual.posit_embed", 2)[0]),
             "vocab_size": vocab, "embed_dim": embed_dim, "k": k}
    for width, heads in (("vision_width", "vision_heads"), ("text_width", "text_heads")):
        if sizes[heads] < 1 or sizes[width] % sizes[heads]:
            raise ReleasedLayoutError(f"{width}={sizes[width]} has no head count: pass {heads}= (it divides the width)")
    if k and embed_dim % k:
        raise ReleasedLayoutError(f"{k} product factors (curvs.*) do not divide embed_dim={embed_dim} "
                                  f"(visual_proj.weight rows)")
    return sizes


def _shape(state: Mapping, key: str, ndim: int) -> torch.Size:
    if key not in state:
        raise ReleasedLayoutError(f"released checkpoint lacks key {key!r}")
    shape = state[key].shape
    if len(shape) != ndim:
        raise ReleasedLayoutError(f"key {key!r} has shape {tuple(shape)}, expected {ndim} dimensions")
    return shape


def released_layout(sizes: Mapping, geometry: str) -> dict[str, tuple]:
    """Every key of a released file of ``geometry`` with these ``sizes``, and its shape."""
    w, wt, d = sizes["vision_width"], sizes["text_width"], sizes["embed_dim"]
    p, n_tok, ctx = sizes["patch_size"], (sizes["image_size"] // sizes["patch_size"]) ** 2 + 1, sizes["context_length"]
    out = {"visual.cls_token": (1, 1, w), "visual.pos_embed": (1, n_tok, w),
           "visual.patch_embed.proj.weight": (w, 3, p, p), "visual.patch_embed.proj.bias": (w,),
           "visual.norm.weight": (w,), "visual.norm.bias": (w,), "visual_proj.weight": (d, w)}
    for i in range(sizes["vision_layers"]):
        b = f"visual.blocks.{i}."
        out.update({b + "norm1.weight": (w,), b + "norm1.bias": (w,), b + "norm2.weight": (w,), b + "norm2.bias": (w,),
                    b + "attn.qkv.weight": (3 * w, w), b + "attn.qkv.bias": (3 * w,),
                    b + "attn.proj.weight": (w, w), b + "attn.proj.bias": (w,),
                    b + "mlp.fc1.weight": (_MLP_RATIO * w, w), b + "mlp.fc1.bias": (_MLP_RATIO * w,),
                    b + "mlp.fc2.weight": (w, _MLP_RATIO * w), b + "mlp.fc2.bias": (w,)})
    out.update({"textual.token_embed.weight": (sizes["vocab_size"], wt), "textual.posit_embed": (ctx, wt),
                "textual.attn_mask": (ctx, ctx), "textual.ln_final.weight": (wt,), "textual.ln_final.bias": (wt,),
                "textual_proj.weight": (d, wt)})
    for i in range(sizes["text_layers"]):
        b = f"textual.resblocks.{i}."
        out.update({b + "attn.in_proj_weight": (3 * wt, wt), b + "attn.in_proj_bias": (3 * wt,),
                    b + "attn.out_proj.weight": (wt, wt), b + "attn.out_proj.bias": (wt,),
                    b + "ln_1.weight": (wt,), b + "ln_1.bias": (wt,), b + "ln_2.weight": (wt,), b + "ln_2.bias": (wt,),
                    b + "mlp.c_fc.weight": (_MLP_RATIO * wt, wt), b + "mlp.c_fc.bias": (_MLP_RATIO * wt,),
                    b + "mlp.c_proj.weight": (wt, _MLP_RATIO * wt), b + "mlp.c_proj.bias": (wt,)})
    out.update({"logit_scale": (), "pixel_mean": (3, 1, 1), "pixel_std": (3, 1, 1)})
    if geometry in ("lorentz", "product"):
        out.update({"curv": (), "visual_alpha": (), "textual_alpha": ()})
    if geometry == "product":
        for i in range(sizes["k"]):
            out.update({f"curvs.{i}": (), f"visual_concept_alphas.{i}": (), f"textual_concept_alphas.{i}": ()})
    return out


def _check_layout(state: Mapping, layout: Mapping, path) -> None:
    missing = [k for k in layout if k not in state]
    if missing:
        raise ReleasedLayoutError(f"{path}: {len(missing)} key(s) of the released layout missing (truncated or "
                                  f"partial state dict?): {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    unexpected = [k for k in state if k not in layout]
    if unexpected:
        raise ReleasedLayoutError(f"{path}: key(s) outside the released layout (another model or lineage): "
                                  f"{unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    for key, shape in layout.items():
        if tuple(state[key].shape) != tuple(shape):
            raise ReleasedLayoutError(f"{path}: key {key!r} has shape {tuple(state[key].shape)} but the layout "
                                      f"inferred from the other tensors needs {tuple(shape)}")


# ----------------------------------------------------------------------------- method
def _resolve_method(geometry: str, method: str | None, path: Path) -> str:
    options = CANDIDATES[geometry]
    if method is not None:
        if method not in options:
            raise ReleasedLayoutError(f"{path}: method={method!r} does not fit the file's keys, which are a "
                                      f"{geometry} layout ({'curv' if geometry != 'euclidean' else 'no curv'}"
                                      f"{', curvs.<i>' if geometry == 'product' else ''}); possible: {list(options)}")
        return method
    if len(options) == 1:
        return options[0]
    stem = path.name.lower()
    named = [m for m in options if stem.startswith(m)]
    if len(named) == 1:
        return named[0]
    raise ReleasedLayoutError(f"{path}: the keys are MERU's Lorentz layout, which {list(options)} share; "
                              f"pass method= (one of them), or name the file after its method (meru_vit_s.pth)")


# ----------------------------------------------------------------------------- model
def _vision_tower(sizes: Mapping) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=sizes["image_size"], patch_size=sizes["patch_size"],
                             embed_dim=sizes["vision_width"], depth=sizes["vision_layers"],
                             num_heads=sizes["vision_heads"], mlp_ratio=_MLP_RATIO, qkv_bias=True,
                             num_classes=0, global_pool="token", class_token=True,
                             norm_layer=nn.LayerNorm)  # eps 1e-5, as the authors build it


def _text_tower(sizes: Mapping) -> nn.Module:
    from open_clip.model import CLIPTextCfg, _build_text_tower

    cfg = CLIPTextCfg(context_length=sizes["context_length"], vocab_size=sizes["vocab_size"],
                      width=sizes["text_width"], heads=sizes["text_heads"], layers=sizes["text_layers"],
                      mlp_ratio=_MLP_RATIO, proj_type="linear", proj_bias=False)
    return _build_text_tower(sizes["embed_dim"], cfg)


def _text_target(key: str) -> str | None:
    """Released ``textual.*`` key -> open_clip ``TextTransformer`` key (None: not a weight)."""
    rest = key[len("textual."):]
    if rest.startswith("resblocks."):
        return "transformer." + rest
    return {"token_embed.weight": "token_embedding.weight", "posit_embed": "positional_embedding",
            "ln_final.weight": "ln_final.weight", "ln_final.bias": "ln_final.bias"}.get(rest)


class ReleasedVLM(nn.Module):
    """A released checkpoint as a hyplib model (see the module docstring for the conventions).

    Attributes:
        method: the hyplib :class:`~hyplib.methods.base.Method` that scores it.
        visual: timm ``VisionTransformer``; ``visual_proj``: ``nn.Linear(Wv, D, bias=False)``.
        text: open_clip ``TextTransformer`` (ends in the text projection).
        pixel_mean, pixel_std: (3, 1, 1) buffers from the file.
        root_feature: (D,) CLIP's stored root feature, or None.
        released_info: path, method, geometry, sizes, training state and unused keys.
    """

    def __init__(self, sizes: Mapping, method, geometry: str):
        super().__init__()
        import open_clip

        self.method, self.space, self.geometry = method, method.space, geometry
        self.embed_dim, self.context_length = sizes["embed_dim"], sizes["context_length"]
        self.image_size = sizes["image_size"]
        self.visual = _vision_tower(sizes)
        self.visual_proj = nn.Linear(sizes["vision_width"], sizes["embed_dim"], bias=False)
        self.text = _text_tower(sizes)
        self.tokenizer = open_clip.SimpleTokenizer(context_length=self.context_length)
        for name in ("pixel_mean", "pixel_std"):
            self.register_buffer(name, torch.zeros(3, 1, 1))
        self.register_buffer("log_logit_scale", torch.zeros(()))
        scalar = (sizes["k"],) if geometry == "product" else ()
        self.register_buffer("log_curv", torch.zeros(scalar))
        self._has_alpha = geometry != "euclidean"
        if self._has_alpha:
            self.register_buffer("log_alpha_image", torch.zeros(scalar))
            self.register_buffer("log_alpha_text", torch.zeros(scalar))
        self.root_feature: Tensor | None = None
        self.released_info: dict = {}
        self.requires_grad_(False)

    # ------------------------------------------------------------------ scalars
    @property
    def logit_scale(self) -> Tensor:
        """() exp of the stored log logit scale."""
        return self.log_logit_scale.exp()

    @property
    def curv(self) -> Tensor:
        """() or (k,) curvature ``c`` (stored log, exp'd; 1 for CLIP, which ignores it)."""
        return self.log_curv.exp()

    @property
    def alphas(self) -> dict[str, Tensor]:
        """``{"image": alpha, "text": alpha}`` (() or (k,)); empty for CLIP."""
        if not self._has_alpha:
            return {}
        return {"image": self.log_alpha_image.exp(), "text": self.log_alpha_text.exp()}

    # ------------------------------------------------------------------ encoders
    def tokenize(self, texts: list[str]) -> Tensor:
        """Strings -> (N, context_length) int64 tokens (CLIP's BPE via open_clip)."""
        return self.tokenizer(list(texts))

    def pixel_features(self, pixels: Tensor) -> Tensor:
        """(B, 3, S, S) pixels in [0, 1] -> (B, D) float32 features (projected, before alpha)."""
        x = (pixels - self.pixel_mean) / self.pixel_std
        return self.visual_proj(self.visual(x)).float()

    def image_features(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) images normalised with CLIP's mean/std (hyplib's convention) -> (B, D)."""
        from hyplib.data.preprocess import MEAN as CLIP_MEAN
        from hyplib.data.preprocess import STD as CLIP_STD

        mean = torch.tensor(CLIP_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        return self.pixel_features(images * std + mean)

    def text_features(self, tokens: Tensor) -> Tensor:
        """(B, L) tokens -> (B, D) float32 features at the end-of-text token, projected."""
        return self.text(tokens).float()

    def lift(self, features: Tensor, modality: str) -> Tensor:
        """(B, D) features -> (B, D) embeddings of the method's space (alpha, then expmap0)."""
        if modality not in ("image", "text"):
            raise ValueError(f"modality must be 'image' or 'text', got {modality!r}")
        return self.method.lift(features, alpha=self.alphas.get(modality), curv=self.curv)

    def encode_image(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) CLIP-normalised images -> (B, D) embeddings."""
        return self.lift(self.image_features(images), "image")

    def encode_pixels(self, pixels: Tensor) -> Tensor:
        """(B, 3, S, S) pixels in [0, 1] -> (B, D) embeddings."""
        return self.lift(self.pixel_features(pixels), "image")

    def encode_text(self, tokens: Tensor) -> Tensor:
        """(B, L) tokens -> (B, D) embeddings."""
        return self.lift(self.text_features(tokens), "text")

    def forward(self, batch: dict):
        """``{"image", "text"}`` -> :class:`~hyplib.methods.base.Embeddings` (no box inputs)."""
        from hyplib.methods.base import Embeddings

        return Embeddings(image=self.encode_image(batch["image"]), text=self.encode_text(batch["text"]),
                          curv=self.curv, logit_scale=self.logit_scale)

    # ------------------------------------------------------------------ loading
    @torch.no_grad()
    def load_released_state(self, state: Mapping[str, Tensor], path="<state dict>") -> list[str]:
        """Copy every key of a checked released state dict in; returns the keys left unused.

        Unused keys are PHyCLIP's inherited ``curv``/``visual_alpha``/``textual_alpha`` (its
        encoders read the per-factor ones) and ``textual.attn_mask`` (checked to be causal;
        open_clip builds the same mask itself).
        """
        visual = {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}
        self.visual.load_state_dict(visual, strict=True)
        self.visual_proj.weight.copy_(state["visual_proj.weight"])
        text = {}
        for key, value in state.items():
            if key.startswith("textual.") and (target := _text_target(key)) is not None:
                text[target] = value
        text["text_projection"] = state["textual_proj.weight"].t()
        self.text.load_state_dict(text, strict=True)
        mask = state["textual.attn_mask"]
        causal = torch.ones_like(mask, dtype=torch.bool).triu(1)
        if not torch.equal(mask.bool(), causal):
            raise ReleasedLayoutError(f"{path}: textual.attn_mask is not the causal (upper-triangular) mask "
                                      f"the text tower assumes")
        self.pixel_mean.copy_(state["pixel_mean"])
        self.pixel_std.copy_(state["pixel_std"])
        self.log_logit_scale.copy_(state["logit_scale"])
        unused = ["textual.attn_mask"]
        if self.geometry == "lorentz":
            self.log_curv.copy_(state["curv"])
            self.log_alpha_image.copy_(state["visual_alpha"])
            self.log_alpha_text.copy_(state["textual_alpha"])
        elif self.geometry == "product":
            k = self.log_curv.shape[0]
            self.log_curv.copy_(torch.stack([state[f"curvs.{i}"] for i in range(k)]))
            self.log_alpha_image.copy_(torch.stack([state[f"visual_concept_alphas.{i}"] for i in range(k)]))
            self.log_alpha_text.copy_(torch.stack([state[f"textual_concept_alphas.{i}"] for i in range(k)]))
            unused += ["curv", "visual_alpha", "textual_alpha"]
        return unused


def load_released(path, method: str | None = None, *, vision_heads: int | None = None,
                  text_heads: int | None = None, method_overrides: Mapping | None = None,
                  map_location="cpu") -> ReleasedVLM:
    """Build the hyplib model of a released checkpoint and load it (eval mode, no gradients).

    Args:
        path: a released ``.pth`` file (``{"model": state_dict, ...}`` or a bare state dict).
        method: hyplib method name; None infers it (module docstring: CLIP and PHyCLIP from the
            keys, MERU / HyCoCLIP / ATMG from the file name's first word).
        vision_heads, text_heads: attention heads, when a width is not one the released towers
            use (:data:`HEADS_BY_WIDTH`; text ``W // 64``).
        method_overrides: options for :func:`hyplib.methods.get` on top of
            :data:`RELEASED_OVERRIDES` (e.g. ``{"variant": "paper"}`` for ATMG).
        map_location: device of the returned model.

    Returns:
        :class:`ReleasedVLM`; ``model.released_info`` records the file, method, geometry, sizes,
        ``iteration``, ignored training state and unused keys (with why).

    Raises:
        FileNotFoundError, ReleasedLayoutError (unreadable or truncated file, another lineage,
        a missing, extra or mis-shaped key: named with both shapes, an ambiguous method).
    """
    from hyplib import methods

    path = Path(path)
    state, extras = read_checkpoint(path)
    geometry = released_geometry(state)
    sizes = released_sizes(state, vision_heads=vision_heads, text_heads=text_heads)
    _check_layout(state, released_layout(sizes, geometry), path)
    name = _resolve_method(geometry, method, path)
    opts = {**RELEASED_OVERRIDES.get(name, {}), "embed_dim": sizes["embed_dim"], **(method_overrides or {})}
    if geometry == "product":
        opts.update(k=sizes["k"], d=sizes["embed_dim"] // sizes["k"])
        opts.pop("embed_dim")
    resolved = methods.get(name, **opts)
    model = ReleasedVLM(sizes, resolved, geometry)
    unused = model.load_released_state(state, path)
    if "root" in extras:
        root = extras["root"]
        if not isinstance(root, Tensor) or tuple(root.shape) != (sizes["embed_dim"],):
            raise ReleasedLayoutError(f"{path}: top-level 'root' has shape {tuple(getattr(root, 'shape', ()))}, "
                                      f"expected ({sizes['embed_dim']},) (CLIP's root feature)")
        model.root_feature = root.float().to(map_location)
    why = {"textual.attn_mask": "checked causal; open_clip builds the same mask",
           "curv": "PHyCLIP's encoders use curvs.<i>", "visual_alpha": "PHyCLIP uses visual_concept_alphas.<i>",
           "textual_alpha": "PHyCLIP uses textual_concept_alphas.<i>"}
    model.released_info = {
        "path": str(path), "method": name, "geometry": geometry, "sizes": dict(sizes),
        "iteration": int(extras["iteration"]) if "iteration" in extras else None,
        "ignored_top_level": sorted(k for k in extras if k not in ("root", "iteration")),
        "unused_keys": {k: why[k] for k in unused}, "n_tensors": len(state),
    }
    return model.to(map_location).eval()


# ----------------------------------------------------------------------------- images
def paper_transform(image_size: int = EVAL_IMAGE_SIZE):
    """PIL image -> (3, S, S) float pixels in [0, 1]: the papers' zero-shot evaluation
    (shorter side resized to ``S`` with bicubic interpolation, centre crop ``S x S``)."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(image_size, interpolation=T.InterpolationMode.BICUBIC),
                      T.CenterCrop(image_size), T.ToTensor()])
