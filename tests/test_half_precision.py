"""Half-precision embeddings are upcast before any objective's arithmetic (issue 19, part 4).

float16 tops out at 65504, so a squared norm of a point of norm > ~256 (ARGENT's chordal
distance: NaN above ~180) overflows if computed in half precision. Every method's loss on
float16/bfloat16 embeddings of large norm must be finite and equal to the float32 loss of
the same (rounded) values.
"""
import pytest
import torch

from hyplib import methods
from hyplib.methods import Embeddings
from hyplib.methods.argent import chordal_dist


def _config(name):
    return {"k": 2, "d": 4} if name == "phyclip" else {}


def _embeddings(method, dtype, norm, B=6, D=8, seed=0):
    """Leaves in ``dtype`` (requiring grad) and the Embeddings built from them; space points of
    norm ``norm`` (unit vectors for the euclidean method)."""
    D = method.defaults.get("k", 1) * method.defaults.get("d", D) if method.geometry == "product" else D
    g = torch.Generator().manual_seed(seed)
    feats = []
    for _ in range(4):
        x = torch.randn(B, D, generator=g)
        x = x / x.norm(dim=-1, keepdim=True) * (1.0 if method.geometry == "euclidean" else norm)
        feats.append(x.to(dtype).requires_grad_())
    k = (method.defaults["k"],) if method.geometry == "product" else ()
    curv, scale = torch.full(k, 1.0, dtype=dtype), torch.tensor(10.0, dtype=dtype)
    boxes = feats[2:] if method.uses_boxes else []
    return feats, Embeddings(feats[0], feats[1], curv, scale, *boxes)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", methods.names() + ["atmg:code"])
def test_half_precision_embeddings_are_upcast(name, dtype):
    name, _, variant = name.partition(":")
    method = methods.get(name, **_config(name), **({"variant": variant} if variant else {}))
    feats, emb = _embeddings(method, dtype, norm=400.0)
    assert emb.image.dtype == torch.float32 and emb.curv.dtype == torch.float32
    out = method.loss(emb)
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"]), (name, out["logs"])
    out["loss"].backward()
    assert all(f.grad is None or torch.isfinite(f.grad).all() for f in feats)
    # The same rounded values given in float32: the same loss, exactly.
    ref = Embeddings(*(t.detach().float() if t is not None else None for t in
                       (emb.image, emb.text, emb.curv, emb.logit_scale, emb.image_box, emb.text_box)))
    assert method.loss(ref)["loss"].item() == out["loss"].item()


def test_chordal_distance_in_half_precision_is_upcast():
    """|x - y|^2 of points of norm 200 is 80000 > 65504, float16's largest value: both the
    function itself and Embeddings work in float32, so the distance stays finite and exact."""
    x = torch.tensor([[200.0, 0.0]])
    y = torch.tensor([[0.0, 200.0]])
    assert ((x.half() - y.half()) ** 2).sum().isinf()
    assert chordal_dist(x.half(), y.half(), curv=1.0).item() == pytest.approx(
        chordal_dist(x.double(), y.double(), curv=1.0).item(), rel=1e-5)
    emb = Embeddings(x.half(), y.half(), torch.tensor(1.0, dtype=torch.float16), torch.tensor(1.0))
    d = chordal_dist(emb.image, emb.text, curv=emb.curv)
    assert torch.isfinite(d).all() and d.item() == pytest.approx(chordal_dist(x.double(), y.double(), curv=1.0).item(),
                                                                 rel=1e-5)
