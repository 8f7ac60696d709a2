"""Random-valued state dicts in the released (MERU-lineage) key layout, written from the
authors' model definitions independently of ``hyplib.released`` (the tests' own account of
the layout), plus an independent float32 forward pass computed from the tensors alone.

Sizes: ``vw, vl`` image tower width/depth, ``p`` patch, ``img`` image side, ``tw, tl`` text
width/depth, ``ctx`` context length, ``dim`` embedding width, ``k`` PHyCLIP factors.
"""
from __future__ import annotations

import math

import torch

VOCAB = 49408
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SMALL = dict(vw=128, vl=2, p=8, img=32, tw=128, tl=2, ctx=16, dim=32)
VIT_S = dict(vw=384, vl=12, p=16, img=224, tw=512, tl=12, ctx=77, dim=512)


def fake_state(kind: str = "meru", *, seed: int = 0, vw, vl, p, img, tw, tl, ctx, dim, k: int = 8) -> dict:
    """A state dict of ``kind`` ("clip", "meru" (any Lorentz method) or "phyclip")."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=0.02, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean

    s = {"visual.cls_token": rnd(1, 1, vw, std=0.5), "visual.pos_embed": rnd(1, (img // p) ** 2 + 1, vw, std=0.5),
         "visual.patch_embed.proj.weight": rnd(vw, 3, p, p, std=0.05), "visual.patch_embed.proj.bias": rnd(vw),
         "visual.norm.weight": rnd(vw, std=0.1, mean=1.0), "visual.norm.bias": rnd(vw, std=0.1)}
    for i in range(vl):
        b = f"visual.blocks.{i}."
        s[b + "norm1.weight"], s[b + "norm1.bias"] = rnd(vw, std=0.1, mean=1.0), rnd(vw, std=0.1)
        s[b + "attn.qkv.weight"], s[b + "attn.qkv.bias"] = rnd(3 * vw, vw, std=vw ** -0.5), rnd(3 * vw)
        s[b + "attn.proj.weight"], s[b + "attn.proj.bias"] = rnd(vw, vw, std=vw ** -0.5), rnd(vw)
        s[b + "norm2.weight"], s[b + "norm2.bias"] = rnd(vw, std=0.1, mean=1.0), rnd(vw, std=0.1)
        s[b + "mlp.fc1.weight"], s[b + "mlp.fc1.bias"] = rnd(4 * vw, vw, std=vw ** -0.5), rnd(4 * vw)
        s[b + "mlp.fc2.weight"], s[b + "mlp.fc2.bias"] = rnd(vw, 4 * vw, std=(4 * vw) ** -0.5), rnd(vw)
    s["textual.token_embed.weight"] = rnd(VOCAB, tw, std=0.5)
    s["textual.posit_embed"] = rnd(ctx, tw, std=0.1)
    for i in range(tl):
        b = f"textual.resblocks.{i}."
        s[b + "attn.in_proj_weight"], s[b + "attn.in_proj_bias"] = rnd(3 * tw, tw, std=tw ** -0.5), rnd(3 * tw)
        s[b + "attn.out_proj.weight"], s[b + "attn.out_proj.bias"] = rnd(tw, tw, std=tw ** -0.5), rnd(tw)
        s[b + "ln_1.weight"], s[b + "ln_1.bias"] = rnd(tw, std=0.1, mean=1.0), rnd(tw, std=0.1)
        s[b + "mlp.c_fc.weight"], s[b + "mlp.c_fc.bias"] = rnd(4 * tw, tw, std=tw ** -0.5), rnd(4 * tw)
        s[b + "mlp.c_proj.weight"], s[b + "mlp.c_proj.bias"] = rnd(tw, 4 * tw, std=(4 * tw) ** -0.5), rnd(tw)
        s[b + "ln_2.weight"], s[b + "ln_2.bias"] = rnd(tw, std=0.1, mean=1.0), rnd(tw, std=0.1)
    s["textual.ln_final.weight"], s["textual.ln_final.bias"] = rnd(tw, std=0.1, mean=1.0), rnd(tw, std=0.1)
    # The authors build the mask as -inf above the diagonal, then store it as bool.
    s["textual.attn_mask"] = torch.triu(torch.full((ctx, ctx), float("-inf")), diagonal=1).bool()
    s["visual_proj.weight"] = rnd(dim, vw, std=vw ** -0.5)
    s["textual_proj.weight"] = rnd(dim, tw, std=tw ** -0.5)
    s["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    s["pixel_mean"] = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    s["pixel_std"] = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    if kind in ("meru", "phyclip"):
        s["curv"] = torch.tensor(math.log(0.7))
        s["visual_alpha"] = torch.tensor(math.log(0.9 * dim ** -0.5))
        s["textual_alpha"] = torch.tensor(math.log(1.1 * dim ** -0.5))
    if kind == "phyclip":
        for i in range(k):
            s[f"curvs.{i}"] = torch.tensor(math.log(0.5 + i / k))
            s[f"visual_concept_alphas.{i}"] = torch.tensor(math.log((0.8 + 0.4 * i / k) * (dim // k) ** -0.5))
            s[f"textual_concept_alphas.{i}"] = torch.tensor(math.log((1.2 - 0.4 * i / k) * (dim // k) ** -0.5))
    return s


def write_fake(path, kind: str = "meru", *, seed: int = 0, root: bool = False, **sizes) -> dict:
    """Save ``{"model": state, "iteration": 123}`` (plus CLIP's ``root``) to ``path``; returns state."""
    sizes = {**SMALL, **sizes}
    state = fake_state(kind, seed=seed, **sizes)
    obj = {"model": state, "iteration": 123}
    if root:
        obj["root"] = torch.randn(sizes["dim"], generator=torch.Generator().manual_seed(seed + 1))
    torch.save(obj, path)
    return state


# ----------------------------------------------------------------------------- reference forward
def _ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _attention(x, w_in, b_in, w_out, b_out, heads, causal):
    n, length, width = x.shape
    q, k, v = (x @ w_in.T + b_in).split(width, dim=-1)
    hd = width // heads

    def split(t):
        return t.reshape(n, length, heads, hd).transpose(1, 2)

    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(hd)
    if causal:
        future = torch.ones(length, length, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
    out = torch.softmax(scores, dim=-1) @ split(v)
    return out.transpose(1, 2).reshape(n, length, width) @ w_out.T + b_out


def ref_pixel_features(s: dict, pixels, heads: int):
    """(B, 3, S, S) pixels in [0, 1] -> (B, D): normalise, patchify, ViT, class token, project."""
    x = (pixels - s["pixel_mean"]) / s["pixel_std"]
    w = s["visual.patch_embed.proj.weight"]
    width, _, p, _ = w.shape
    b, _, side, _ = x.shape
    grid = side // p
    patches = x.reshape(b, 3, grid, p, grid, p).permute(0, 2, 4, 1, 3, 5).reshape(b, grid * grid, 3 * p * p)
    tokens = patches @ w.reshape(width, -1).T + s["visual.patch_embed.proj.bias"]
    h = torch.cat([s["visual.cls_token"].expand(b, 1, width), tokens], dim=1) + s["visual.pos_embed"]
    i = 0
    while f"visual.blocks.{i}.norm1.weight" in s:
        pre = f"visual.blocks.{i}."
        a = _ln(h, s[pre + "norm1.weight"], s[pre + "norm1.bias"])
        h = h + _attention(a, s[pre + "attn.qkv.weight"], s[pre + "attn.qkv.bias"], s[pre + "attn.proj.weight"],
                           s[pre + "attn.proj.bias"], heads, causal=False)
        m = _ln(h, s[pre + "norm2.weight"], s[pre + "norm2.bias"])
        h = h + _gelu(m @ s[pre + "mlp.fc1.weight"].T + s[pre + "mlp.fc1.bias"]) @ s[pre + "mlp.fc2.weight"].T \
            + s[pre + "mlp.fc2.bias"]
        i += 1
    h = _ln(h, s["visual.norm.weight"], s["visual.norm.bias"])
    return h[:, 0] @ s["visual_proj.weight"].T


def ref_text_features(s: dict, tokens, heads: int):
    """(B, L) tokens -> (B, D): embed, causal blocks, final norm, end-of-text token, project."""
    length = tokens.shape[1]
    h = s["textual.token_embed.weight"][tokens] + s["textual.posit_embed"][:length]
    i = 0
    while f"textual.resblocks.{i}.ln_1.weight" in s:
        pre = f"textual.resblocks.{i}."
        a = _ln(h, s[pre + "ln_1.weight"], s[pre + "ln_1.bias"])
        h = h + _attention(a, s[pre + "attn.in_proj_weight"], s[pre + "attn.in_proj_bias"],
                           s[pre + "attn.out_proj.weight"], s[pre + "attn.out_proj.bias"], heads, causal=True)
        m = _ln(h, s[pre + "ln_2.weight"], s[pre + "ln_2.bias"])
        h = h + _gelu(m @ s[pre + "mlp.c_fc.weight"].T + s[pre + "mlp.c_fc.bias"]) @ s[pre + "mlp.c_proj.weight"].T \
            + s[pre + "mlp.c_proj.bias"]
        i += 1
    h = _ln(h, s["textual.ln_final.weight"], s["textual.ln_final.bias"])
    eot = tokens.argmax(dim=-1)  # end-of-text has the largest id
    return h[torch.arange(tokens.shape[0]), eot] @ s["textual_proj.weight"].T


def ref_lift(s: dict, feats, modality: str, kind: str):
    """Features -> embeddings: L2-normalise (CLIP), or alpha then the exponential map at the root."""
    if kind == "clip":
        return feats / feats.norm(dim=-1, keepdim=True)
    if kind == "phyclip":
        k = sum(1 for key in s if key.startswith("curvs."))
        name = "visual_concept_alphas" if modality == "image" else "textual_concept_alphas"
        alpha = torch.stack([s[f"{name}.{i}"] for i in range(k)]).exp().view(1, k, 1)
        c = torch.stack([s[f"curvs.{i}"] for i in range(k)]).exp().view(1, k, 1)
        v = feats.reshape(feats.shape[0], k, -1) * alpha
    else:
        alpha = s["visual_alpha" if modality == "image" else "textual_alpha"].exp()
        c = s["curv"].exp()
        v = feats * alpha
    r = torch.sqrt(c) * v.norm(dim=-1, keepdim=True)
    return (torch.sinh(r) / r * v).reshape(feats.shape)
