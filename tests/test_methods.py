"""Objectives, similarities and the registry of hyplib.methods, checked against independent oracles.

Oracles are written here from the formulas (full hyperboloid coordinates, python loops, geoopt's
Lorentz model for angles), never by calling the code under test.
"""
from __future__ import annotations

import math

import geoopt
import open_clip
import pytest
import torch
import torch.nn.functional as F

from hyplib import lorentz, methods
from hyplib.methods import Embeddings
from hyplib.methods.argent import adaptive_weight, norm_regulariser
from hyplib.methods.atmg import angle_logits

torch.set_default_dtype(torch.float32)
F64 = torch.float64


# ----------------------------------------------------------------------------- oracles
def full(x: torch.Tensor, c: float) -> torch.Tensor:
    """Full coordinates (time first) of space parts x (..., n)."""
    return torch.cat([torch.sqrt(1.0 / c + (x * x).sum(-1, keepdim=True)), x], -1)


def mink(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return -u[..., 0] * v[..., 0] + (u[..., 1:] * v[..., 1:]).sum(-1)


def ref_dist(x, y, c):
    return math.acosh(max(1.0, float(-c * mink(full(x, c), full(y, c))))) / math.sqrt(c)


def ref_angle(x, y, c):
    """Exterior angle at x in O-x-y: pi minus the angle between log_x(y) and log_x(O) (geoopt)."""
    manifold = geoopt.Lorentz(k=torch.tensor(1.0 / c, dtype=F64))
    X, Y = full(x.to(F64), c), full(y.to(F64), c)
    O = torch.zeros_like(X)
    O[..., 0] = 1.0 / math.sqrt(c)
    u, v = manifold.logmap(X, Y), manifold.logmap(X, O)
    cos = mink(u, v) / torch.sqrt(mink(u, u) * mink(v, v))
    return math.pi - torch.acos(cos.clamp(-1, 1))


def ref_aperture(x, c, K=0.1):
    return math.asin(min(1.0, 2 * K / (math.sqrt(c) * float(x.norm()))))


def ref_ce(logits):
    """Mean over rows of -log softmax(row)[i], as a python loop."""
    rows = logits.tolist()
    total = 0.0
    for i, row in enumerate(rows):
        m = max(row)
        total += -(row[i] - m - math.log(sum(math.exp(v - m) for v in row)))
    return total / len(rows)


def ref_entail(p, q, c, eta, K=0.1):
    return sum(max(0.0, float(ref_angle(p[i], q[i], c)) - eta * ref_aperture(p[i], c, K))
               for i in range(p.shape[0])) / p.shape[0]


def hand_batch(dtype=F64, B=3, D=3, seed=0, box=True, curv=0.8, scale=5.0):
    g = torch.Generator().manual_seed(seed)
    rnd = lambda: (0.6 * torch.randn(B, D, generator=g)).to(dtype)  # noqa: E731
    return Embeddings(image=rnd(), text=rnd(), curv=torch.tensor(curv, dtype=dtype),
                      logit_scale=torch.tensor(scale, dtype=dtype),
                      image_box=rnd() if box else None, text_box=rnd() if box else None)


def close(a, b, tol=1e-9):
    assert abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b))), (float(a), float(b))


# ----------------------------------------------------------------------------- registry
def test_names_and_attributes():
    assert methods.names() == ["clip", "meru", "hycoclip", "atmg", "argent", "phyclip"]
    expected = {"clip": ("euclidean", False), "meru": ("lorentz", False), "hycoclip": ("lorentz", True),
                "atmg": ("lorentz", False), "argent": ("lorentz", True), "phyclip": ("product", True)}
    for name, (geometry, boxes) in expected.items():
        m = methods.get(name)
        assert (m.name, m.geometry, m.uses_boxes) == (name, geometry, boxes)


def test_paper_defaults():
    meru = methods.get("meru")
    assert meru.defaults["entail_weight"] == 0.2 and meru.defaults["curv_init"] == 1.0
    assert meru.defaults["curv_clamp"] == (0.1, 10.0) and meru.defaults["learn_curv"]
    hy = methods.get("hycoclip").defaults
    assert (hy["eta_inter"], hy["eta_intra"], hy["entail_weight"]) == (0.7, 1.2, 0.2)
    code = methods.get("atmg", variant="code").defaults
    assert code["curv_init"] == 0.1 and not code["learn_curv"]
    assert code["curv_clamp"] == pytest.approx((0.02, 0.5))
    ph = methods.get("phyclip").defaults
    assert (ph["k"], ph["d"], ph["embed_dim"], ph["how"], ph["score"]) == (64, 8, 512, "l1", "inner_sum")
    assert ph["curv_clamp"] == (0.1, 10.0) and ph["entail_weight"] == 0.2
    assert methods.get("phyclip", k=4, d=2).defaults["embed_dim"] == 8
    # Overrides update a fresh copy, never the class defaults.
    assert methods.get("meru", entail_weight=0.5).defaults["entail_weight"] == 0.5
    assert methods.get("meru").defaults["entail_weight"] == 0.2
    assert methods.get("meru", curv_init=0.5).defaults["curv_clamp"] == (0.05, 5.0)


