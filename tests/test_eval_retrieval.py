"""Chunked Recall@K against a brute-force full ranking, and a hand-built case."""
import numpy as np
import pytest
import torch

from hyplib import lorentz
from hyplib import methods as M
from hyplib.evaluation import retrieval as R


def _brute(S: np.ndarray, cap: np.ndarray, ks):
    """Pessimistic ranks by direct counting: wrong items scoring at least the best right one."""
    N, Mc = S.shape
    out = {}
    i2t_rank = np.full(N, np.inf)
    for i in range(N):
        gt = cap == i
        if gt.any():
            i2t_rank[i] = np.sum(S[i, ~gt] >= S[i, gt].max())
    t2i_rank = np.array([np.sum(np.delete(S[:, j], cap[j]) >= S[cap[j], j]) for j in range(Mc)])
    has = np.isfinite(i2t_rank)
    for k in ks:
        out[f"i2t_R@{k}"] = float((i2t_rank[has] < k).mean())
        out[f"t2i_R@{k}"] = float((t2i_rank < k).mean())
    return out


@pytest.mark.parametrize("name", ["meru", "clip"])
def test_chunked_matches_brute_force(name):
    g = torch.Generator().manual_seed(0)
    method = M.get(name)
    N, Mc, D = 37, 150, 16
    img = torch.randn(N, D, generator=g, dtype=torch.float64)
    cap = torch.randint(0, N - 1, (Mc,), generator=g)  # image N-1 has no caption
    txt = 0.5 * img[cap] + torch.randn(Mc, D, generator=g, dtype=torch.float64)
    if name == "clip":
        img, txt = torch.nn.functional.normalize(img, dim=-1), torch.nn.functional.normalize(txt, dim=-1)
    curv = torch.tensor(1.0, dtype=torch.float64)
    sim = lambda a, b, c: method.similarity(a, b, curv=c)  # noqa: E731
    S = sim(img, txt, curv).numpy()
    ks = (1, 5, 10)
    brute = _brute(S, cap.numpy(), ks)
    for block_elems in (1, 7 * Mc, 10**9):  # one row per block, several blocks, one block
        out = R.recall_at_k(img, txt, cap.numpy(), sim, curv, ks=ks, block_elems=block_elems)
        assert out == pytest.approx(brute, abs=1e-12)
    assert 0 < brute["i2t_R@1"] < brute["i2t_R@10"] <= 1


def test_hand_built():
    # scores: image 0 likes caption 2, image 1 likes caption 0
    S = torch.tensor([[0.1, 0.5, 0.9],
                      [0.8, 0.3, 0.2]])
    cap = np.array([0, 0, 1])  # captions 0,1 belong to image 0, caption 2 to image 1
    sim = lambda a, b, c: S[a[:, 0].long()]  # noqa: E731  (rows selected by an index column)
    img = torch.tensor([[0.0], [1.0]])
    out = R.recall_at_k(img, torch.zeros(3, 1), cap, sim, ks=(1, 2))
    # i2t: image 0 best GT is caption 1 (0.5) at rank 1 -> miss@1, hit@2; image 1 GT caption 2 rank 2 -> miss@2
    assert out["i2t_R@1"] == 0.0 and out["i2t_R@2"] == 0.5
    # t2i: caption 0 -> image 1 scores higher (0.8 > 0.1): miss@1; caption 1 -> image 0 (0.5>0.3) hit;
    # caption 2 -> image 0 (0.9 > 0.2): miss@1; all hit@2
    assert out["t2i_R@1"] == pytest.approx(1 / 3) and out["t2i_R@2"] == 1.0


