"""hyplib.models: tiny open_clip towers, learned scalars, clamps, param groups, training."""
from __future__ import annotations

import math

import open_clip
import pytest
import torch
import torch.nn.functional as F

from hyplib import lorentz, methods, models, product
from hyplib.methods import Embeddings

TINY = dict(image_size=16, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2,
            text_width=32, text_layers=1, text_heads=2, context_length=8, embed_dim=16)


def method_for(name, **kw):
    return methods.get(name, **({"k": 4, "d": 4} if name == "phyclip" else {}), **kw)


def tiny(name, **kw):
    torch.manual_seed(0)
    return models.build_model(TINY, method_for(name, **kw))


CAPTIONS = ["a red dog running", "two cats on a sofa", "an old green car", "a bowl of soup",
            "children in a park", "a plane in the sky"]


def batch(model, B=4, seed=0, boxes=True):
    g = torch.Generator().manual_seed(seed)
    out = {"image": torch.randn(B, 3, 16, 16, generator=g), "text": model.tokenize(CAPTIONS[:B])}
    if boxes:
        out["image_box"] = torch.randn(B, 3, 16, 16, generator=g)
        out["text_box"] = model.tokenize([c.split()[1] for c in CAPTIONS[:B]])
    return out


def test_tower_configs_paper_scale_from_open_clip():
    for name in ("ViT-B-16", "ViT-S-16"):
        vision, text = models.tower_configs({"vision_model": name}, 512)
        ref = open_clip.get_model_config(name)["vision_cfg"]
        assert (vision.width, vision.layers, vision.patch_size, vision.image_size) == (
            ref["width"], ref["layers"], ref["patch_size"], ref["image_size"])
        assert (text.width, text.layers, text.heads, text.context_length) == (512, 12, 8, 77)
        assert text.proj_bias is False
    with pytest.raises(ValueError, match=r"'ViT-H-14'.*ViT-S-16.*ViT-B-16"):
        models.tower_configs({"vision_model": "ViT-H-14"}, 512)
    with pytest.raises(ValueError, match=r"\['vision_widht'\].*vision_width"):
        models.tower_configs({"vision_widht": 8}, 512)


def test_resnet_tower_from_scratch():
    """vision_tower=resnet: open_clip's ModifiedResNet with vision_layers blocks per stage,
    vision_width stem channels and vision_heads attention-pool heads over 32 * width."""
    from open_clip.modified_resnet import ModifiedResNet

    cfg = {**TINY, "image_size": 32, "vision_tower": "resnet", "vision_width": 8, "vision_heads": 4}
    torch.manual_seed(0)
    model = models.build_model(cfg, method_for("meru"))
    assert isinstance(model.visual, ModifiedResNet)
    assert [len(getattr(model.visual, f"layer{i}")) for i in range(1, 5)] == [1, 1, 1, 1]
    assert model.visual.attnpool.num_heads == 4 and model.visual.attnpool.c_proj.out_features == 16
    emb = model(batch(model, boxes=False) | {"image": torch.randn(4, 3, 32, 32)})
    assert emb.image.shape == (4, 16) and torch.isfinite(emb.image).all()
    names = {n for g in models.param_groups(model, 0.1) if g["weight_decay"] == 0 for n in g["names"]}
    assert "visual.bn1.weight" in names and "visual.bn1.bias" in names   # no decay on batch norms
    with pytest.raises(ValueError, match=r"32 \* vision_width=256 must be divisible by vision_heads=3"):
        models.tower_configs({**cfg, "vision_heads": 3}, 16)
    with pytest.raises(ValueError, match=r"unknown vision_tower 'cnn'"):
        models.tower_configs({**cfg, "vision_tower": "cnn"}, 16)


@pytest.mark.parametrize("name", methods.names())
def test_forward_shapes_and_scalars(name):
    model = tiny(name)
    b = batch(model)
    emb = model(b)
    assert isinstance(emb, Embeddings)
    assert emb.image.shape == emb.text.shape == (4, 16) and emb.image.dtype == torch.float32
    assert (emb.image_box is not None) == model.method.uses_boxes
    assert model.tokenize(["a", "b c"]).shape == (2, 8)
    assert torch.isclose(model.logit_scale, torch.tensor(1 / 0.07))
    feats = model.image_features(b["image"])
    assert feats.shape == (4, 16)
    torch.testing.assert_close(emb.image, model.lift(feats, "image"))
    if model.method.geometry == "euclidean":
        assert model.alphas == {}
        torch.testing.assert_close(emb.image.norm(dim=-1), torch.ones(4))
    elif model.method.geometry == "lorentz":
        alpha = model.alphas["image"]
        assert alpha.shape == () and math.isclose(alpha.item(), 16 ** -0.5, rel_tol=1e-6)
        torch.testing.assert_close(emb.image, lorentz.expmap0(alpha * feats, curv=model.curv))
    else:
        alpha = model.alphas["text"]
        assert alpha.shape == (4,) and torch.allclose(alpha, torch.full((4,), 4 ** -0.5))
        assert model.curv.shape == (4,) and torch.allclose(model.curv, torch.ones(4))
        ref = product.expmap0(product.split(feats, 4) * model.alphas["image"][:, None], curv=model.curv)
        torch.testing.assert_close(emb.image, product.merge(ref))


def test_boxes_share_the_towers():
    model = tiny("hycoclip")
    b = batch(model)
    b["image_box"], b["text_box"] = b["image"].clone(), b["text"].clone()
    emb = model(b)
    torch.testing.assert_close(emb.image_box, emb.image)
    torch.testing.assert_close(emb.text_box, emb.text)