def test_registry_errors_name_offender_and_choices():
    with pytest.raises(ValueError, match=r"'sigclip'.*clip.*meru.*phyclip"):
        methods.get("sigclip")
    with pytest.raises(ValueError, match=r"'tweet'.*\['code', 'paper'\]"):
        methods.get("atmg", variant="tweet")
    with pytest.raises(ValueError, match=r"entail_weigth.*entail_weight"):
        methods.get("meru", entail_weigth=0.1)
    with pytest.raises(ValueError, match=r"\['curv_clamp'\].*'clip'"):
        methods.get("clip", curv_clamp=(0.1, 1.0))
    assert methods.get("meru", curv_clamp=[0.5, 2.0]).defaults["curv_clamp"] == (0.5, 2.0)
    with pytest.raises(ValueError, match=r"curv_clamp.*curv_init"):
        methods.get("meru", curv_clamp=(2.0, 3.0))
    with pytest.raises(ValueError, match=r"'nope'.*exp.*linear.*tanh"):
        methods.get("argent", weight_fn="nope")
    with pytest.raises(ValueError, match=r"'cos'.*distance.*inner_sum"):
        methods.get("phyclip", score="cos")
    with pytest.raises(ValueError, match=r"embed_dim=100.*k\*d"):
        methods.get("phyclip", embed_dim=100)
    for name in ("hycoclip", "argent", "phyclip"):
        m = methods.get(name, **({"k": 1, "d": 3} if name == "phyclip" else {}))
        with pytest.raises(ValueError, match=rf"'{name}'.*\['image_box', 'text_box'\]"):
            m.loss(hand_batch(box=False, curv=1.0) if name != "phyclip" else
                   Embeddings(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(1), torch.tensor(1.0)))


# ----------------------------------------------------------------------------- CLIP
def test_clip_equals_open_clip_loss():
    g = torch.Generator().manual_seed(1)
    img = F.normalize(torch.randn(16, 32, generator=g), dim=-1)
    txt = F.normalize(torch.randn(16, 32, generator=g), dim=-1)
    s = torch.tensor(1 / 0.07)
    ours = methods.get("clip").loss(Embeddings(img, txt, torch.tensor(1.0), s))
    ref = open_clip.loss.ClipLoss()(img, txt, s)
    assert abs(float(ours["loss"]) - float(ref)) < 1e-6
    assert set(ours["logs"]) >= {"contrastive_image_text", "contrastive_text_image"}


def test_clip_gradients_equal_open_clip_loss():
    g = torch.Generator().manual_seed(2)
    feats = [F.normalize(torch.randn(24, 16, generator=g, dtype=torch.float64), dim=-1).requires_grad_()
             for _ in range(2)]
    s = torch.tensor(1 / 0.07, dtype=torch.float64, requires_grad=True)
    ours = torch.autograd.grad(methods.get("clip").loss(Embeddings(*feats, torch.tensor(1.0), s))["loss"],
                               [*feats, s])
    ref = torch.autograd.grad(open_clip.loss.ClipLoss()(*feats, s), [*feats, s])
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_symmetric_ce_equals_two_cross_entropies():
    from hyplib.methods.terms import diagonal_ce, symmetric_ce

    g = torch.Generator().manual_seed(3)
    logits = (5 * torch.randn(9, 9, generator=g, dtype=torch.float64)).requires_grad_()
    rows, cols = symmetric_ce(logits)
    torch.testing.assert_close(rows, diagonal_ce(logits))
    torch.testing.assert_close(cols, diagonal_ce(logits.t()))
    got = torch.autograd.grad(0.3 * rows + 0.7 * cols, logits)[0]
    want = torch.autograd.grad(0.3 * diagonal_ce(logits) + 0.7 * diagonal_ce(logits.t()), logits)[0]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"square.*\(3, 4\)"):
        symmetric_ce(torch.zeros(3, 4))


def test_symmetric_ce_of_two_matrices_equals_two_cross_entropies():
    """Rows of one matrix and columns of another (ATMG's code variant), as two diagonal_ce."""
    from hyplib.methods.terms import diagonal_ce, symmetric_ce

    g = torch.Generator().manual_seed(4)
    a, b = ((5 * torch.randn(7, 7, generator=g, dtype=torch.float64)).requires_grad_() for _ in range(2))
    rows, cols = symmetric_ce(a, b)
    torch.testing.assert_close(rows, diagonal_ce(a))
    torch.testing.assert_close(cols, diagonal_ce(b.t()))
    got = torch.autograd.grad(0.3 * rows + 0.7 * cols, (a, b))
    want = torch.autograd.grad(0.3 * diagonal_ce(a) + 0.7 * diagonal_ce(b.t()), (a, b))
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"column_logits.*\(7, 6\)"):
        symmetric_ce(a, torch.zeros(7, 6))
    with pytest.raises(ValueError, match=r"differ"):
        symmetric_ce(a, torch.zeros(6, 6))


def test_diagonal_ce_of_a_transposed_view_equals_cross_entropy():
    from hyplib.methods.terms import diagonal_ce

    g = torch.Generator().manual_seed(4)
    stored = (3 * torch.randn(6, 6, generator=g, dtype=torch.float64)).requires_grad_()
    got = diagonal_ce(stored.t())                              # a transposed view: column path
    ref = F.cross_entropy(stored.t().contiguous(), torch.arange(6))
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(torch.autograd.grad(got, stored)[0], torch.autograd.grad(ref, stored)[0])


