"""hyplib.released: the authors' checkpoint layout loaded into hyplib models.

No real files: random-valued state dicts in the released layout (tests/released_fake.py, the
tests' own account of it) are written, loaded and run; embeddings must equal an independent
float32 forward pass written from the tensors (patch embedding, attention, MLP, norms, class
token / end-of-text pooling, projection, alpha, exponential map) to 1e-5.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image
from released_fake import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SMALL,
    VIT_S,
    fake_state,
    ref_lift,
    ref_pixel_features,
    ref_text_features,
    write_fake,
)

from hyplib.released import ReleasedLayoutError, load_released, paper_transform

CAPTIONS = ["a photo of a dog.", "two red cubes on a wooden table beside a small green sphere", "tree"]
ATOL = 1e-5  # float32 parity with the reference forward

#: file name -> (fake kind, method load_released must infer)
NAMES = {"clip_vit_s.pth": ("clip", "clip"), "meru_vit_s.pth": ("meru", "meru"),
         "hycoclip_vit_s.pth": ("meru", "hycoclip"), "atmg_vit_s.pth": ("meru", "atmg"),
         "phyclip_vit_b.pth": ("phyclip", "phyclip")}


def _pixels(n=3, side=32, seed=0):
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def _close(a, b):
    err = float((a - b).abs().max())
    assert err <= ATOL, f"max abs error {err:.3g} > {ATOL}"
    return err


@pytest.mark.parametrize("name", sorted(NAMES))
def test_small_parity_every_layout(tmp_path, name):
    kind, method = NAMES[name]
    state = write_fake(tmp_path / name, kind)
    model = load_released(tmp_path / name)
    assert model.method.name == method
    assert model.released_info["iteration"] == 123
    heads = SMALL["vw"] // 64
    px = _pixels()
    feats = ref_pixel_features(state, px, heads)
    _close(model.pixel_features(px), feats)
    _close(model.encode_pixels(px), ref_lift(state, feats, "image", kind))
    tokens = model.tokenize(CAPTIONS)
    tfeats = ref_text_features(state, tokens, SMALL["tw"] // 64)
    _close(model.text_features(tokens), tfeats)
    _close(model.encode_text(tokens), ref_lift(state, tfeats, "text", kind))


def test_sizes_scalars_and_info(tmp_path):
    state = write_fake(tmp_path / "phyclip_vit_b.pth", "phyclip", k=8)
    model = load_released(tmp_path / "phyclip_vit_b.pth")
    sizes = model.released_info["sizes"]
    assert (sizes["vision_width"], sizes["vision_layers"], sizes["patch_size"], sizes["image_size"]) == (128, 2, 8, 32)
    assert (sizes["text_width"], sizes["text_layers"], sizes["context_length"], sizes["embed_dim"], sizes["k"]) == \
        (128, 2, 16, 32, 8)
    assert model.method.space.k == 8 and model.method.space.d == 4
    torch.testing.assert_close(model.curv, torch.stack([state[f"curvs.{i}"] for i in range(8)]).exp())
    torch.testing.assert_close(model.alphas["text"],
                               torch.stack([state[f"textual_concept_alphas.{i}"] for i in range(8)]).exp())
    torch.testing.assert_close(model.logit_scale, torch.tensor(1 / 0.07))
    # MERU's three scalars are inherited by PHyCLIP but never read by its encoders: named, with why.
    assert set(model.released_info["unused_keys"]) == {"textual.attn_mask", "curv", "visual_alpha", "textual_alpha"}
    assert model.image_size == 32 and model.context_length == 16


def test_atmg_scored_with_the_released_code_variant(tmp_path):
    write_fake(tmp_path / "atmg_vit_s.pth", "meru")
    assert load_released(tmp_path / "atmg_vit_s.pth").method.defaults["variant"] == "code"
    paper = load_released(tmp_path / "atmg_vit_s.pth", method_overrides={"variant": "paper"})
    assert paper.method.defaults["variant"] == "paper"


def test_heads_override_changes_the_forward(tmp_path):
    state = write_fake(tmp_path / "clip_x.pth", "clip")
    model = load_released(tmp_path / "clip_x.pth", vision_heads=4, text_heads=4)
    px, tokens = _pixels(2), model.tokenize(CAPTIONS[:2])
    _close(model.pixel_features(px), ref_pixel_features(state, px, 4))
    _close(model.text_features(tokens), ref_text_features(state, tokens, 4))
    assert float((ref_pixel_features(state, px, 2) - ref_pixel_features(state, px, 4)).abs().max()) > 1e-3


def test_clip_normalised_input_and_evaluation_suite(tmp_path):
    """The suite feeds uint8 arrays normalised with CLIP's statistics; the model maps them back
    to [0, 1] and applies the file's ImageNet mean/std."""
    from hyplib.evaluation import _common as C

    state = write_fake(tmp_path / "meru_vit_s.pth", "meru")
    model = load_released(tmp_path / "meru_vit_s.pth")
    torch.testing.assert_close(model.pixel_mean.flatten(), torch.tensor(IMAGENET_MEAN))
    torch.testing.assert_close(model.pixel_std.flatten(), torch.tensor(IMAGENET_STD))
    arr = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    pixels = torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255
    expect = ref_lift(state, ref_pixel_features(state, pixels, 2), "image", "meru")
    _close(C.encode_images(model, arr, batch_size=3), expect)
    tfeats = ref_text_features(state, model.tokenize(CAPTIONS), 2)
    _close(C.encode_texts(model, CAPTIONS), ref_lift(state, tfeats, "text", "meru"))
    assert C.model_image_size(model) == 32


