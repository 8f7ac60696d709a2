"""Training steps per second of every method, as a ratio to CLIP measured in the same run.

    python benchmarks/train_step.py                      # CPU: default tiny model, batch 128
    python benchmarks/train_step.py --methods clip meru --steps 3 --rounds 2
    python benchmarks/train_step.py --config config/runs/default.yaml --batch 64 --threads 1 \
        --compile-towers image                          # also each method with its image tower compiled

One step is the training loop's own :class:`hyplib.training.step.StepRunner` (forward under
autocast, loss, backward, AdamW, clamps) on a fixed random batch, so data loading is not
timed. Methods are timed round-robin (``--rounds`` rounds of ``--steps`` steps each) and the
best round is reported (the least disturbed by other processes), so a busy machine does not
favour whichever method ran first; the median round is printed beside it.
Box methods (HyCoCLIP, ARGENT, PHyCLIP) encode a box crop and a box phrase per sample, i.e.
twice the images and texts of CLIP. The restated target (issue 18) compares equal work: each
method's steps per second against its baseline's, at least ``--target`` (0.85) x, where the
baseline of a box method is CLIP trained with boxes (``use_boxes=true``: the same two encodes
per sample), and CLIP for the others. Both baselines are timed in the same run.

``--compile-towers image`` (or ``image text``) times every method a second time with those
towers through ``torch.compile`` (``train.compile_towers``), round-robin with the eager runners,
and prints the compiled table and each method's compiled / eager steps per second.

The GPU table (ViT-S/16, batch 256, AMP, peak memory) is ``benchmarks/gpu.py``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from hyplib import methods, models
from hyplib.training.compiled import compile_method, compile_towers
from hyplib.training.config import COMPILABLE_TOWERS, resolve_config
from hyplib.training.schedule import build_optimizer
from hyplib.training.step import StepRunner

ROOT = Path(__file__).resolve().parents[1]


def random_batch(model_cfg: dict, uses_boxes: bool, batch: int, device, seed: int = 0) -> dict:
    """Images (B,3,H,W) and full-length token rows, plus box crops/phrases for box methods."""
    vision, text = models.tower_configs(model_cfg, 512)
    g = torch.Generator().manual_seed(seed)
    size, length = vision.image_size, text.context_length
    out = {"image": torch.randn(batch, 3, size, size, generator=g),
           "text": torch.randint(1, 49000, (batch, length), generator=g)}
    if uses_boxes:
        out["image_box"] = torch.randn(batch, 3, size, size, generator=g)
        out["text_box"] = torch.randint(1, 49000, (batch, length), generator=g)
    return {k: v.to(device) for k, v in out.items()}


#: Label of CLIP trained with box pairs, the baseline of the box methods.
CLIP_BOXES = "clip+boxes"
#: Bench label -> (registry name, overrides).
SPECIAL = {CLIP_BOXES: ("clip", {"use_boxes": True})}


def method_for(label: str):
    """The configured method a bench label names (a registry name or :data:`SPECIAL`)."""
    name, overrides = SPECIAL.get(label, (label, {}))
    return methods.get(name, **overrides)


def make_runner(name: str, model_cfg: dict, device, precision: str,
                compile: bool = False, towers=()) -> tuple[StepRunner, torch.nn.Module]:
    """The loop's step for bench label ``name``; ``compile``: as ``train.compile = true``;
    ``towers``: as ``train.compile_towers``."""
    method = method_for(name)
    if compile:
        method = compile_method(method)
    torch.manual_seed(0)
    model = models.build_model(model_cfg, method).to(device).train()
    compile_towers(model, towers)
    train_cfg = resolve_config({})["train"]
    opt = build_optimizer(models.param_groups(model, train_cfg["weight_decay"]), train_cfg, device)
    return StepRunner(model, method, opt, device=device, precision=precision), model


def time_steps(runner: StepRunner, batch: dict, steps: int, device) -> float:
    """Steps per second over ``steps`` full optimisation steps."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss, _ = runner.forward(batch)
        runner.backward_step(loss)
    sync()
    return steps / (time.perf_counter() - t0)