def _shifted_meru_logits():
    """Float32 logits ``-s d - 300`` (s = 100, c = 1) of images clustered around one point and
    texts around another 2.8 away (logsumexp near -580, O(1) spread), with the float64
    directions ``D`` and ``dD/dc`` along which the logit-scale and curvature gradients read
    the logits' gradient."""
    g = torch.Generator().manual_seed(0)
    a = torch.zeros(16, dtype=F64)
    a[0] = 1.4
    x = lorentz.expmap0(a + 0.02 * torch.randn(64, 16, generator=g, dtype=F64), curv=1.0)
    y = lorentz.expmap0(-a + 0.02 * torch.randn(64, 16, generator=g, dtype=F64), curv=1.0)
    dist = lambda c: lorentz.pairwise_dist(x, y, curv=c)  # noqa: E731
    d_dc = (dist(1.0 + 1e-6) - dist(1.0 - 1e-6)) / 2e-6
    return (-100.0 * dist(1.0) - 300.0).float(), {"logit_scale": -dist(1.0), "curv": -100.0 * d_dc}


@pytest.mark.parametrize("loss", ["symmetric_ce", "diagonal_ce_transposed"])
def test_softmax_gradients_exact_for_large_negative_logits(loss):
    """float32 gradients of the logit scale and curvature (the logits' gradient read along
    dlogits/ds and dlogits/dc) within 1e-6 relative of float64 at a -300 shift, as
    F.cross_entropy's are (~1e-7); exp(logits - logsumexp) gave 3e-6 (transposed
    diagonal_ce) to 5e-5 (symmetric_ce)."""
    from hyplib.methods.terms import diagonal_ce, symmetric_ce

    fns = {"symmetric_ce": lambda l: sum(symmetric_ce(l)), "diagonal_ce_transposed": lambda l: diagonal_ce(l.t()),
           "cross_entropy": lambda l: F.cross_entropy(l.t().contiguous(), torch.arange(l.shape[0]))}
    logits, directions = _shifted_meru_logits()
    for fn in (fns[loss], fns["cross_entropy"]):
        grads = [torch.autograd.grad(fn(leaf), leaf)[0].to(F64)
                 for leaf in (logits.clone().requires_grad_(), logits.to(F64).requires_grad_())]
        for name, w in directions.items():
            want = (grads[1] * w).sum()
            rel = abs(float((grads[0] * w).sum() / want) - 1.0)
            assert rel < 1e-6, f"{name}: relative error {rel:.2e}"


def test_pairwise_exterior_angles_match_both_single_forms():
    from hyplib import lorentz

    g = torch.Generator().manual_seed(5)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    y = torch.randn(7, 4, generator=g, dtype=torch.float64)
    at_x, at_y = lorentz.pairwise_exterior_angles(x, y, curv=0.4)
    torch.testing.assert_close(at_x, lorentz.pairwise_exterior_angle(x, y, curv=0.4))
    torch.testing.assert_close(at_y, lorentz.pairwise_exterior_angle(y, x, curv=0.4).t())


def test_clip_similarity_is_cosine():
    img, txt = F.normalize(torch.randn(3, 4), dim=-1), F.normalize(torch.randn(5, 4), dim=-1)
    sim = methods.get("clip").similarity(img, txt, curv=None)
    torch.testing.assert_close(sim, F.cosine_similarity(img[:, None], txt[None], dim=-1))


# ----------------------------------------------------------------------------- MERU
def test_meru_terms_match_loop():
    emb = hand_batch(box=False, B=4)
    c, s = float(emb.curv), float(emb.logit_scale)
    B = emb.image.shape[0]
    logits_it = torch.tensor([[-s * ref_dist(emb.image[i], emb.text[j], c) for j in range(B)] for i in range(B)],
                             dtype=F64)
    contrastive = 0.5 * (ref_ce(logits_it) + ref_ce(logits_it.t()))
    entail = ref_entail(emb.text, emb.image, c, eta=1.0)
    out = methods.get("meru").loss(emb)
    close(out["logs"]["contrastive"], contrastive)
    close(out["logs"]["entail_text_image"], entail)
    close(out["loss"], contrastive + 0.2 * entail)


def cone_pair(c=1.0, inside=True, dtype=F64):
    """Parent (2 points) and children strictly inside (near the axis, farther out) or outside."""
    p = torch.tensor([[0.8, 0.1, 0.0], [0.0, -1.5, 0.3]], dtype=dtype)
    if inside:
        q = 2.5 * p + torch.tensor([[0.0, 0.02, 0.0], [0.01, 0.0, 0.0]], dtype=dtype)
    else:
        q = -p + torch.tensor([[0.0, 0.3, 0.0], [0.3, 0.0, 0.0]], dtype=dtype)
    return p, q


def test_entailment_zero_inside_positive_outside():
    c = 1.0
    for inside in (True, False):
        p, q = cone_pair(c, inside)
        emb = Embeddings(image=q, text=p, curv=torch.tensor(c, dtype=F64), logit_scale=torch.tensor(10.0, dtype=F64),
                         image_box=q, text_box=p)
        ref = ref_entail(p, q, c, eta=1.0)
        meru = methods.get("meru").loss(emb)["logs"]["entail_text_image"]
        hy = methods.get("hycoclip").loss(emb)["logs"]["entail_text_image"]
        if inside:
            assert ref == 0.0 and float(meru) == 0.0 and float(hy) == 0.0
        else:
            assert ref > 0.5
            close(meru, ref)
            close(hy, ref_entail(p, q, c, eta=0.7))