def test_evaluate_retrieval_with_embeddings_and_checks():
    method = M.get("meru")
    g = torch.Generator().manual_seed(1)
    img = torch.randn(10, 8, generator=g)
    bench = {"caption_image": np.repeat(np.arange(10), 2), "captions": [f"c{i}" for i in range(20)]}
    txt = img[bench["caption_image"]] + 0.01 * torch.randn(20, 8, generator=g)
    out = R.evaluate_retrieval({"image": img, "text": txt, "curv": 1.0}, bench, method=method)
    assert out["i2t_R@1"] == 1.0 and out["t2i_R@1"] == 1.0
    assert out["rsum"] == pytest.approx(600.0)
    full = lorentz.lift(img, curv=1.0)
    with pytest.raises(ValueError, match="full hyperboloid coordinates"):
        R.evaluate_retrieval({"image": full, "text": lorentz.lift(txt, curv=1.0), "curv": 1.0}, bench, method=method)
    with pytest.raises(ValueError, match="last dim"):
        R.evaluate_retrieval({"image": img, "text": txt[:, :4], "curv": 1.0}, bench, method=method)
    with pytest.raises(ValueError, match="not unit vectors"):
        R.evaluate_retrieval({"image": img, "text": txt, "curv": 1.0}, bench, method=M.get("clip"))
    with pytest.raises(ValueError, match="caption_image"):
        R.evaluate_retrieval({"image": img, "text": txt, "curv": 1.0}, {"caption_image": np.arange(5)}, method=method)


@pytest.mark.parametrize("score", ["method", "product_inner", "product_dist"])
def test_product_scores_equal_the_method_definitions(score):
    from hyplib import product
    from hyplib.evaluation._common import similarity_fn

    method = M.get("phyclip", k=4, d=3)
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(7, 12, generator=g, dtype=torch.float64), torch.randn(9, 12, generator=g, dtype=torch.float64)
    curv = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    got = similarity_fn(method, score)(x, y, curv)
    xs, ys = product.split(x, 4), product.split(y, 4)
    if score == "product_dist":
        want = -product.pairwise_dist(xs, ys, curv=curv, how="l1")
    else:  # the method's own default is the per-factor inner sum
        want = product.pairwise_factor_inner(xs, ys, curv=curv).sum(-1)
        torch.testing.assert_close(method.similarity(x, y, curv=curv), want)
    torch.testing.assert_close(got, want)
    assert similarity_fn(M.get("phyclip", k=4, d=3, score="distance")).width == 4
    with pytest.raises(ValueError, match="product"):
        similarity_fn(M.get("meru"), "product_inner")


def _index_sim(S):
    """A similarity that looks scores up in ``S`` by the index stored in the embeddings' first column."""
    return lambda a, b, c: S[a[:, 0].long()][:, b[:, 0].long()]


@pytest.mark.parametrize("block_elems", [1, 10**9])
def test_ties_are_misses(block_elems):
    # image 0: its caption 0 ties with image 1's caption 2 -> miss@1, hit@2;
    # image 1: its caption 2 ties with caption 1 (image 0) and beats the rest -> miss@1, hit@2.
    S = torch.tensor([[0.7, 0.2, 0.7],
                      [0.1, 0.5, 0.5]])
    cap = np.array([0, 0, 1])
    img, txt = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [1.0], [2.0]])
    out = R.recall_at_k(img, txt, cap, _index_sim(S), ks=(1, 2), block_elems=block_elems)
    assert out["i2t_R@1"] == 0.0 and out["i2t_R@2"] == 1.0
    # t2i: caption 0 -> image 0 (0.7 > 0.1) hit; caption 1 -> image 0 0.2 < 0.5 miss@1;
    # caption 2 -> image 1 0.5 < 0.7 miss@1; at 2 all hit (one other image).
    assert out["t2i_R@1"] == pytest.approx(1 / 3) and out["t2i_R@2"] == 1.0
    # the same matrix with the ties nudged towards the ground truth: every tie flips to a hit
    S2 = S + torch.tensor([[1e-3, 0, 0], [0, 0, 1e-3]])
    out2 = R.recall_at_k(img, txt, cap, _index_sim(S2), ks=(1,), block_elems=block_elems)
    assert out2["i2t_R@1"] == 1.0