def test_clip_root_feature(tmp_path):
    write_fake(tmp_path / "clip_vit_s.pth", "clip", root=True)
    model = load_released(tmp_path / "clip_vit_s.pth")
    assert model.root_feature.shape == (SMALL["dim"],)
    torch.save({"model": fake_state("clip", **SMALL), "root": torch.zeros(5)}, tmp_path / "clip_bad.pth")
    with pytest.raises(ReleasedLayoutError, match=r"'root' has shape \(5,\), expected \(32,\)"):
        load_released(tmp_path / "clip_bad.pth")


@pytest.mark.parametrize("layout", ["bare", "wrapped"])
def test_bare_state_dict_loads_too(tmp_path, layout):
    state = fake_state("clip", **SMALL)
    torch.save(state if layout == "bare" else {"model": state}, tmp_path / "c.pth")
    assert load_released(tmp_path / "c.pth").released_info["iteration"] is None


# ----------------------------------------------------------------------------- preprocessing
@pytest.mark.parametrize("size", [(300, 200), (200, 333), (224, 224), (640, 481)])
def test_paper_transform_is_resize_bicubic_then_centre_crop(size):
    """Shorter side to 224 (bicubic, the long side truncated), centre crop rounded, /255."""
    w, h = size
    rng = np.random.default_rng(w * h)
    img = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
    short = min(w, h)
    nw, nh = (224, int(224 * h / w)) if w == short else (int(224 * w / h), 224)
    resized = np.asarray(img.resize((nw, nh), Image.BICUBIC), dtype=np.float32) / 255
    top, left = int(round((nh - 224) / 2)), int(round((nw - 224) / 2))
    expect = torch.from_numpy(resized[top:top + 224, left:left + 224]).permute(2, 0, 1)
    got = paper_transform()(img)
    assert got.shape == (3, 224, 224)
    torch.testing.assert_close(got, expect, rtol=0, atol=0)


