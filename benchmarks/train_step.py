"""Training steps per second of every method, as a ratio to CLIP measured in the same run.

    python benchmarks/train_step.py                      # CPU: default tiny model, batch 128
    python benchmarks/train_step.py --methods clip meru --steps 3 --rounds 2

One step is the training loop's own :class:`hyplib.training.step.StepRunner` (forward under
autocast, loss, backward, AdamW, clamps) on a fixed random batch, so data loading is not
timed. Methods are timed round-robin (``--rounds`` rounds of ``--steps`` steps each) and the
best round is reported (the least disturbed by other processes), so a busy machine does not
favour whichever method ran first; the median round is printed beside it.
Box methods (HyCoCLIP, ARGENT, PHyCLIP) encode a box crop and a box phrase per sample, i.e.
twice the images and texts of CLIP; the last column normalises for that.

On a CUDA machine the same table follows for ViT-S/16 (224 px, 12-layer text tower) at batch
256 with bf16 autocast; on CPU that part is skipped with the reason printed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from hyplib import methods, models
from hyplib.training.config import resolve_config
from hyplib.training.schedule import build_optimizer
from hyplib.training.step import StepRunner

ROOT = Path(__file__).resolve().parents[1]
GPU_MODEL = {"vision_model": "ViT-S-16"}


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


def make_runner(name: str, model_cfg: dict, device, precision: str) -> tuple[StepRunner, torch.nn.Module]:
    method = methods.get(name)
    torch.manual_seed(0)
    model = models.build_model(model_cfg, method).to(device).train()
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


def bench(names, model_cfg, batch_size, steps, rounds, device, precision) -> dict[str, float]:
    runners = {}
    for name in names:
        runner, model = make_runner(name, model_cfg, device, precision)
        batch = random_batch(model_cfg, runner.method.uses_boxes, batch_size, device)
        time_steps(runner, batch, 1, device)  # warm-up: allocator, kernels, first-step AdamW state
        runners[name] = (runner, batch)
    results = {name: [] for name in names}
    for _ in range(rounds):
        for name, (runner, batch) in runners.items():
            results[name].append(time_steps(runner, batch, steps, device))
    return {name: (max(v), statistics.median(v)) for name, v in results.items()}


def report(title: str, rates: dict[str, tuple[float, float]]) -> None:
    """Best and median steps/s per method, the best as a ratio to CLIP's best."""
    print(f"\n{title}")
    base = rates["clip"][0] if "clip" in rates else None
    print(f"{'method':<10}{'steps/s':>9}{'median':>9}{'x CLIP':>9}{'encodes':>9}{'x CLIP per encode':>19}")
    for name, (best, median) in rates.items():
        enc = 2 if methods.get(name).uses_boxes else 1
        ratio = best / base if base else float("nan")
        print(f"{name:<10}{best:>9.3f}{median:>9.3f}{ratio:>8.2f}x{enc:>8}x{ratio * enc:>18.2f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "config/runs/default.yaml"),
                   help="run config whose model: section is timed")
    p.add_argument("--methods", nargs="+", default=methods.names())
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads on CPU (default: unchanged)")
    p.add_argument("--gpu-batch", type=int, default=256)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = ["clip"] + [n for n in args.methods if n != "clip"]
    cfg = resolve_config(args.config)
    cpu = bench(names, cfg["model"], args.batch, args.steps, args.rounds, torch.device("cpu"), "fp32")
    report(f"CPU ({torch.get_num_threads()} threads), {args.config}, batch {args.batch}, fp32", cpu)
    if not torch.cuda.is_available():
        print(f"\nGPU part skipped: no CUDA device (torch {torch.__version__}, "
              f"torch.cuda.is_available() is False)")
        return 0
    dev = torch.device("cuda")
    gpu = bench(names, GPU_MODEL, args.gpu_batch, max(args.steps, 10), args.rounds, dev, "bf16")
    report(f"GPU {torch.cuda.get_device_name(dev)}, ViT-S/16, batch {args.gpu_batch}, bf16 autocast", gpu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
