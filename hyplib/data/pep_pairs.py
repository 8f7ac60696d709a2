"""PEP pairs (ARGENT's protocol, docs/METHODS.md section 4) built from real caption chains.

Input: images with caption chains ordered generic -> specific (HierarCaps: 4 levels). With
``texts`` the chains flattened (text ``L * i + l`` is level ``l`` of image ``i``), pairs are
``(parent_kind, parent_idx, child_kind, child_idx)`` with kind 0 = image, 1 = text:

* positives: ``caption>image`` (each level of image ``i`` over image ``i``) and
  ``generic>specific`` (level ``a`` over level ``b > a`` of the same chain);
* negatives ``reversed``: the specific level over the generic one, and image ``i`` over one of
  its own captions (an image is never a parent);
* negatives ``cross``: the most specific caption of image ``i`` over another image ``j`` and
  over ``j``'s most specific caption, drawn ``cross_per_image`` times per image.

Identical texts inside a chain give no pair. Real captions cannot be proven false of another
image as the generator's scenes can; a cross pair is kept only when the two chains share no
caption below the root level (compared case- and space-insensitively), which leaves the
negatives very likely but not provably false. The manifest says so.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

CROSS_NOTE = ("cross negatives: the most specific caption of one image over another image (and over its "
              "most specific caption), kept when the chains share no caption below the root level; "
              "likely, not provably, false")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def pep_from_chains(images: np.ndarray, chains: list[list[str]], *, seed: int = 0,
                    cross_per_image: int = 3) -> tuple[dict, dict]:
    """PEP benchmark dict (for ``save_benchmark``) and a summary for the manifest.

    Args:
        images: uint8 (N, H, W, 3).
        chains: N lists of L >= 2 captions, generic -> specific.
        seed: draws of the cross-image partners.
        cross_per_image: partner draws per image (a draw failing the filter adds nothing).

    Returns:
        ``(bench, info)``: ``bench`` with ``images, pairs (P,4) int64, labels (P,) int64, texts,
        pair_types``; ``info`` with the count of each pair type and the note on cross negatives.
    """
    chains = [list(c) for c in chains]
    n = len(chains)
    if n == 0 or len(images) != n:
        raise ValueError(f"PEP needs one chain per image, got {len(images)} images and {n} chains")
    L = len(chains[0])
    if L < 2 or any(len(c) != L for c in chains):
        raise ValueError("PEP needs caption chains of one length >= 2")
    texts = [t for c in chains for t in c]
    below_root = [{_norm(t) for t in c[1:]} for c in chains]
    rng = np.random.default_rng([seed, 3])  # stream 3: PEP, as in the generator's STREAMS
    pairs, labels, types = [], [], []

    def add(pk, pi, ck, ci, label, kind):
        pairs.append((pk, pi, ck, ci))
        labels.append(label)
        types.append(kind)

    for i, chain in enumerate(chains):
        for lv in range(L):
            add(1, L * i + lv, 0, i, 1, "caption>image")
        for a in range(L):
            for b in range(a + 1, L):
                if _norm(chain[a]) != _norm(chain[b]):
                    add(1, L * i + a, 1, L * i + b, 1, "generic>specific")
                    add(1, L * i + b, 1, L * i + a, 0, "reversed")
        add(0, i, 1, L * i + int(rng.integers(L)), 0, "reversed")
        for j in sorted(set(rng.integers(n, size=cross_per_image).tolist())):
            if j == i or below_root[i] & below_root[j]:
                continue
            add(1, L * i + L - 1, 0, j, 0, "cross")
            add(1, L * i + L - 1, 1, L * j + L - 1, 0, "cross")
    bench = {"images": np.asarray(images, np.uint8), "pairs": np.asarray(pairs, np.int64).reshape(-1, 4),
             "labels": np.asarray(labels, np.int64), "texts": texts, "pair_types": types}
    return bench, {"pair_types": dict(Counter(types)), "note": CROSS_NOTE}