# ----------------------------------------------------------------------------- errors
def test_truncated_file(tmp_path):
    write_fake(tmp_path / "meru_vit_s.pth", "meru")
    data = (tmp_path / "meru_vit_s.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ReleasedLayoutError, match=r"cut\.pth: cannot be read.*truncated"):
        load_released(tmp_path / "cut.pth", method="meru")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_released(tmp_path / "nope.pth")


def test_missing_key_named(tmp_path):
    state = fake_state("meru", **SMALL)
    del state["visual.blocks.1.mlp.fc2.bias"]
    torch.save({"model": state}, tmp_path / "meru_vit_s.pth")
    with pytest.raises(ReleasedLayoutError, match=r"missing.*visual\.blocks\.1\.mlp\.fc2\.bias"):
        load_released(tmp_path / "meru_vit_s.pth")


def test_shape_mismatch_names_key_and_both_shapes(tmp_path):
    state = fake_state("meru", **SMALL)
    state["textual_proj.weight"] = torch.zeros(32, 129)
    torch.save({"model": state}, tmp_path / "meru_vit_s.pth")
    with pytest.raises(ReleasedLayoutError, match=r"'textual_proj\.weight' has shape \(32, 129\).*\(32, 128\)"):
        load_released(tmp_path / "meru_vit_s.pth")


def test_extra_key_named(tmp_path):
    state = fake_state("clip", **SMALL)
    state["visual.head.weight"] = torch.zeros(10, 128)
    torch.save({"model": state}, tmp_path / "clip_vit_s.pth")
    with pytest.raises(ReleasedLayoutError, match=r"outside the released layout.*visual\.head\.weight"):
        load_released(tmp_path / "clip_vit_s.pth")


def test_unknown_top_level_key(tmp_path):
    torch.save({"model": fake_state("clip", **SMALL), "ema": {}}, tmp_path / "clip_vit_s.pth")
    with pytest.raises(ReleasedLayoutError, match=r"top-level key\(s\) \['ema'\]"):
        load_released(tmp_path / "clip_vit_s.pth")


def test_other_lineages_named(tmp_path):
    openai = {"positional_embedding": torch.zeros(77, 8), "token_embedding.weight": torch.zeros(10, 8),
              "visual.conv1.weight": torch.zeros(8, 3, 4, 4), "text_projection": torch.zeros(8, 8)}
    torch.save(openai, tmp_path / "ViT-B-16.pt")
    with pytest.raises(ReleasedLayoutError, match="OpenAI CLIP / open_clip"):
        load_released(tmp_path / "ViT-B-16.pt")
    torch.save({"model": {"text.token_embedding.weight": torch.zeros(2)}, "config": {}, "step": 1},
               tmp_path / "final.pt")
    with pytest.raises(ReleasedLayoutError, match="load_trained"):
        load_released(tmp_path / "final.pt")


def test_lorentz_method_needs_a_name(tmp_path):
    write_fake(tmp_path / "model.pth", "meru")
    with pytest.raises(ReleasedLayoutError, match=r"\['meru', 'hycoclip', 'atmg'\] share; pass method="):
        load_released(tmp_path / "model.pth")
    assert load_released(tmp_path / "model.pth", method="hycoclip").method.name == "hycoclip"
    with pytest.raises(ReleasedLayoutError, match="method='clip' does not fit"):
        load_released(tmp_path / "model.pth", method="clip")


def test_clip_file_refuses_a_hyperbolic_method(tmp_path):
    write_fake(tmp_path / "clip_vit_s.pth", "clip")
    with pytest.raises(ReleasedLayoutError, match="method='meru' does not fit.*euclidean"):
        load_released(tmp_path / "clip_vit_s.pth", method="meru")


def test_non_causal_text_mask(tmp_path):
    state = fake_state("clip", **SMALL)
    state["textual.attn_mask"] = torch.zeros(16, 16, dtype=torch.bool)
    torch.save({"model": state}, tmp_path / "clip_vit_s.pth")
    with pytest.raises(ReleasedLayoutError, match="attn_mask is not the causal"):
        load_released(tmp_path / "clip_vit_s.pth")


# ----------------------------------------------------------------------------- full size
@pytest.mark.slow
@pytest.mark.parametrize("kind,name", [("meru", "meru_vit_s.pth"), ("clip", "clip_vit_s.pth")])
def test_vit_s_full_size_parity(tmp_path, kind, name):
    """MERU's ViT-S (384 wide, 12 layers, 12 heads, 224 px, patch 16) and the 12-layer text tower."""
    state = write_fake(tmp_path / name, kind, **VIT_S)
    t0 = time.perf_counter()
    model = load_released(tmp_path / name)
    load_s = time.perf_counter() - t0
    info = model.released_info["sizes"]
    assert (info["vision_heads"], info["text_heads"], info["vision_layers"], info["text_layers"]) == (12, 8, 12, 12)
    px = _pixels(2, 224)
    with torch.no_grad():
        feats = ref_pixel_features(state, px, 12)
        _close(model.pixel_features(px), feats)
        _close(model.encode_pixels(px), ref_lift(state, feats, "image", kind))
        tokens = model.tokenize(CAPTIONS)
        tfeats = ref_text_features(state, tokens, 8)
        _close(model.text_features(tokens), tfeats)
        _close(model.encode_text(tokens), ref_lift(state, tfeats, "text", kind))
    assert load_s < 120


class _Pickled:
    """Stands for a Python object in a checkpoint (the released files hold none)."""


def test_python_objects_are_refused_not_unpickled(tmp_path):
    torch.save({"model": fake_state("clip", **SMALL), "iteration": _Pickled()}, tmp_path / "clip_vit_s.pth")
    with pytest.raises(ReleasedLayoutError, match="refused to unpickle"):
        load_released(tmp_path / "clip_vit_s.pth")