# ----------------------------------------------------------------------------- HyCoCLIP
def test_hycoclip_all_terms_hand_built():
    emb = hand_batch(B=3, D=3, seed=3, curv=0.8, scale=4.0)
    c, s, B = float(emb.curv), float(emb.logit_scale), 3
    I, T, Ib, Tb = emb.image, emb.text, emb.image_box, emb.text_box

    def logits(q, k):
        return torch.tensor([[-s * ref_dist(q[i], k[j], c) for j in range(B)] for i in range(B)], dtype=F64)

    expected = {
        "contrastive_image_text": ref_ce(logits(I, T)),
        "contrastive_text_image": ref_ce(logits(T, I)),
        "contrastive_image_box_text": ref_ce(logits(Ib, T)),
        "contrastive_text_box_image": ref_ce(logits(Tb, I)),
        "entail_text_image": ref_entail(T, I, c, 0.7),
        "entail_text_box_image_box": ref_entail(Tb, Ib, c, 0.7),
        "entail_image_box_image": ref_entail(Ib, I, c, 1.2),
        "entail_text_box_text": ref_entail(Tb, T, c, 1.2),
    }
    out = methods.get("hycoclip").loss(emb)
    for key, value in expected.items():
        close(out["logs"][key], value)
    h_cc = sum(v for k, v in expected.items() if k.startswith("contrastive")) / 4
    h_ce = sum(v for k, v in expected.items() if k.startswith("entail")) / 2
    close(out["loss"], h_cc + 0.2 * h_ce)
    # Some entailment pairs of this batch must be active, else the test proves little.
    assert sum(expected[k] > 0 for k in expected if k.startswith("entail")) >= 3


def test_per_pair_values_in_pair_order_at_least_float32():
    from hyplib.methods.terms import HIERARCHY_PAIRS, per_pair

    values = {"inter": 0.7, "intra": 1.2}
    for points, shape, dtype in ((torch.zeros(4, 5, 3, dtype=torch.bfloat16), (4, 1), torch.float32),
                                 (torch.zeros(4, 5, 2, 3, dtype=F64), (4, 1, 1), F64)):
        eta = per_pair(values, points)
        assert eta.shape == shape and eta.dtype == dtype
        expected = torch.tensor([values[kind] for _, _, kind in HIERARCHY_PAIRS], dtype=dtype)
        assert torch.equal(eta.flatten(), expected)   # a bfloat16 0.7 would be 0.69921875
    assert [kind for _, _, kind in HIERARCHY_PAIRS] == ["inter", "inter", "intra", "intra"]


@pytest.mark.parametrize("name", ["hycoclip", "argent", "phyclip"])
def test_stacked_entailment_gradients_equal_four_separate_pairs(name):
    """The four pairs in one stacked call: the same terms and gradients as one call per pair."""
    from hyplib import product
    from hyplib.methods.argent import adaptive_entailment
    from hyplib.methods.terms import HIERARCHY_PAIRS, entailment_violation

    cfg = {"k": 2, "d": 3} if name == "phyclip" else {}
    method, without = methods.get(name, entail_weight=1.0, **cfg), methods.get(name, entail_weight=0.0, **cfg)
    emb = hand_batch(B=5, D=6 if name == "phyclip" else 3, seed=21, curv=0.8)
    curv = torch.tensor([0.8, 1.7], dtype=F64) if name == "phyclip" else emb.curv
    leaves = [t.clone().requires_grad_() for t in (emb.image, emb.text, emb.image_box, emb.text_box, curv)]
    keys = ["image", "text", "image_box", "text_box"]
    d = method.defaults

    def per_pair_term(p, c, kind):
        if name == "argent":
            return d[f"weight_{kind}"] * adaptive_entailment(p, c, curv=leaves[4], sigma=d[f"sigma_{kind}"]).mean()
        if name == "phyclip":
            p, c = product.split(p, 2), product.split(c, 2)
        return entailment_violation(p, c, curv=leaves[4], eta=d[f"eta_{kind}"], min_radius=d["min_radius"]).mean()

    separate = 0.5 * sum(per_pair_term(leaves[keys.index(p)], leaves[keys.index(c)], kind)
                         for p, c, kind in HIERARCHY_PAIRS)
    expected = torch.autograd.grad(separate, leaves)

    def loss(m):
        return m.loss(Embeddings(leaves[0], leaves[1], leaves[4], emb.logit_scale, leaves[2], leaves[3]))

    out = loss(method)
    assert float(out["logs"]["entailment"]) > 0.1          # some pairs outside their cones
    close(out["logs"]["entailment"], separate.detach(), 1e-13)
    # The entailment term's gradient: the loss's with it (weight 1) minus the loss's without it.
    for got, rest, want in zip(torch.autograd.grad(out["loss"], leaves),
                               torch.autograd.grad(loss(without)["loss"], leaves), expected):
        torch.testing.assert_close(got - rest, want, rtol=1e-10, atol=1e-13)


