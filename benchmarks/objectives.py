"""Forward+backward time of each method's objective alone, as a ratio to CLIP's.

Batch 1024, embed 512 (PHyCLIP: 64 factors x 8), CPU, float32. Embeddings are leaves that
require grad (lifted once from random features, outside the timed region), so only the
objective is timed. Every objective (and the floor below) is timed round-robin, one call of
each per round, and the median of ``--reps`` rounds after a warm-up round is reported: on a
shared machine a slow spell then falls on every row alike.

Beside the time ratio it prints each objective's matrix-multiply FLOPs (forward + backward,
counted by ``torch.utils.flop_counter``) as a ratio to CLIP's: HyCoCLIP, ARGENT and PHyCLIP
build three (B, B) logit matrices where CLIP builds one, so their GEMMs alone cost about 3x
CLIP's whole objective. For PHyCLIP it also times one ``log`` pass over its per-factor
distances (3 matrices x k x B x B entries): a floor no implementation of the product-distance
logits can go under, since each entry needs at least one logarithm. Its last line times the
kernel again built with its ``log`` as the identity: the rest of its work (the per-factor dot
products, square roots and the backward's contractions), in units of the same floor. With a
learnable curvature the forward and the backward each take one logarithm per entry, so the
kernel's own lower bound is two floors plus that rest.

The C kernels of :mod:`hyplib.native` run where they are built: PHyCLIP's l1 distance
(``product_dist``), the Lorentz all-pairs distance's elementwise passes (``lorentz_dist``: MERU,
HyCoCLIP, ARGENT), the all-pairs exterior angle's (``pairwise_angle``: ATMG) and the paired
exterior angle's coordinate passes (``paired_angle``: the entailment terms of MERU, HyCoCLIP and
ARGENT). The rows
``meru:torch``, ``atmg:torch`` and ``phyclip:torch`` time the same objectives with every kernel
turned off (the PyTorch paths) for comparison. GEMM FLOPs are those of the formulation, counted
on the PyTorch path (the kernels' multiply-adds are invisible to the counter).

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

from hyplib import methods, native
from hyplib.methods import Embeddings
from hyplib.native import lorentz_dist, paired_angle, pairwise_angle, product_dist
from hyplib.training.compiled import compile_method

#: Rows timed on the PyTorch path, every C kernel turned off.
TORCH_PATH = "torch"
#: The C kernels the objectives use, by name.
NATIVE_KERNELS = {"product_dist": product_dist, "lorentz_dist": lorentz_dist, "pairwise_angle": pairwise_angle,
                  "paired_angle": paired_angle}


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


def objective_call(method, emb: Embeddings, on_torch_path: bool = False):
    """A no-argument callable running ``loss(emb).backward()`` (with every C kernel of
    :mod:`hyplib.native` turned off when ``on_torch_path``)."""
    def call():
        with native.turned_off() if on_torch_path else contextlib.nullcontext():
            method.loss(emb)["loss"].backward()
    return call


def time_round_robin(calls: dict, reps: int) -> dict[str, float]:
    """Median seconds of each ``label -> callable``, timed round-robin (one call of each per
    round, after a warm-up round), so that a slow spell of a shared machine falls on every
    entry alike rather than on whichever ran during it."""
    times: dict[str, list[float]] = {label: [] for label in calls}
    for i in range(reps + 1):
        for label, call in calls.items():
            t0 = time.perf_counter()
            call()
            if i:  # the first round is a warm-up
                times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(t) for label, t in times.items()}


def gemm_flops(method, emb: Embeddings) -> int:
    """Matrix-multiply FLOPs of one ``loss(emb).backward()``, on the PyTorch path (the C kernel's
    work is the same formulation, but the counter cannot see it)."""
    with FlopCounterMode(display=False) as counter, native.turned_off():
        method.loss(emb)["loss"].backward()
    return counter.get_total_flops()


def distance_call(batch: int, k: int, d: int):
    """A no-argument callable: one PHyCLIP distance matrix, forward + backward (the C kernel where
    it is built), on random points with a learnable curvature."""
    from hyplib.methods.fused import pairwise_product_dist

    g = torch.Generator().manual_seed(0)
    x, y = (0.3 * torch.randn(batch, k, d, generator=g) for _ in range(2))
    x.requires_grad_(), y.requires_grad_()
    curv = torch.ones(k, requires_grad=True)
    weights = torch.randn(batch, batch, generator=g)

    def call():
        (pairwise_product_dist(x, y, curv=curv) * weights).sum().backward()
    return call


def log_pass(entries: int):
    """A no-argument callable: one in-place ``log`` over ``entries`` float32 values, in 2**20-sized
    chunks (and one shorter chunk for the remainder, so small batches get a floor too)."""
    chunk = torch.rand(min(entries, 2 ** 20)) + 1.0
    full, rest = divmod(entries, chunk.numel())
    parts = [chunk] * full + ([chunk[:rest]] if rest else [])

    def call():
        for part in parts:
            part.log_().add_(1.0)  # keep the argument >= 1 so every pass does the same work
    return call


def build_without_log():
    """The product-distance kernel built with ``-DHYPLIB_LOG_IS_IDENTITY`` (its ``log`` returns its
    argument, so every other part of its work stays), declared; None where the build fails."""
    try:
        return product_dist._KERNEL.variant("-DHYPLIB_LOG_IS_IDENTITY")
    except (OSError, RuntimeError) as exc:
        print(f"(no ablation build of product_dist: {exc})")
        return None


def with_library(module, library, call):
    """``call`` run with ``module``'s kernel library swapped for ``library``."""
    def swapped():
        saved = module._library
        module._library = lambda: library
        try:
            call()
        finally:
            module._library = saved
    return swapped


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
    entries += [(n, {"path": TORCH_PATH}) for n in ("meru", "atmg", "phyclip")]
    print(f"objective forward+backward, batch {args.batch}, embed {args.dim} (phyclip 64x8), "
          f"CPU threads {torch.get_num_threads()}, median of {args.reps} rounds (round-robin), "
          f"{'compiled (train.compile)' if args.compile else 'eager'}")
    kernels = {name: module.available() for name, module in NATIVE_KERNELS.items()}
    print("C kernels (hyplib.native): " + ", ".join(
        f"{name} {'built' if built else 'unavailable: ' + str(NATIVE_KERNELS[name].unavailable_reason())}"
        for name, built in kernels.items()) + f"; a ':{TORCH_PATH}' row runs the same objective with every kernel off")
    calls, flops = {}, {}
    for name, overrides in entries:
        on_torch_path = overrides.pop("path", None) == TORCH_PATH
        method = methods.get(name, **overrides)
        label = name + "".join(f":{v}" for v in overrides.values()) + (f":{TORCH_PATH}" if on_torch_path else "")
        emb = make_embeddings(method, args.batch, args.dim)
        calls[label] = objective_call(compile_method(method) if args.compile else method, emb, on_torch_path)
        flops[label] = gemm_flops(method, emb)
    k = methods.get("phyclip").defaults["k"]
    calls["floor"] = log_pass(3 * k * args.batch * args.batch)
    results = time_round_robin(calls, args.reps)
    floor = results.pop("floor")
    base = results["clip"]
    for line in table(results, flops, args.per_flop_target):
        print(line)
    ratio = results["phyclip"] / floor
    print(f"phyclip floor: one log pass over 3 x ({k}, {args.batch}, {args.batch}) per-factor distances "
          f"= {1000 * floor:.1f} ms = {floor / base:.2f}x clip; phyclip = {ratio:.2f}x its floor "
          f"(target <= {args.floor_target:g}: {'ok' if ratio <= args.floor_target else 'MISS'})")
    print(f"phyclip:{TORCH_PATH} (PyTorch path) = {results[f'phyclip:{TORCH_PATH}'] / floor:.2f}x the floor")
    d = methods.get("phyclip").defaults["d"]
    distance = distance_call(args.batch, k, d)
    one_calls = {"distance": distance, "floor": log_pass(k * args.batch * args.batch)}
    without_log = build_without_log() if kernels["product_dist"] else None
    if without_log is not None:
        one_calls["without log"] = with_library(product_dist, without_log, distance)
    one = time_round_robin(one_calls, args.reps)
    alone, one_floor = one["distance"], one["floor"]
    print(f"phyclip distance alone: one ({args.batch}, {args.batch}) matrix forward + backward = "
          f"{1000 * alone:.1f} ms = {alone / one_floor:.2f}x one log pass over its {k} x {args.batch} x {args.batch} "
          f"entries ({'C kernel' if kernels['product_dist'] else 'PyTorch path'})")
    if without_log is not None:
        rest = one["without log"]
        print(f"  the same kernel built with its log as the identity (all its other work) = {1000 * rest:.1f} ms = "
              f"{rest / one_floor:.2f}x; so its two logs per entry (the forward's and the backward's, for the "
              f"curvature) cost {(alone - rest) / one_floor:.2f}x")


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
