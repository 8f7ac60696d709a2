"""GPU step time and peak memory of every method against CLIP, and PHyCLIP's loss at batch 1024.

    python benchmarks/gpu.py                          # CUDA: ViT-S/16, batch 256, bf16 autocast
    python benchmarks/gpu.py --device cpu --tiny      # the same logic on CPU, tiny towers (smoke)

One step is the training loop's :class:`hyplib.training.step.StepRunner` (forward under
autocast, loss, backward, AdamW, clamps) on a fixed random batch, as in
``benchmarks/train_step.py``; each method is warmed up, then ``--steps`` steps are timed
between CUDA synchronisations, and the peak memory is CUDA's ``max_memory_allocated`` over
those steps. Overheads are against the method's baseline: CLIP, or CLIP trained with boxes
(``use_boxes=true``, the same two encodes per sample) for the box methods. Goals (issue 18):
within 5% of the baseline's step for MERU and ATMG, within 15% for the box methods.

The last line times PHyCLIP's objective alone (forward + backward, random embeddings, 64 x 8
factors) at batch 1024 and reports its peak memory. Without CUDA and without ``--device cpu``
the script exits with a message saying so.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import CLIP_BOXES, ROOT, baseline, bench_labels, make_runner, method_for, random_batch  # noqa: E402

from hyplib import methods  # noqa: E402
from hyplib.methods import Embeddings  # noqa: E402
from hyplib.training.config import resolve_config  # noqa: E402

#: The GPU towers: open_clip's ViT-S/16 (224 px) and its 12-layer text tower.
GPU_MODEL = {"vision_model": "ViT-S-16"}
#: Allowed step-time overhead over the baseline: box methods 15%, the others 5%.
GOALS = {False: 0.05, True: 0.15}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke runs)")
    p.add_argument("--tiny", action="store_true",
                   help="the embedded CPU run's tiny towers (config/runs/default.yaml) instead of ViT-S/16")
    p.add_argument("--methods", nargs="+", default=methods.names())
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=10, help="timed steps per method")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--loss-batch", type=int, default=1024, help="batch of the PHyCLIP objective timing")
    p.add_argument("--compile", action="store_true",
                   help="every method (baselines too) with train.compile = true: objective and lift compiled")
    return p.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> float:
    """Peak allocated bytes since the last reset (NaN off CUDA: not tracked)."""
    return float(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else float("nan")


def measure_step(label: str, model_cfg: dict, batch_size: int, steps: int, device, precision,
                 compile: bool = False) -> tuple[float, float]:
    """Seconds per training step and peak bytes of method ``label`` (``compile``: train.compile)."""
    runner, model = make_runner(label, model_cfg, device, precision, compile)
    batch = random_batch(model_cfg, runner.method.uses_boxes, batch_size, device)
    for _ in range(3 if compile else 2):  # warm-up: compilation, kernels, allocator, AdamW state
        runner.backward_step(runner.forward(batch)[0])
    _sync(device)
    for part in ("loss", "lift") if compile else ():
        failure = getattr(runner.method, part).failure
        if failure is not None:
            print(f"  {label}.{part} runs eagerly: compiling failed ({type(failure).__name__})", flush=True)
    _reset_peak(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        runner.backward_step(runner.forward(batch)[0])
    _sync(device)
    seconds = (time.perf_counter() - t0) / steps
    peak = _peak(device)
    del runner, model, batch
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return seconds, peak


def measure_phyclip_loss(batch_size: int, device, reps: int = 5) -> tuple[float, float, float]:
    """PHyCLIP's objective alone: (loss value, seconds of forward + backward, peak bytes)."""
    method = methods.get("phyclip")
    k, d = method.defaults["k"], method.defaults["d"]
    g = torch.Generator().manual_seed(0)
    curv = torch.ones(k)
    alpha = torch.full((k,), d ** -0.5)
    with torch.no_grad():
        lifted = [method.lift(torch.randn(batch_size, k * d, generator=g), alpha=alpha, curv=curv)
                  for _ in range(4)]
    leaves = [t.to(device).requires_grad_() for t in lifted]
    emb = Embeddings(leaves[0], leaves[1], curv.to(device).requires_grad_(),
                     torch.tensor(1 / 0.07, device=device, requires_grad=True), *leaves[2:])
    value = method.loss(emb)["loss"]
    value.backward()  # warm-up
    _sync(device)
    _reset_peak(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        method.loss(emb)["loss"].backward()
    _sync(device)
    return float(value.detach()), (time.perf_counter() - t0) / reps, _peak(device)


def build_table(steps: dict[str, tuple[float, float]]) -> list[str]:
    """Rows: ms/step, peak GiB, baseline, overhead over the baseline's step and the goal's verdict."""
    lines = [f"{'method':<12}{'ms/step':>10}{'peak GiB':>10}{'baseline':>12}{'overhead':>10}{'goal':>7}"]
    for label, (seconds, peak) in steps.items():
        ref = baseline(label)
        boxes = method_for(label).uses_boxes
        verdict, overhead, goal = "", "", ""
        if label != ref and ref in steps:
            over = seconds / steps[ref][0] - 1.0
            overhead = f"{100 * over:+.1f}%"
            if label != CLIP_BOXES:  # a baseline: its cost over CLIP is its second encode, not a goal
                goal = f"{100 * GOALS[boxes]:.0f}%"
                verdict = "ok" if over <= GOALS[boxes] else "MISS"
        lines.append(f"{label:<12}{1000 * seconds:>10.1f}{peak / 2 ** 30:>10.2f}{ref:>12}{overhead:>10}"
                     f"{goal:>7} {verdict}".rstrip())
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"benchmarks/gpu.py: no CUDA device (torch {torch.__version__}, torch.cuda.is_available() "
              f"is False); nothing measured. Run it on a GPU machine, or pass --device cpu --tiny for a "
              f"smoke run of the same code on CPU.", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    model_cfg = resolve_config(str(ROOT / "config/runs/default.yaml"))["model"] if args.tiny else GPU_MODEL
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}: {'tiny towers' if args.tiny else 'ViT-S/16'}, batch {args.batch}, {args.precision} "
          f"autocast, {args.steps} timed steps per method, objective and lift "
          f"{'compiled (train.compile)' if args.compile else 'eager'}", flush=True)
    steps = {}
    for label in bench_labels(args.methods):
        steps[label] = measure_step(label, model_cfg, args.batch, args.steps, device, args.precision, args.compile)
        print(f"  {label}: {1000 * steps[label][0]:.1f} ms", flush=True)
    print("\n".join(build_table(steps)), flush=True)
    value, seconds, peak = measure_phyclip_loss(args.loss_batch, device)
    print(f"phyclip objective at batch {args.loss_batch} (64 x 8 factors): loss {value:.4f}, forward+backward "
          f"{1000 * seconds:.1f} ms, peak {peak / 2 ** 30:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