def test_hycoclip_boxes_are_never_candidates():
    emb = hand_batch(B=3, seed=4)
    base = methods.get("hycoclip").loss(emb)["logs"]
    moved = Embeddings(emb.image, emb.text, emb.curv, emb.logit_scale, emb.image_box, emb.text_box.clone())
    moved.text_box[0] += 1.0  # a query changes only its own term
    logs = methods.get("hycoclip").loss(moved)["logs"]
    for key in ("contrastive_image_text", "contrastive_text_image", "contrastive_image_box_text"):
        close(logs[key], base[key], 1e-12)


def test_lorentz_similarity_ranks_as_negative_distance():
    emb = hand_batch(B=6, seed=5)
    for name in ("meru", "hycoclip", "argent"):
        sim = methods.get(name).similarity(emb.image, emb.text, curv=emb.curv)
        dist = lorentz.pairwise_dist(emb.image, emb.text, curv=emb.curv)
        assert torch.equal(sim.argsort(dim=1), (-dist).argsort(dim=1))


# ----------------------------------------------------------------------------- ATMG
def test_atmg_code_logits_are_angles():
    emb = hand_batch(box=False, B=4, seed=6, curv=0.1)
    c = float(emb.curv)
    logits = angle_logits(emb)
    B = 4
    ref_ti = torch.tensor([[-float(ref_angle(emb.text[i], emb.image[j], c)) for j in range(B)] for i in range(B)],
                          dtype=F64)
    ref_it = torch.tensor([[float(ref_angle(emb.image[i], emb.text[j], c)) for j in range(B)] for i in range(B)],
                          dtype=F64)
    torch.testing.assert_close(logits["text_image"], ref_ti, atol=1e-9, rtol=0)
    torch.testing.assert_close(logits["image_text"], ref_it, atol=1e-9, rtol=0)
    s = float(emb.logit_scale)
    out = methods.get("atmg", variant="code").loss(emb)
    close(out["loss"], 0.5 * (ref_ce(s * ref_ti) + ref_ce(s * ref_it)))
    assert "centroid" not in out["logs"]


def test_atmg_code_with_centroid_adds_the_regulariser():
    emb = hand_batch(box=False, B=5, seed=9, curv=1.0)
    plain = methods.get("atmg", variant="code").loss(emb)
    m = methods.get("atmg", variant="code", centroid_weight=0.5, radius_text=0.5, radius_image=1.5)
    out = m.loss(emb)

    def d0_midpoint(x):  # distance to the root of the hyperboloid projection of the summed full vectors
        X = full(x, 1.0).sum(0)
        return math.asinh(float((X[1:] / torch.sqrt(-mink(X, X))).norm()))

    ref = abs(d0_midpoint(emb.text) - 0.5) + abs(d0_midpoint(emb.image) - 1.5)
    close(out["logs"]["centroid"], ref)
    close(out["logs"]["contrastive"], float(plain["loss"]))
    close(out["loss"], float(plain["loss"]) + 0.5 * ref)


def test_atmg_similarity_direction():
    emb = hand_batch(box=False, B=4, seed=7, curv=0.1)
    c = float(emb.curv)
    paper = methods.get("atmg").similarity(emb.image, emb.text, curv=emb.curv)
    code = methods.get("atmg", variant="code").similarity(emb.image, emb.text, curv=emb.curv)
    for i in range(4):
        for j in range(4):
            close(paper[i, j], -float(ref_angle(emb.text[j], emb.image[i], c)))
            close(code[i, j], float(ref_angle(emb.image[i], emb.text[j], c)))
    # Higher is better: an image straight below its text (text's cone axis) beats one off-axis.
    text = torch.tensor([[0.5, 0.0]], dtype=F64)
    images = torch.tensor([[1.5, 0.0], [0.4, 1.2]], dtype=F64)
    for variant in ("paper", "code"):
        sim = methods.get("atmg", variant=variant).similarity(images, text, curv=1.0)
        assert sim[0, 0] > sim[1, 0]


def test_atmg_paper_terms_equal_and_centroid():
    emb = hand_batch(box=False, B=5, seed=8, curv=1.0)
    # The literal reading: both terms are L^{T->I}, the second with beta = pi - alpha.
    m = methods.get("atmg", radius_text=0.5, radius_image=1.5, centroid_weight=0.3, directions="text_image")
    out = m.loss(emb)["logs"]
    close(out["contrastive_text_image_neg_alpha"], out["contrastive_text_image_beta"], 1e-12)

    def midpoint(x):  # hyperboloid projection of the summed full vectors
        X = full(x, 1.0).sum(0)
        return X[1:] / torch.sqrt(-mink(X, X))

    def d0(x):
        return math.asinh(float(x.norm()))

    ref = abs(d0(midpoint(emb.text)) - 0.5) + abs(d0(midpoint(emb.image)) - 1.5)
    close(out["centroid"], ref)
    close(m.loss(emb)["loss"], 2 * float(out["contrastive_text_image_neg_alpha"]) + 0.3 * ref)
    with pytest.raises(ValueError, match="radius_text < radius_image"):
        methods.get("atmg", radius_text=2.0, radius_image=1.0)


