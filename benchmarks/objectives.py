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

PHyCLIP's l1 distance runs in the C kernel of :mod:`hyplib.native.product_dist` where it is built
(the row ``phyclip``); the row ``phyclip:torch`` times the same objective on the chunked PyTorch
path (``hyplib.methods.fused``) for comparison. GEMM FLOPs are those of the formulation, counted
on the PyTorch path for both rows (the kernel's multiply-adds are invisible to the counter).

Targets (issue 18), each checked within this one run and printed as ok/MISS:

* every method's objective time per GEMM FLOP within ``--per-flop-target`` (1.5) x CLIP's, i.e.
  ``(time / time_clip) / (flops / flops_clip) <= 1.5``;
* PHyCLIP's forward + backward within ``--floor-target`` (2) x its log-pass floor.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/objectives.py [--batch 1024] [--reps 5] [--compile]``
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from hyplib import methods
from hyplib.methods import Embeddings
from hyplib.native import product_dist as native_product_dist
from hyplib.training.compiled import compile_method

#: Rows timed on the PyTorch path with the C kernel turned off.
TORCH_PATH = "torch"


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
    """Matrix-multiply FLOPs of one ``loss(emb).backward()``, on the PyTorch path (the C kernel's
    work is the same formulation, but the counter cannot see it)."""
    with FlopCounterMode(display=False) as counter, native_product_dist.turned_off():
        method.loss(emb)["loss"].backward()
    return counter.get_total_flops()


def distance_alone(batch: int, k: int, d: int, reps: int) -> float:
    """Median seconds of one PHyCLIP distance matrix, forward + backward (the C kernel where it is
    built and not turned off), on random points with a learnable curvature."""
    from hyplib.methods.fused import pairwise_product_dist

    g = torch.Generator().manual_seed(0)
    x, y = (0.3 * torch.randn(batch, k, d, generator=g) for _ in range(2))
    x.requires_grad_(), y.requires_grad_()
    curv = torch.ones(k, requires_grad=True)
    weights = torch.randn(batch, batch, generator=g)
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        (pairwise_product_dist(x, y, curv=curv) * weights).sum().backward()
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def log_floor(entries: int, reps: int) -> float:
    """Median seconds of one in-place ``log`` over ``entries`` float32 values, in 2**20-sized chunks
    (and one shorter chunk for the remainder, so small batches get a floor too)."""
    chunk = torch.rand(min(entries, 2 ** 20)) + 1.0
    full, rest = divmod(entries, chunk.numel())
    parts = [chunk] * full + ([chunk[:rest]] if rest else [])
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        for part in parts:
            part.log_().add_(1.0)  # keep the argument >= 1 so every pass does the same work
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--per-flop-target", type=float, default=1.5)
    parser.add_argument("--floor-target", type=float, default=2.0)
    parser.add_argument("--compile", action="store_true",
                        help="time every objective (CLIP's too) as train.compile = true runs it; the warm-up "
                             "run compiles")
    args = parser.parse_args(argv)
    entries = [(n, {}) for n in methods.names()] + [("atmg", {"variant": "code"})]
    if native_product_dist.available():
        entries.append(("phyclip", {"path": TORCH_PATH}))
    print(f"objective forward+backward, batch {args.batch}, embed {args.dim} (phyclip 64x8), "
          f"CPU threads {torch.get_num_threads()}, median of {args.reps}, "
          f"{'compiled (train.compile)' if args.compile else 'eager'}")
    print("phyclip distance: " + ("C kernel (hyplib.native.product_dist); phyclip:torch is the PyTorch path"
                                  if native_product_dist.available() else
                                  f"PyTorch path (C kernel unavailable: {native_product_dist.unavailable_reason()})"))
    results, flops = {}, {}
    for name, overrides in entries:
        on_torch_path = overrides.pop("path", None) == TORCH_PATH
        method = methods.get(name, **overrides)
        label = name + "".join(f":{v}" for v in overrides.values()) + (f":{TORCH_PATH}" if on_torch_path else "")
        emb = make_embeddings(method, args.batch, args.dim)
        with native_product_dist.turned_off() if on_torch_path else contextlib.nullcontext():
            results[label] = time_objective(compile_method(method) if args.compile else method, emb, args.reps)
        flops[label] = gemm_flops(method, emb)
    base = results["clip"]
    k = methods.get("phyclip").defaults["k"]
    floor = log_floor(3 * k * args.batch * args.batch, args.reps)
    for line in table(results, flops, args.per_flop_target):
        print(line)
    ratio = results["phyclip"] / floor
    print(f"phyclip floor: one log pass over 3 x ({k}, {args.batch}, {args.batch}) per-factor distances "
          f"= {1000 * floor:.1f} ms = {floor / base:.2f}x clip; phyclip = {ratio:.2f}x its floor "
          f"(target <= {args.floor_target:g}: {'ok' if ratio <= args.floor_target else 'MISS'})")
    if f"phyclip:{TORCH_PATH}" in results:
        print(f"phyclip:{TORCH_PATH} (PyTorch path) = {results[f'phyclip:{TORCH_PATH}'] / floor:.2f}x the floor")
    d = methods.get("phyclip").defaults["d"]
    alone, one_floor = distance_alone(args.batch, k, d, args.reps), log_floor(k * args.batch * args.batch, args.reps)
    print(f"phyclip distance alone: one ({args.batch}, {args.batch}) matrix forward + backward = "
          f"{1000 * alone:.1f} ms = {alone / one_floor:.2f}x one log pass over its {k} x {args.batch} x {args.batch} "
          f"entries ({'C kernel' if native_product_dist.available() else 'PyTorch path'})")


def table(seconds: dict[str, float], flops: dict[str, int], target: float) -> list[str]:
    """Rows of time and GEMM FLOPs as ratios to CLIP's, and time per FLOP against ``target``."""
    lines = [f"{'method':<12}{'ms':>10}{'x clip':>9}{'GEMM GFLOP':>12}{'x clip':>9}{'time/FLOP x clip':>18}"]
    for label, t in seconds.items():
        per_flop = (t / seconds["clip"]) / (flops[label] / flops["clip"])
        verdict = "ok" if per_flop <= target else "MISS"
        lines.append(f"{label:<12}{1000 * t:>10.1f}{t / seconds['clip']:>9.2f}{flops[label] / 1e9:>12.2f}"
                     f"{flops[label] / flops['clip']:>9.2f}{per_flop:>13.2f} {verdict:<4}")
    lines.append(f"target: time per GEMM FLOP <= {target:g} x clip's for every method")
    return lines


if __name__ == "__main__":
    main()
