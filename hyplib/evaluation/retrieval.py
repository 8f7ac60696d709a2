"""Image-text retrieval: Recall@K in both directions, in bounded memory.

A query hits at K when any of its ground-truth items ranks within the top K. Image->text:
an image's ground truth is every caption of it; text->image: the caption's one image.

The score matrix (N images x M captions) is never held whole: blocks of image rows are
scored against all captions, and per block we keep

* image->text: the rank of each image's best-scoring caption, computed within the row itself;
* text->image: each caption's running top-``max(ks) + 1`` image scores, and its ground-truth
  image's score (taken from the same block matrix, so it is bit-identical to the entry it is
  compared with). Rank (wrong images reaching it) < K iff fewer than K + 1 kept scores reach it.

**Ties are broken pessimistically** (:data:`hyplib.evaluation._common.TIE_RULE`): the rank of a
ground-truth item is the number of *wrong* items scoring at least as high, so a tie with a
wrong item is a miss and a collapsed model (all embeddings equal) scores R@K = 0 unless K
exceeds the number of wrong items. NaN scores count against the model.

**Duplicate captions.** The ground truth is defined by index, never by text: an image's hits are
its own captions, including one whose text another image's caption repeats; a caption of another
image is never a hit, even when its text is identical to one of the image's own (identical text
gives identical embeddings, so such a caption ties and, by the rule above, counts as a miss).
:func:`hyplib.data.benchmarks.caption_duplicates` counts them; :func:`evaluate_retrieval`
reports the counts beside the recalls (``captions_distinct``, ``captions_shared``), and the
real-data preparation writes them in ``manifest.json``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from hyplib.evaluation import _common as C

#: Default budget for one score block: 2**22 entries (16 MiB of float32) plus the
#: similarity's temporaries.
BLOCK_ELEMS = 1 << 22


def recall_at_k(image: Tensor, text: Tensor, caption_image, sim, curv=None, *,
                ks: Sequence[int] = (1, 5, 10), block_elems: int = BLOCK_ELEMS) -> dict:
    """Recall@K for image->text and text->image.

    Args:
        image: (N, D) image embeddings.
        text: (M, D) caption embeddings.
        caption_image: (M,) int index of each caption's image in [0, N).
        sim: ``sim(image_block (b, D), text (M, D), curv) -> (b, M)``, higher = better.
        curv: passed through to ``sim``.
        ks: the K values.
        block_elems: at most this many score entries per block (>= M; one row minimum).

    Returns:
        ``{"i2t_R@K": float, "t2i_R@K": float, ...}`` in [0, 1]; images without captions are
        left out of the image->text average. Ties are misses (module docstring).
    """
    N, M = image.shape[0], text.shape[0]
    cap = torch.as_tensor(np.asarray(caption_image), dtype=torch.long)
    if cap.shape != (M,):
        raise ValueError(f"caption_image must have one entry per caption ({M}), got shape {tuple(cap.shape)}")
    if M == 0 or N == 0:
        raise ValueError(f"retrieval needs images and captions, got {N} images and {M} captions")
    if cap.min() < 0 or cap.max() >= N:
        raise ValueError(f"caption_image indices must lie in [0, {N}), got [{int(cap.min())}, {int(cap.max())}]")
    ks = sorted({int(k) for k in ks})
    # One more than the largest K: the ground truth's own score is among the kept ones when it
    # matters, and is subtracted (see below).
    kmax = min(ks[-1] + 1, N)
    rows = max(1, block_elems // M)

    i2t_rank = torch.full((N,), M, dtype=torch.long)  # M = "no caption": never a hit
    t2i_top = t2i_gt = None
    order = torch.argsort(cap, stable=True)
    sorted_cap = cap[order]
    for s in range(0, N, rows):
        e = min(N, s + rows)
        S = C.as_float(sim(image[s:e], text, curv), "scores")
        # Captions whose image lies in this block, and their row in it.
        lo, hi = torch.searchsorted(sorted_cap, torch.tensor([s, e]))
        js = order[lo:hi]
        r = cap[js] - s
        if bool(torch.isnan(S).any()):  # rare: NaN counts against the model (TIE_RULE)
            right = torch.zeros(S.shape, dtype=torch.bool)
            right[r, js] = True
            S_right, S_wrong = C.split_right_wrong(S, right)
            S = torch.where(right, S_right, S_wrong)
        gt = S[r, js]
        if t2i_top is None:  # allocated in the scores' dtype at the first block
            t2i_top = torch.full((kmax, M), -torch.inf, dtype=S.dtype)
            t2i_gt = torch.full((M,), -torch.inf, dtype=S.dtype)
        t2i_gt[js] = gt
        # image->text: captions reaching the best own one, less the own ones among them.
        best = torch.full((e - s,), -torch.inf, dtype=S.dtype).scatter_reduce(0, r, gt, reduce="amax")
        own_reaching = torch.zeros(e - s, dtype=torch.long).scatter_add(0, r, (gt >= best[r]).long())
        has = torch.zeros(e - s, dtype=torch.bool)
        has[r] = True
        rank = (S >= best.unsqueeze(1)).sum(1) - own_reaching
        i2t_rank[s:e] = torch.where(has, rank, torch.full_like(rank, M))
        merged = torch.cat([t2i_top, torch.topk(S, min(kmax, e - s), dim=0).values])
        t2i_top = torch.topk(merged, kmax, dim=0).values
    # text->image: with c images scoring >= the ground truth (itself included), the kept top
    # kmax hold min(c, kmax) of them, so min(c, kmax) - 1 wrong images reach it: exact whenever
    # it is below any K <= kmax - 1, and >= K otherwise.
    t2i_rank = (t2i_top >= t2i_gt.unsqueeze(0)).sum(0) - 1
    has_caption = i2t_rank < M
    out = {}
    for k in ks:
        out[f"i2t_R@{k}"] = float((i2t_rank[has_caption] < k).double().mean())
        out[f"t2i_R@{k}"] = float((t2i_rank < k).double().mean())
    return out


def evaluate_retrieval(source, benchmark: dict, *, method=None, curv=None, score: str = "method",
                       ks: Sequence[int] = (1, 5, 10), batch_size: int = 128,
                       block_elems: int = BLOCK_ELEMS) -> dict:
    """Retrieval benchmark -> Recall@K dict.

    Args:
        source: a model, or a mapping ``{"image": (N, D), "text": (M, D), "curv": ...}``.
        benchmark: ``load_benchmark(dir, "retrieval")``: ``images`` (N, H, W, 3),
            ``caption_image`` (M,), ``captions`` [M].
        method: the Method (default ``source.method``).
        score: similarity variant, see :func:`hyplib.evaluation._common.similarity_fn`.

    Returns:
        ``{"i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", ..., "rsum"}`` (rsum in percent
        points summed, the usual aggregate) and, when the benchmark has its caption texts,
        ``captions_distinct`` and ``captions_shared`` (see
        :func:`hyplib.data.benchmarks.caption_duplicates`).
    """
    C.need(benchmark, ["caption_image"], "the retrieval benchmark")
    method = C.resolve_method(source, method)
    curv = C.resolve_curv(source, curv)
    image = C.embeddings(source, "image", lambda: C.encode_images(source, benchmark["images"], batch_size=batch_size))
    text = C.embeddings(source, "text",
                        lambda: C.encode_texts(source, benchmark["captions"], batch_size=2 * batch_size))
    C.check_pair(image, text, method, curv)
    sim = C.similarity_fn(method, score)
    # Blocks hold block_elems floats of intermediates, whatever the similarity's width.
    out = recall_at_k(image, text, benchmark["caption_image"], sim, curv, ks=ks,
                      block_elems=max(1, block_elems // getattr(sim, "width", 1)))
    out["rsum"] = 100.0 * sum(out.values())
    if "captions" in benchmark:
        from hyplib.data.benchmarks import caption_duplicates

        dup = caption_duplicates(benchmark["captions"], benchmark["caption_image"])
        out["captions_distinct"] = float(dup["distinct"])
        out["captions_shared"] = float(dup["shared_across_images"])
    return out