#: Suffix of a bench label whose towers are compiled (``--compile-towers``).
COMPILED = "@compiled"


def bench(names, model_cfg, batch_size, steps, rounds, device, precision, towers=()) -> dict[str, float]:
    """Best and median steps/s per label; with ``towers``, each name also as ``name@compiled``."""
    runners = {}
    for label in list(names) + ([n + COMPILED for n in names] if towers else []):
        name = label.removesuffix(COMPILED)
        runner, model = make_runner(name, model_cfg, device, precision,
                                    towers=towers if label.endswith(COMPILED) else ())
        batch = random_batch(model_cfg, runner.method.uses_boxes, batch_size, device)
        time_steps(runner, batch, 1, device)  # warm-up: allocator, kernels, first-step AdamW state
        runners[label] = (runner, batch)
    names = list(runners)
    results = {name: [] for name in names}
    for _ in range(rounds):
        for name, (runner, batch) in runners.items():
            results[name].append(time_steps(runner, batch, steps, device))
    return {name: (max(v), statistics.median(v)) for name, v in results.items()}


def baseline(label: str) -> str:
    """The label a method is compared with: CLIP with boxes for box methods, else CLIP."""
    return CLIP_BOXES if method_for(label).uses_boxes and label != CLIP_BOXES else "clip"


def report(title: str, rates: dict[str, tuple[float, float]], target: float) -> list[str]:
    """Best and median steps/s per method; the best against CLIP's and against its baseline's."""
    lines = [f"\n{title}",
             f"{'method':<12}{'steps/s':>9}{'median':>9}{'x CLIP':>9}{'encodes':>9}{'baseline':>12}"
             f"{'x baseline':>12}"]
    for name, (best, median) in rates.items():
        enc = 2 if method_for(name).uses_boxes else 1
        ref = baseline(name)
        vs_base = best / rates[ref][0] if ref in rates else float("nan")
        verdict = "(baseline)" if name in ("clip", CLIP_BOXES) else "ok" if vs_base >= target else "MISS"
        lines.append(f"{name:<12}{best:>9.3f}{median:>9.3f}{best / rates['clip'][0]:>8.2f}x{enc:>8}x"
                     f"{ref:>12}{vs_base:>11.2f}x {verdict}")
    lines.append(f"target: steps/s >= {target:g} x the baseline's (same encodes per step)")
    print("\n".join(lines))
    return lines


def bench_labels(names: list[str]) -> list[str]:
    """CLIP first, CLIP with boxes when a box method is timed, then the rest in order."""
    rest = [n for n in names if n not in ("clip", CLIP_BOXES)]
    boxes = [CLIP_BOXES] if any(method_for(n).uses_boxes for n in rest) else []
    return ["clip"] + boxes + rest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "config/runs/default.yaml"),
                   help="run config whose model: section is timed")
    p.add_argument("--methods", nargs="+", default=methods.names())
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads on CPU (default: unchanged)")
    p.add_argument("--target", type=float, default=0.85, help="least steps/s ratio to the baseline")
    p.add_argument("--compile-towers", nargs="+", choices=COMPILABLE_TOWERS, default=None,
                   help="also time every method with these towers compiled (train.compile_towers)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = bench_labels(args.methods)
    cfg = resolve_config(args.config)
    towers = args.compile_towers or ()
    rates = bench(names, cfg["model"], args.batch, args.steps, args.rounds, torch.device("cpu"), "fp32", towers)
    title = f"CPU ({torch.get_num_threads()} threads), {args.config}, batch {args.batch}, fp32"
    report(title, {n: rates[n] for n in names}, args.target)
    if towers:
        compiled = {n: rates[n + COMPILED] for n in names}
        report(f"{title}, {' and '.join(towers)} tower(s) compiled", compiled, args.target)
        print(f"\ncompiled / eager steps per second ({', '.join(towers)} compiled; best round, median round)")
        for n in names:
            print(f"{n:<12}{compiled[n][0] / rates[n][0]:>8.2f}x{compiled[n][1] / rates[n][1]:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