def test_atmg_paper_both_directions():
    emb = hand_batch(box=False, B=4, seed=10, curv=1.0)
    s = float(emb.logit_scale)
    neg_alpha = torch.tensor([[-float(ref_angle(emb.text[i], emb.image[j], 1.0)) for j in range(4)]
                              for i in range(4)], dtype=F64)
    assert methods.get("atmg").defaults["directions"] == "both"  # the default since issue 21
    out = methods.get("atmg", variant="paper", directions="both", centroid_weight=0.0).loss(emb)
    close(out["logs"]["contrastive_text_image_neg_alpha"], ref_ce(s * neg_alpha))
    close(out["logs"]["contrastive_image_text"], ref_ce(s * neg_alpha.t()))
    close(out["loss"], ref_ce(s * neg_alpha) + ref_ce(s * neg_alpha.t()))
    assert "contrastive_text_image_beta" not in out["logs"]
    with pytest.raises(ValueError, match=r"directions='sideways'.*text_image.*both"):
        methods.get("atmg", directions="sideways")


# ----------------------------------------------------------------------------- ARGENT
def test_argent_weight_zero_for_identical_and_grows():
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(0)) * 0.5
    for fn in ("exp", "tanh", "linear"):
        assert torch.all(adaptive_weight(x, x, curv=1.3, sigma=0.5, fn=fn) == 0)
    near, far = x + 1e-3, x + 2.0
    w_near = adaptive_weight(x, near, curv=1.0, sigma=1.0)
    w_far = adaptive_weight(x, far, curv=1.0, sigma=1.0)
    assert torch.all(w_near < 0.01) and torch.all(w_far > 0.8)
    d = torch.tensor([ref_dist(x[i].double(), far[i].double(), 1.0) for i in range(7)], dtype=F64)
    torch.testing.assert_close(w_far.double(), 1 - torch.exp(-d), atol=1e-5, rtol=0)


def test_argent_identical_pairs_add_no_entailment():
    emb = hand_batch(B=3, seed=9)
    same = Embeddings(emb.image, emb.image.clone(), emb.curv, emb.logit_scale, emb.image.clone(), emb.image.clone())
    logs = methods.get("argent").loss(same)["logs"]
    for key in ("entail_text_image", "entail_text_box_image_box", "entail_image_box_image", "entail_text_box_text"):
        assert float(logs[key]) == 0.0


def test_argent_entailment_matches_formula():
    emb = hand_batch(B=3, seed=10, curv=1.0)
    c = 1.0
    logs = methods.get("argent", sigma_inter=0.7, sigma_intra=0.3, weight_intra=2.0).loss(emb)["logs"]

    def ref(p, q, sigma, w):
        return w * sum((1 - math.exp(-ref_dist(p[i], q[i], c) / sigma)) * float(ref_angle(p[i], q[i], c))
                       for i in range(3)) / 3

    close(logs["entail_text_image"], ref(emb.text, emb.image, 0.7, 1.0), 1e-7)
    close(logs["entail_image_box_image"], ref(emb.image_box, emb.image, 0.3, 2.0), 1e-7)


def test_argent_norm_regulariser():
    c, K, margin = 1.0, 0.1, 0.1
    outside = torch.tensor([[0.31, 0.0], [0.0, -2.0]])
    assert float(norm_regulariser(outside, curv=c, min_radius=K, margin=margin)) == 0.0
    inside = torch.tensor([[0.05, 0.0], [0.0, 0.1]])
    close(norm_regulariser(inside, curv=c, min_radius=K, margin=margin), ((0.3 - 0.05) + (0.3 - 0.1)) / 2, 1e-6)
    # Several parents (of unequal rows): the mean over all their rows, as of their concatenation.
    close(norm_regulariser([inside, outside[:1]], curv=c, min_radius=K, margin=margin),
          ((0.3 - 0.05) + (0.3 - 0.1) + 0.0) / 3, 1e-6)
    # Parents (texts, box texts, box images) far outside -> the term vanishes in the loss too.
    emb = hand_batch(B=3, seed=11)
    for key in ("text", "text_box", "image_box"):
        setattr(emb, key, getattr(emb, key) * 10)
    assert float(methods.get("argent").loss(emb)["logs"]["norm_regulariser"]) == 0.0


# ----------------------------------------------------------------------------- PHyCLIP
def test_phyclip_k1_equals_single_space():
    emb = hand_batch(B=4, D=3, seed=12, curv=0.9)
    single = methods.get("hycoclip").loss(emb)
    prod_emb = Embeddings(emb.image, emb.text, emb.curv.reshape(1), emb.logit_scale, emb.image_box, emb.text_box)
    for how in ("l1", "l2", "linf"):
        out = methods.get("phyclip", k=1, d=3, how=how).loss(prod_emb)
        for key, value in single["logs"].items():
            close(out["logs"][key], value, 1e-12)
    dist = methods.get("phyclip", k=1, d=3, score="distance").similarity(emb.image, emb.text, curv=prod_emb.curv)
    inner = methods.get("phyclip", k=1, d=3).similarity(emb.image, emb.text, curv=prod_emb.curv)
    torch.testing.assert_close(dist, -lorentz.pairwise_dist(emb.image, emb.text, curv=emb.curv))
    torch.testing.assert_close(inner, lorentz.pairwise_inner(emb.image, emb.text, curv=emb.curv))


