"""The first-token attention pool against open_clip's AttentionPool2d: same outputs and
gradients (float64 to rounding, float32 close), same parameters, and the model uses it."""
from __future__ import annotations

import copy

import pytest
import torch
from open_clip.modified_resnet import AttentionPool2d

from hyplib import methods, models
from hyplib.attention_pool import FirstTokenAttentionPool, use_first_token_pool

TINY_RESNET = {"vision_tower": "resnet", "vision_layers": 1, "vision_width": 8, "vision_heads": 4,
               "image_size": 32, "text_width": 32, "text_layers": 1, "text_heads": 2, "context_length": 16}


def _pools(side: int, width: int = 64, heads: int = 8, out: int = 24, dtype=torch.float64):
    torch.manual_seed(side)
    reference = AttentionPool2d(side, width, heads, out).to(dtype)
    with torch.no_grad():  # move every parameter off its initial distribution, biases included
        for p in reference.parameters():
            p.add_(0.1 * torch.randn_like(p))
    fast = copy.deepcopy(reference)
    fast.__class__ = FirstTokenAttentionPool
    return reference, fast


@pytest.mark.parametrize("side", [1, 2, 3])
def test_outputs_and_gradients_match_open_clip_in_float64(side):
    reference, fast = _pools(side)
    x = torch.randn(5, 64, side, side, dtype=torch.float64)
    x_ref, x_fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y_fast = reference(x_ref), fast(x_fast)
    assert y_fast.shape == y_ref.shape == (5, 24)
    torch.testing.assert_close(y_fast, y_ref, rtol=0, atol=1e-12)
    w = torch.randn_like(y_ref)
    (y_ref * w).sum().backward()
    (y_fast * w).sum().backward()
    torch.testing.assert_close(x_fast.grad, x_ref.grad, rtol=0, atol=1e-12)
    for (name, p_ref), p_fast in zip(reference.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, rtol=0, atol=1e-12, msg=name)


def test_float32_outputs_are_close_to_open_clips():
    reference, fast = _pools(1, dtype=torch.float32)
    x = torch.randn(16, 64, 1, 1)
    y_ref, y_fast = reference(x), fast(x)
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-5, atol=1e-5)


def test_parameters_and_state_dict_are_open_clips():
    reference, fast = _pools(2)
    assert isinstance(fast, AttentionPool2d)
    assert list(fast.state_dict()) == list(reference.state_dict())
    fast.load_state_dict(reference.state_dict())  # a checkpoint of either loads into the other


def test_use_first_token_pool_swaps_resnet_pools_once_and_leaves_vits_alone():
    resnet = models.build_model(TINY_RESNET, methods.get("clip"))
    assert type(resnet.visual.attnpool) is FirstTokenAttentionPool
    assert use_first_token_pool(resnet.visual) is resnet.visual
    assert type(resnet.visual.attnpool) is FirstTokenAttentionPool
    vit_cfg = {**TINY_RESNET, "vision_tower": "vit", "vision_width": 32, "vision_heads": 2, "patch_size": 8}
    vit = models.build_model(vit_cfg, methods.get("clip"))
    assert not hasattr(vit.visual, "attnpool")
    before = [name for name, _ in vit.visual.named_modules()]
    use_first_token_pool(vit.visual)
    assert [name for name, _ in vit.visual.named_modules()] == before


def test_model_image_features_equal_open_clips_pool_in_float64():
    torch.manual_seed(0)
    model = models.build_model(TINY_RESNET, methods.get("meru")).double().eval()
    images = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    fast = model.visual(images)
    model.visual.attnpool.__class__ = AttentionPool2d
    torch.testing.assert_close(fast, model.visual(images), rtol=0, atol=1e-12)