def test_exactly_one_bias_free_projection():
    model = tiny("meru")
    assert set(dict(model.named_children())) == {"visual", "text"}
    assert model.visual.proj.shape == (32, 16)
    assert isinstance(model.text.text_projection, torch.nn.Parameter)
    assert model.text.text_projection.shape == (32, 16)
    # The features are exactly pooled @ proj (no bias, no second layer).
    tokens = model.tokenize(["a cat"])
    with torch.no_grad():
        x = model.text.token_embedding(tokens) + model.text.positional_embedding
        x = model.text.ln_final(model.text.transformer(x, attn_mask=model.text.attn_mask))
        pooled = x[torch.arange(1), tokens.argmax(-1)]
        torch.testing.assert_close(model.text_features(tokens), pooled @ model.text.text_projection)


def test_missing_boxes_named():
    model = tiny("phyclip")
    with pytest.raises(ValueError, match=r"'phyclip'.*image_box.*text_box.*missing \['image_box', 'text_box'\]"):
        model(batch(model, boxes=False))


def test_embed_dim_must_match_factors():
    with pytest.raises(ValueError, match=r"embed_dim=32.*k\*d=16"):
        models.build_model({**TINY, "embed_dim": 32}, method_for("phyclip"))


@pytest.mark.slow
def test_curvature_fixed_or_learnable():
    model = tiny("atmg", variant="code")
    names = dict(model.named_parameters())
    assert "log_curv" not in names and math.isclose(float(model.curv), 0.1, rel_tol=1e-6)
    assert "log_curv" in dict(tiny("meru").named_parameters())
    assert "log_curv" not in dict(tiny("meru", learn_curv=False).named_parameters())


@pytest.mark.parametrize("name", ["meru", "atmg", "phyclip"])
def test_clamp_parameters(name):
    model = tiny(name)
    lo, hi = model.method.defaults["curv_clamp"]
    with torch.no_grad():
        model.log_logit_scale.fill_(10.0)
        model.log_alpha_image.fill_(3.0)
        model.log_curv.fill_(50.0)
        if name == "phyclip":
            model.log_curv[0] = -50.0
    model.clamp_parameters_()
    assert math.isclose(model.log_logit_scale.exp().item(), 100.0, rel_tol=1e-6)
    assert torch.allclose(model.log_alpha_image.exp(), torch.ones(()))
    c = model.log_curv.detach().exp()
    assert torch.all(c <= hi * (1 + 1e-6)) and torch.all(c >= lo * (1 - 1e-6))
    if name == "phyclip":
        assert math.isclose(float(c[0]), lo, rel_tol=1e-6) and math.isclose(float(c[1]), hi, rel_tol=1e-6)
    if name == "atmg":  # ATMG's clamp is [c0/5, 5 c0]
        assert (lo, hi) == pytest.approx((0.2, 5.0))


def test_properties_clamp_without_mutating():
    model = tiny("meru")
    with torch.no_grad():
        model.log_logit_scale.fill_(10.0)
    assert math.isclose(model.logit_scale.item(), 100.0, rel_tol=1e-6)
    assert model.log_logit_scale.item() == 10.0


@pytest.mark.parametrize("name", methods.names())
def test_param_groups(name):
    model = tiny(name)
    decay, no_decay = models.param_groups(model, 0.2)
    assert decay["weight_decay"] == 0.2 and no_decay["weight_decay"] == 0.0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(decay["names"]) | set(no_decay["names"]) == trainable
    assert not set(decay["names"]) & set(no_decay["names"])
    for n, p in model.named_parameters():
        if p.ndim < 2 or "bias" in n or ".ln_" in n or n.startswith(("log_", "ln_")):
            assert n in no_decay["names"], n
    scalars = {n for n in trainable if n.startswith("log_")}
    assert "log_logit_scale" in scalars and scalars <= set(no_decay["names"])
    if model.method.geometry != "euclidean":
        assert {"log_alpha_image", "log_alpha_text", "log_curv"} <= scalars
    assert {"visual.proj", "text.text_projection", "visual.conv1.weight", "text.token_embedding.weight",
            "text.transformer.resblocks.0.attn.in_proj_weight"} <= set(decay["names"])
    # The groups feed AdamW as they are.
    torch.optim.AdamW([{k: v for k, v in g.items()} for g in (decay, no_decay)], lr=1e-3)


def test_autocast_lifts_in_float32():
    model = tiny("hycoclip")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = model(batch(model))
        out = model.method.loss(emb)
    assert emb.image.dtype == emb.text_box.dtype == torch.float32
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])


@pytest.mark.slow
@pytest.mark.parametrize("name", methods.names() + ["atmg:code"])
def test_tiny_model_trains(name):
    """50 AdamW steps on one random batch through the full model: the loss falls."""
    name, _, variant = name.partition(":")
    model = tiny(name, **({"variant": variant} if variant else {}))
    opt = torch.optim.AdamW(models.param_groups(model, 0.1), lr=1e-3)
    b = batch(model, B=6, boxes=model.method.uses_boxes)
    losses = []
    for _ in range(50):
        out = model.method.loss(model(b))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        model.clamp_parameters_()
        losses.append(out["loss"].item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], (name, losses[0], losses[-1])


def test_clip_lift_is_normalisation():
    model = tiny("clip")
    f = torch.randn(3, 16)
    torch.testing.assert_close(model.lift(f, "text"), F.normalize(f, dim=-1))
    with pytest.raises(ValueError, match="modality"):
        model.lift(f, "audio")
