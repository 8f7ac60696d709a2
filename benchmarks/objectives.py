"""Forward+backward time of each method's objective alone, as a ratio to CLIP's.

Batch 1024, embed 512 (PHyCLIP: 64 factors x 8), CPU, float32. Embeddings are leaves that
require grad (lifted once from random features, outside the timed region), so only the
objective is timed. Median of ``--reps`` runs after one warm-up.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/objectives.py [--batch 1024] [--reps 5]``
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from hyplib import methods
from hyplib.methods import Embeddings


def make_embeddings(method, batch: int, dim: int, seed: int = 0) -> Embeddings:
    """Random features lifted by the method's own lift, detached into grad-requiring leaves."""
    g = torch.Generator().manual_seed(seed)
    k = method.defaults.get("k")
    curv = torch.ones(k) if method.geometry == "product" else torch.tensor(1.0)
    alpha = torch.full((k,), k / dim) ** 0.5 if method.geometry == "product" else torch.tensor(dim ** -0.5)
    with torch.no_grad():
        lifted = [method.lift(torch.randn(batch, dim, generator=g), alpha=alpha, curv=curv) for _ in range(4)]
    lifted = [x.requires_grad_() for x in lifted]
    boxes = lifted[2:] if method.uses_boxes else []
    scale = torch.tensor(1 / 0.07, requires_grad=True)
    return Embeddings(lifted[0], lifted[1], curv.requires_grad_(), scale, *boxes)


def time_objective(method, emb: Embeddings, reps: int) -> float:
    """Median seconds of ``loss(emb).backward()``."""
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        method.loss(emb)["loss"].backward()
        if i:  # the first run is a warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    entries = [(n, {}) for n in methods.names()] + [("atmg", {"variant": "code"})]
    print(f"objective forward+backward, batch {args.batch}, embed {args.dim} (phyclip 64x8), "
          f"CPU threads {torch.get_num_threads()}, median of {args.reps}")
    results = {}
    for name, overrides in entries:
        method = methods.get(name, **overrides)
        label = name + "".join(f":{v}" for v in overrides.values())
        results[label] = time_objective(method, make_embeddings(method, args.batch, args.dim), args.reps)
    base = results["clip"]
    print(f"{'method':<12}{'ms':>10}{'x clip':>9}")
    for label, seconds in results.items():
        print(f"{label:<12}{1000 * seconds:>10.1f}{seconds / base:>9.2f}")


if __name__ == "__main__":
    main()
