"""Forward+backward time of each method's objective alone, as a ratio to CLIP's.

Batch 1024, embed 512 (PHyCLIP: 64 factors x 8), CPU, float32. Embeddings are leaves that
require grad (lifted once from random features, outside the timed region), so only the
objective is timed. Median of ``--reps`` runs after one warm-up.

Beside the time ratio it prints each objective's matrix-multiply FLOPs (forward + backward,
counted by ``torch.utils.flop_counter``) as a ratio to CLIP's: HyCoCLIP, ARGENT and PHyCLIP
build three (B, B) logit matrices where CLIP builds one, so their GEMMs alone cost about 3x
CLIP's whole objective. For PHyCLIP it also times one ``log`` pass over its per-factor
distances (3 matrices x k x B x B entries): a floor no implementation of the product-distance
logits can go under, since each entry needs at least one logarithm.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/objectives.py [--batch 1024] [--reps 5]``
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

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


def gemm_flops(method, emb: Embeddings) -> int:
    """Matrix-multiply FLOPs of one ``loss(emb).backward()``."""
    with FlopCounterMode(display=False) as counter:
        method.loss(emb)["loss"].backward()
    return counter.get_total_flops()


def log_floor(entries: int, reps: int) -> float:
    """Median seconds of one in-place ``log`` over ``entries`` float32 values, in 2**20-sized chunks."""
    chunk = torch.rand(2 ** 20) + 1.0
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        for _ in range(entries // chunk.numel()):
            chunk.log_().add_(1.0)  # keep the argument >= 1 so every pass does the same work
        if i:
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
    results, flops = {}, {}
    for name, overrides in entries:
        method = methods.get(name, **overrides)
        label = name + "".join(f":{v}" for v in overrides.values())
        emb = make_embeddings(method, args.batch, args.dim)
        results[label] = time_objective(method, emb, args.reps)
        flops[label] = gemm_flops(method, emb)
    base = results["clip"]
    print(f"{'method':<12}{'ms':>10}{'x clip':>9}{'GEMM GFLOP':>12}{'x clip':>9}")
    for label, seconds in results.items():
        print(f"{label:<12}{1000 * seconds:>10.1f}{seconds / base:>9.2f}"
              f"{flops[label] / 1e9:>12.2f}{flops[label] / flops['clip']:>9.2f}")
    k = methods.get("phyclip").defaults["k"]
    floor = log_floor(3 * k * args.batch * args.batch, args.reps)
    print(f"phyclip floor: one log pass over 3 x ({k}, {args.batch}, {args.batch}) per-factor distances "
          f"= {1000 * floor:.1f} ms = {floor / base:.2f}x clip")


if __name__ == "__main__":
    main()