def test_phyclip_two_factors_average_per_factor_terms():
    emb = hand_batch(B=3, D=4, seed=13)
    curv = torch.tensor([0.5, 2.0], dtype=F64)
    prod_emb = Embeddings(emb.image, emb.text, curv, emb.logit_scale, emb.image_box, emb.text_box)
    out = methods.get("phyclip", k=2, d=2).loss(prod_emb)["logs"]
    s = float(emb.logit_scale)
    f = [slice(0, 2), slice(2, 4)]
    logits = torch.tensor([[-s * sum(ref_dist(emb.image[i, f[a]], emb.text[j, f[a]], float(curv[a]))
                                     for a in range(2)) / 2 for j in range(3)] for i in range(3)], dtype=F64)
    close(out["contrastive_image_text"], ref_ce(logits))
    ent = sum(ref_entail(emb.text_box[:, f[a]], emb.text[:, f[a]], float(curv[a]), 1.2) for a in range(2)) / 2
    close(out["entail_text_box_text"], ent)
    inner = methods.get("phyclip", k=2, d=2).similarity(emb.image, emb.text, curv=curv)
    close(inner[1, 2], sum(float(mink(full(emb.image[1, f[a]], float(curv[a])),
                                      full(emb.text[2, f[a]], float(curv[a]))))
                           for a in range(2)))


# ----------------------------------------------------------------------------- robustness
def _leaves(method, feats):
    """Free features plus log curvature, log alpha and log scale, all requiring grad."""
    k = method.defaults.get("k", 1)
    shape = (k,) if method.geometry == "product" else ()
    return [f.clone().requires_grad_() for f in feats] + [
        torch.zeros(shape, requires_grad=True),
        torch.full(shape, -1.0, requires_grad=True),
        torch.tensor(math.log(1 / 0.07), requires_grad=True),
    ]


def _embed(method, leaves):
    """Embeddings from the leaves through the method's own lift."""
    *feats, log_curv, log_alpha, log_scale = leaves
    curv, alpha = log_curv.exp(), log_alpha.exp()
    lifted = [method.lift(f, alpha=alpha, curv=curv) for f in feats]
    return Embeddings(lifted[0], lifted[1], curv, log_scale.exp(), *(lifted[2:] if method.uses_boxes else []))


def _config(name):
    return {"k": 2, "d": 4} if name == "phyclip" else {}


@pytest.mark.parametrize("name", methods.names() + ["atmg:code"])
@pytest.mark.parametrize("B", [1, 2, 512])
@pytest.mark.parametrize("case", ["random", "duplicate_captions", "zero"])
def test_finite_loss_and_gradients(name, B, case):
    name, _, variant = name.partition(":")
    method = methods.get(name, **_config(name), **({"variant": variant} if variant else {}))
    g = torch.Generator().manual_seed(B)
    feats = [torch.randn(B, 8, generator=g) for _ in range(4)]
    if case == "duplicate_captions":
        feats[1] = feats[1][:1].expand(B, 8).clone()
        feats[3] = feats[1].clone()
    elif case == "zero":
        feats = [torch.zeros(B, 8) for _ in range(4)]
    leaves = _leaves(method, feats)
    out = method.loss(_embed(method, leaves))
    assert torch.isfinite(out["loss"]) and out["loss"].dim() == 0
    assert all(torch.isfinite(v) for v in out["logs"].values())
    out["loss"].backward()
    used = leaves[:2] + leaves[2:4] * method.uses_boxes + [leaves[-1]]
    used += leaves[4:6] if method.geometry != "euclidean" else []
    for leaf in used:
        assert leaf.grad is not None and torch.all(torch.isfinite(leaf.grad)), (name, case)


@pytest.mark.parametrize("name", methods.names())
def test_similarity_and_distance_shapes(name):
    method = methods.get(name, **_config(name))
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        emb = _embed(method, _leaves(method, [torch.randn(5, 8, generator=g) for _ in range(4)]))
    sim = method.similarity(emb.image[:3], emb.text, curv=emb.curv)
    assert sim.shape == (3, 5) and torch.all(torch.isfinite(sim))
    if name != "atmg":  # identical points score highest (an angle at a point towards itself is undefined)
        assert method.similarity(emb.text[:3], emb.text, curv=emb.curv).argmax(1).tolist() == [0, 1, 2]
    r = method.distance_to_root(emb.image, curv=emb.curv)
    assert r.shape == (5,) and torch.all(r >= 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", methods.names() + ["atmg:code"])
def test_free_embeddings_train(name):
    """50 Adam steps on free features lifted by the method's own lift: the loss falls."""
    name, _, variant = name.partition(":")
    method = methods.get(name, **_config(name), **({"variant": variant} if variant else {}))
    g = torch.Generator().manual_seed(0)
    leaves = _leaves(method, [torch.randn(8, 8, generator=g) for _ in range(4)])
    opt = torch.optim.Adam(leaves, lr=0.05)
    losses = []
    for _ in range(50):
        loss = method.loss(_embed(method, leaves))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], (name, losses[0], losses[-1])


