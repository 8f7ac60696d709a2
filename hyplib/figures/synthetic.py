"""Synthetic stand-ins for trained runs and benchmarks, to exercise the figure and table layer
(tests, notebook smoke runs) without training anything. **Not results**: the metric values
are invented, shaped only so that every code path (holds / fails / inconclusive) is reachable.

* :func:`write_bench`: tiny benchmarks of every kind (random pixels, templated captions).
* :func:`write_runs`: run folders like the workflow's (``metrics.json`` via
  :func:`hyplib.evaluation.write_metrics`, ``embeddings.npz``, ``log.jsonl`` and, optionally, an
  untrained tiny ``final.pt`` loadable by :func:`hyplib.train.load_trained`); returns the run
  specs in the workflow's format.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["TINY_MODEL", "write_bench", "write_runs", "BASE_ACC"]

#: Tower sizes of the untrained checkpoints (seconds on one CPU core).
TINY_MODEL = dict(image_size=16, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2,
                  text_width=32, text_layers=1, text_heads=2, context_length=16)
EMBED_DIM = 16
#: Invented zero-shot accuracies per method (only their order matters to the tests).
BASE_ACC = {"clip": 0.40, "meru": 0.41, "hycoclip": 0.45, "atmg": 0.43, "argent": 0.46, "phyclip": 0.47}
_WORDS = ["dog", "cat", "car", "tree", "boat", "bird", "house", "horse"]
_ADJ = ["red", "small", "old", "green"]


def _images(rng, n: int, size: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def write_bench(bench_dir, *, n: int = 8, size: int = 16, seed: int = 0) -> Path:
    """Write zeroshot, taxonomy, retrieval, pep, chains, composition and hierarcaps benchmarks."""
    from hyplib.data.benchmarks import write_benchmark

    rng = np.random.default_rng(seed)
    out = Path(bench_dir)
    classes = _WORDS[:4]
    write_benchmark(out, "taxonomy", {}, {"parent": {"root": None, "a": "root", "b": "root", **{
        c: ("a" if i < 2 else "b") for i, c in enumerate(classes)}}, "names": {c: c for c in classes},
        "leaves": classes})
    write_benchmark(out, "zeroshot", {"images": _images(rng, n, size), "labels": np.arange(n) % 4},
                    {"classnames": classes, "class_ids": classes, "templates": ["a photo of a {}.", "a {}."]})
    caps = [f"a {_ADJ[i % 4]} {_WORDS[i % 8]} near a {_WORDS[(i + 3) % 8]}" for i in range(2 * n)]
    write_benchmark(out, "retrieval", {"images": _images(rng, n, size),
                                       "caption_image": np.repeat(np.arange(n), 2).astype(np.int64)},
                    {"captions": caps})
    texts = [f"a {w}" for w in _WORDS[:n]]
    pairs = [(1, i, 0, i) for i in range(n)] + [(0, i, 1, i) for i in range(n)]
    write_benchmark(out, "pep", {"images": _images(rng, n, size), "pairs": np.asarray(pairs, dtype=np.int64),
                                 "labels": np.asarray([1] * n + [0] * n, dtype=np.int64)},
                    {"texts": texts, "pair_types": ["caption>image"] * n + ["reversed"] * n})
    write_benchmark(out, "chains", {k: _images(rng, n, size) for k in ("whole", "part", "subpart")},
                    {"text_chains": [[_ADJ[i % 4], f"{_ADJ[i % 4]} {_WORDS[i % 8]}",
                                      f"a {_ADJ[i % 4]} {_WORDS[i % 8]} on the grass"] for i in range(n)]})
    write_benchmark(out, "composition", {"images": _images(rng, n, size)},
                    {"positives": caps[:n], "negatives": caps[n:], "heldout": [i % 3 == 0 for i in range(n)],
                     "subsets": [("add_obj", "replace_att", "swap_obj", "add_att")[i % 4] for i in range(n)]})
    write_benchmark(out, "hierarcaps", {"images": _images(rng, n, size)},
                    {"captions": [["an animal" if i % 2 else "a thing", f"a {_WORDS[i % 8]}",
                                   f"a {_ADJ[i % 4]} {_WORDS[i % 8]}",
                                   f"a {_ADJ[i % 4]} {_WORDS[i % 8]} next to a {_WORDS[(i + 1) % 8]}"]
                                  for i in range(n)]})
    return out


def _specs(seeds) -> list[dict]:
    specs = []

    def add(method, variant, seed, overrides, study):
        name = f"{method}-{variant}-s{seed}"
        for s in specs:
            if s["name"] == name:
                s["study"] = sorted(set(s["study"]) | {study})
                return
        specs.append({"name": name, "method": method, "variant": variant, "seed": seed,
                      "overrides": dict(overrides), "study": [study]})

    for m in BASE_ACC:
        for s in seeds:
            add(m, "base", s, {}, "main")
    for m in ("meru", "atmg"):
        for c in (0.1, 0.5, 1.0):
            for s in seeds:
                add(m, f"c{c:g}", s, {"curv_init": c, "learn_curv": False}, "curvature")
    for tag, over in (("base", {}), ("k1", {"k": 1}), ("linf", {"how": "linf"})):
        for s in seeds:
            add("phyclip", tag, s, over, "phyclip_ablation")
    return specs


def _metrics(spec: dict, rng) -> dict:
    m, over = spec["method"], spec["overrides"]
    acc = BASE_ACC[m] + rng.normal(0, 0.004)
    if "curv_init" in over and m == "meru":
        acc -= 0.15 * max(0.0, over["curv_init"] - 0.1)
    acc -= {"linf": 0.25}.get(over.get("how"), 0.0) + (0.1 if over.get("k") == 1 else 0.0)
    text_r, image_r = (0.8, 1.2) if m != "clip" else (1.0, 1.0)
    hyper = m != "clip"
    out = {"zeroshot/mean_per_class_acc": acc, "zeroshot/top1": acc + 0.01,
           "retrieval/i2t_R@1": acc / 2, "retrieval/i2t_R@5": acc, "retrieval/t2i_R@1": acc / 2,
           "retrieval/t2i_R@5": acc, "hierarchy/reference/TIE": 6.0 - 5 * acc,
           "hierarchy/reference/LCA": 4.0 - 3 * acc, "hierarchy/reference/J": acc + 0.2,
           "chains/depth1_acc": 0.8 if m == "atmg" else 0.5 + rng.normal(0, 0.01),
           "chains/depth2_acc": 0.6 if m == "atmg" else 0.2 + rng.normal(0, 0.01),
           "chains/text_depth2_acc": 0.3, "composition/acc": acc + 0.1, "hierarcaps/tau": 0.2,
           "diagnostics/radius/text/mean": text_r + rng.normal(0, 0.01 * hyper),
           "diagnostics/radius/image/mean": image_r + rng.normal(0, 0.01 * hyper),
           "diagnostics/radius/text/std": 0.1 * hyper, "diagnostics/radius/image/std": 0.1 * hyper,
           "diagnostics/radius/text/median": 0.1 if m in ("meru", "hycoclip") else 0.8,
           "diagnostics/curv_mean": float(over.get("curv_init", 0.1 if m == "meru" else 1.0))}
    out["diagnostics/radius/text_minus_image"] = (out["diagnostics/radius/text/mean"]
                                                  - out["diagnostics/radius/image/mean"])
    if hyper:
        out.update({"pep/auc": acc + 0.3, "pep/ap": acc + 0.25})
    return out


def _arrays(spec: dict, rng, embeddings: bool = True) -> dict:
    m = spec["method"]
    text_r, image_r = (0.15, 1.2) if m != "clip" else (1.0, 1.0)
    out = {"radius_image": np.abs(rng.normal(image_r, 0.1 * (m != "clip"), 40)),
           "radius_text": np.abs(rng.normal(text_r, 0.05 * (m != "clip"), 40)),
           "radius_box_image": np.abs(rng.normal(0.9, 0.1, 30)),
           "radius_box_text": np.abs(rng.normal(0.5, 0.1, 30)),
           "eig_image": np.sort(rng.exponential(1.0, EMBED_DIM))[::-1] ** 2,
           "eig_text": np.sort(rng.exponential(1.0, EMBED_DIM))[::-1] ** 3}
    if m != "clip":
        out["traversal_idx"] = np.sort(rng.integers(0, 32, size=(4, 6)), axis=1)[:, ::-1].copy()
    if embeddings and m != "phyclip":
        out.update(_embedding_sample(m, rng))
    return out


def _embedding_sample(method: str, rng, n: int = 8) -> dict:
    """``emb_image`` (n, D), ``emb_text`` (2n, D), ``curv``: the evaluation's embedding samples
    (unit vectors for CLIP, Lorentz space parts with texts nearer the root otherwise)."""
    import torch

    from hyplib import lorentz

    img, txt = rng.normal(size=(n, EMBED_DIM)), rng.normal(size=(2 * n, EMBED_DIM))
    if method == "clip":
        unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
        return {"emb_image": unit(img), "emb_text": unit(txt), "curv": np.array(1.0)}

    def lift(v, r):  # tangent vectors of norm r at the root
        v = r * v / np.linalg.norm(v, axis=1, keepdims=True)
        return lorentz.expmap0(torch.as_tensor(v), curv=1.0).numpy()

    return {"emb_image": lift(img, 1.5), "emb_text": lift(txt, 0.7), "curv": np.array(1.0)}


def _log_lines(spec: dict, steps: int) -> list[dict]:
    m, over = spec["method"], spec["overrides"]
    c0, learn = float(over.get("curv_init", 1.0)), bool(over.get("learn_curv", True))
    lines = []
    for t in range(1, steps + 1):
        frac = t / steps
        c = max(0.1 * c0, c0 * (1 - frac) ** 2) if learn and m == "meru" else c0
        rec = {"step": t, "loss": 3.0 - frac, "curv": [c] * 4 if m == "phyclip" else c,
               "alphas": {"image": 0.25 + 0.1 * frac, "text": 0.25 + 0.05 * frac}, "logit_scale": 14.3}
        if m in ("meru", "hycoclip", "argent", "phyclip"):
            rec["entailment"] = (0.5 * (1 - frac) ** 3) if m in ("meru", "hycoclip") else 0.3
        lines.append(rec)
    return lines


def _method_overrides(spec: dict) -> dict:
    """The spec's overrides plus the tiny width (PHyCLIP: ``k * d = 16``)."""
    over = dict(spec["overrides"])
    if spec["method"] == "phyclip":
        over.setdefault("d", EMBED_DIM // over.get("k", 4))
        over.setdefault("k", 4)
    else:
        over["embed_dim"] = EMBED_DIM
    return over


def _checkpoint(spec: dict, path: Path) -> None:
    import torch

    from hyplib import methods, models

    over = _method_overrides(spec)
    torch.manual_seed(spec["seed"])
    model = models.build_model(TINY_MODEL, methods.get(spec["method"], **over))
    cfg = {"name": spec["name"], "method": spec["method"], "method_overrides": over, "seed": spec["seed"],
           "model": TINY_MODEL}
    torch.save({"model": model.state_dict(), "config": cfg, "step": 0, "method": spec["method"],
                "summary": {}}, path)


def write_runs(root, *, seeds=(0, 1), steps: int = 20, checkpoints: bool = True, seed: int = 0,
               methods_with_checkpoints=("clip", "meru", "hycoclip", "atmg", "argent", "phyclip"),
               embeddings: bool = True) -> list[dict]:
    """Write synthetic run folders under ``root/train/<run>`` and ``root/eval/<run>``; returns specs.

    ``embeddings``: include the embedding samples (``emb_image``, ``emb_text``, ``curv``) in
    ``embeddings.npz`` as the evaluation does; without them the figures that plot embeddings draw empty panels.
    """
    from hyplib.evaluation import write_metrics

    rng = np.random.default_rng(seed)
    root = Path(root)
    specs = _specs(seeds)
    for spec in specs:
        train_dir, eval_dir = root / "train" / spec["name"], root / "eval" / spec["name"]
        train_dir.mkdir(parents=True, exist_ok=True)
        eval_dir.mkdir(parents=True, exist_ok=True)
        spec["train_dir"], spec["eval_dir"] = str(train_dir), str(eval_dir)
        write_metrics(eval_dir / "metrics.json", _metrics(spec, rng),
                      {"method": spec["method"], "method_overrides": _method_overrides(spec)}, spec["seed"])
        np.savez(eval_dir / "embeddings.npz", **_arrays(spec, rng, embeddings))
        (train_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _log_lines(spec, steps)))
        wanted = spec["variant"] == "base" or spec["method"] == "phyclip"
        if checkpoints and wanted and spec["method"] in methods_with_checkpoints:
            _checkpoint(spec, train_dir / "final.pt")
    return specs