def test_nan_scores_count_against_the_model():
    S = torch.tensor([[torch.nan, 0.0], [0.0, torch.nan]])
    img, txt = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [1.0]])
    out = R.recall_at_k(img, txt, np.array([0, 1]), _index_sim(S), ks=(1,))
    assert out["i2t_R@1"] == 0.0 and out["t2i_R@1"] == 0.0
    S = torch.tensor([[1.0, torch.nan], [0.0, 1.0]])  # a wrong NaN outranks a right 1.0
    out = R.recall_at_k(img, txt, np.array([0, 1]), _index_sim(S), ks=(1,))
    assert out["i2t_R@1"] == 0.5 and out["t2i_R@1"] == 0.5


@pytest.mark.parametrize("name", ["meru", "clip"])
def test_collapsed_model_scores_zero(name):
    """All embeddings equal: every score ties, so R@K = 0 while K <= the number of wrong items."""
    method = M.get(name)
    N, per = 20, 3
    v = torch.nn.functional.normalize(torch.ones(1, 8), dim=-1) if name == "clip" else torch.full((1, 8), 0.3)
    bench = {"caption_image": np.repeat(np.arange(N), per), "captions": [f"c{i}" for i in range(N * per)]}
    out = R.evaluate_retrieval({"image": v.expand(N, 8), "text": v.expand(N * per, 8), "curv": 1.0}, bench,
                               method=method, ks=(1, 5, 10, 19, 20))
    for k in (1, 5, 10, 19):
        assert out[f"i2t_R@{k}"] == 0.0 and out[f"t2i_R@{k}"] == 0.0
    # t2i at K = N: 19 wrong images -> rank 19 < 20; i2t has 57 wrong captions -> still 0
    assert out["t2i_R@20"] == 1.0 and out["i2t_R@20"] == 0.0


def test_duplicate_captions_rule_and_counts():
    from hyplib.data.benchmarks import caption_duplicates

    method = M.get("meru")
    # captions 0,1 (image 0), 2 (image 1), 3 (image 2); caption 2 repeats caption 0's text
    # and caption 1 repeats caption 3's. Texts embed by their string, so duplicates coincide.
    captions = ["a dog", "a cat", "a dog", "a cat"]
    cap = np.array([0, 0, 1, 2])
    emb = {"a dog": torch.tensor([0.5, 0.1]), "a cat": torch.tensor([0.1, 0.5])}
    text = torch.stack([emb[c] for c in captions])
    image = torch.stack([emb["a dog"], emb["a dog"], emb["a cat"]])  # each image sits on its captions
    out = R.evaluate_retrieval({"image": image, "text": text, "curv": 1.0},
                               {"caption_image": cap, "captions": captions}, method=method, ks=(1, 2, 3))
    # i2t: image 0's best own caption "a dog" ties image 1's identical "a dog": rank 1, miss@1.
    # Image 1's own "a dog" ties image 0's: miss@1. Image 2 "a cat" ties image 0's "a cat": miss@1.
    assert out["i2t_R@1"] == 0.0 and out["i2t_R@2"] == 1.0
    # t2i: captions 0 and 2 ("a dog") -> images 0 and 1 tie: both miss; caption 1 ("a cat", image 0)
    # -> image 2 sits on it: miss; caption 3 ("a cat", image 2) -> image 2 strictly best: hit.
    assert out["t2i_R@1"] == 0.25 and out["t2i_R@2"] == 0.75
    assert out["captions_distinct"] == 2.0 and out["captions_shared"] == 4.0
    dup = caption_duplicates(["x", "x", "y", "z", "z"], [0, 0, 1, 2, 3])
    # "x" repeats within image 0 only (not shared); "z" is shared by images 2 and 3
    assert dup == {"captions": 5, "distinct": 3, "repeated": 4, "shared_across_images": 2, "largest_group": 2}
    with pytest.raises(ValueError, match="caption_image"):
        caption_duplicates(["x"], [0, 1])