@pytest.mark.parametrize("how", ["l1", "l2", "linf"])
@pytest.mark.parametrize("chunk", [1, 18, 40, 60, None])
def test_fused_product_distance_matches_product_module(how, chunk):
    """Same values and gradients as product.pairwise_dist, coincident points (clamped) included."""
    from hyplib import product
    from hyplib.methods.fused import pairwise_product_dist

    g = torch.Generator().manual_seed(0)
    x = (0.8 * torch.randn(5, 3, 4, generator=g, dtype=F64)).requires_grad_()
    y = torch.cat([0.8 * torch.randn(4, 3, 4, generator=g, dtype=F64), x[:2].detach()]).requires_grad_()
    c = torch.tensor([0.5, 1.0, 3.0], dtype=F64, requires_grad=True)
    weights = torch.randn(5, 6, generator=g, dtype=F64)
    ref = product.pairwise_dist(x, y, curv=c, how=how)
    out = pairwise_product_dist(x, y, curv=c, how=how, chunk_elements=chunk)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    for a, b in zip(torch.autograd.grad((ref * weights).sum(), (x, y, c)),
                    torch.autograd.grad((out * weights).sum(), (x, y, c))):
        torch.testing.assert_close(b, a, atol=1e-9, rtol=1e-9)
    small = [t.detach()[:3, :2, :2].clone().requires_grad_() for t in (x, y)]
    small.append(c.detach()[:2].clone().requires_grad_())
    assert torch.autograd.gradcheck(
        lambda a, b, cc: pairwise_product_dist(a, b, curv=cc, how=how, chunk_elements=chunk), small)


@pytest.mark.parametrize("chunk", [6, None])
def test_fused_product_distance_linf_splits_ties_like_amax(chunk):
    """Equal curvatures and coincident points: every factor ties at the floor on the diagonal
    (one factor and row per chunk, or both factors in one batched chunk)."""
    from hyplib import product
    from hyplib.methods.fused import pairwise_product_dist

    g = torch.Generator().manual_seed(3)
    x = (0.5 * torch.randn(3, 2, 2, generator=g, dtype=F64)).requires_grad_()
    y = torch.cat([x.detach(), x.detach().flip(1)]).requires_grad_()  # y[3:] swaps the factors: ties off-diagonal
    c = torch.tensor([1.0, 1.0], dtype=F64, requires_grad=True)
    weights = torch.randn(3, 6, generator=g, dtype=F64)
    ref = product.pairwise_dist(x, y, curv=c, how="linf")
    out = pairwise_product_dist(x, y, curv=c, how="linf", chunk_elements=chunk)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    for a, b in zip(torch.autograd.grad((ref * weights).sum(), (x, y, c)),
                    torch.autograd.grad((out * weights).sum(), (x, y, c))):
        torch.testing.assert_close(b, a, atol=1e-9, rtol=1e-9)


def test_fused_chunk_plan_blocks_factors_only_when_whole_rows_fit():
    from hyplib.methods.fused import _chunks, _plan

    assert _plan(64, 1024, 1024, 2 ** 20) == (1, 1024)      # one factor, all rows: 4 MiB
    assert _plan(64, 1024, 2048, 2 ** 20) == (1, 512)       # one factor, half the rows
    assert _plan(64, 64, 128, 2 ** 20) == (64, 64)          # every factor in one batched chunk
    assert _plan(64, 64, 128, 2 ** 20, 2 ** 17) == (16, 64)  # blocks of factors that fit in L2
    assert _plan(64, 1024, 1024, 2 ** 20, 2 ** 17) == (1, 1024)  # rows fit, a factor does not
    assert _plan(3, 5, 6, 60) == (2, 5)                     # factor blocks of 2, then 1
    assert _chunks(3, 5, 2, 5) == [(slice(0, 2), slice(0, 5)), (slice(2, 4), slice(0, 5))]


def test_phyclip_fused_and_reference_losses_agree():
    g = torch.Generator().manual_seed(2)
    feats = [0.3 * torch.randn(6, 8, generator=g, dtype=F64) for _ in range(4)]
    curv = torch.tensor([0.7, 1.4], dtype=F64)
    emb = Embeddings(*feats[:2], curv, torch.tensor(5.0, dtype=F64), *feats[2:])
    fused = methods.get("phyclip", k=2, d=4).loss(emb)
    ref = methods.get("phyclip", k=2, d=4, fused_distance=False).loss(emb)
    for key, value in ref["logs"].items():
        close(fused["logs"][key], value, 1e-12)


def test_use_boxes_appends_box_pairs_to_the_contrastive_batch():
    from hyplib import methods as M
    from hyplib.methods.base import Embeddings
    g = torch.Generator().manual_seed(0)
    image, text, ibox, tbox = (0.5 * torch.randn(4, 6, generator=g, dtype=torch.float64) for _ in range(4))
    curv, scale = torch.tensor(1.0, dtype=torch.float64), torch.tensor(10.0, dtype=torch.float64)
    for name in ("clip", "meru"):
        with_boxes = M.get(name, use_boxes=True)
        assert with_boxes.uses_boxes and not M.get(name).uses_boxes
        got = with_boxes.loss(Embeddings(image, text, curv, scale, image_box=ibox, text_box=tbox))["loss"]
        stacked = Embeddings(torch.cat([image, ibox]), torch.cat([text, tbox]), curv, scale)
        torch.testing.assert_close(got, M.get(name).loss(stacked)["loss"])
        with pytest.raises(ValueError, match="image_box"):
            with_boxes.loss(Embeddings(image, text, curv, scale))
