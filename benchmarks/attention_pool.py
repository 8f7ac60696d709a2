"""The first-token attention pool against open_clip's, measured in one run.

    OMP_NUM_THREADS=1 python benchmarks/attention_pool.py --config config/runs/default.yaml \
        --batch 64 --threads 1 [--compile-towers image] [--methods clip hycoclip]

For each method, the training loop's step (:class:`hyplib.training.step.StepRunner`, a fixed
random batch, as in ``benchmarks/train_step.py``) is timed twice: with the model as
:func:`hyplib.models.build_model` makes it (its ResNet pool a
:class:`hyplib.attention_pool.FirstTokenAttentionPool`) and with the pool turned back into
open_clip's ``AttentionPool2d``. The runners go round-robin (``--rounds`` rounds of ``--steps``
steps); the best and median rounds are printed, and the ratio of step times, first-token /
open_clip (below 1: the first-token pool is faster). The image tower must be a ResNet
(``model.vision_tower: resnet``): a ViT has no attention pool.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import yaml
from open_clip.modified_resnet import AttentionPool2d

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step  # noqa: E402 - the sibling benchmark's runner and batch

from hyplib.training.config import COMPILABLE_TOWERS  # noqa: E402

POOLS = ("open_clip", "first-token")


def make_runner(name: str, model_cfg: dict, pool: str, towers=()):
    """``train_step.make_runner`` for method ``name``, with open_clip's pool when ``pool`` says so."""
    runner, model = train_step.make_runner(name, model_cfg, torch.device("cpu"), "fp32")
    attnpool = getattr(model.visual, "attnpool", None)
    if attnpool is None:
        raise SystemExit("the image tower has no attention pool: set model.vision_tower: resnet")
    if pool == "open_clip":
        attnpool.__class__ = AttentionPool2d
    train_step.compile_towers(model, towers)
    return runner


def bench(names, model_cfg, batch_size: int, steps: int, rounds: int, towers=()) -> dict:
    """``{(name, pool): [seconds per step, one per round]}``, the runners timed round-robin."""
    runners = {}
    for name in names:
        for pool in POOLS:
            runner = make_runner(name, model_cfg, pool, towers)
            batch = train_step.random_batch(model_cfg, runner.method.uses_boxes, batch_size, torch.device("cpu"))
            train_step.time_steps(runner, batch, 2, torch.device("cpu"))  # warm-up, and the compile
            runners[(name, pool)] = (runner, batch)
    seconds = {key: [] for key in runners}
    for _ in range(rounds):
        for key, (runner, batch) in runners.items():
            seconds[key].append(1.0 / train_step.time_steps(runner, batch, steps, torch.device("cpu")))
    return seconds


def report(seconds: dict) -> list[str]:
    """One line per runner, then first-token / open_clip step time per method (best, median)."""
    lines = [f"{'method':<12}{'pool':<13}{'best s/step':>13}{'median':>10}"]
    for (name, pool), s in seconds.items():
        lines.append(f"{name:<12}{pool:<13}{min(s):>13.4f}{statistics.median(s):>10.4f}")
    for name in dict.fromkeys(name for name, _ in seconds):
        ref, fast = seconds[(name, "open_clip")], seconds[(name, "first-token")]
        lines.append(f"{name}: first-token / open_clip step time = {min(fast) / min(ref):.3f} (best), "
                     f"{statistics.median(fast) / statistics.median(ref):.3f} (median)")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/runs/default.yaml", help="run config whose model: section is used")
    p.add_argument("--methods", nargs="+", default=["clip", "hycoclip"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compile-towers", nargs="*", default=[], choices=COMPILABLE_TOWERS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model_cfg = yaml.safe_load(Path(args.config).read_text())["model"]
    if model_cfg.get("vision_tower", "vit") != "resnet":
        raise SystemExit(f"{args.config}: model.vision_tower is not resnet; a ViT has no attention pool")
    print(f"train step, batch {args.batch}, {args.threads} thread(s), towers compiled: "
          f"{args.compile_towers or 'none'}; best and median of {args.rounds} rounds of {args.steps} steps")
    for line in report(bench(args.methods, model_cfg, args.batch, args.steps, args.rounds, args.compile_towers)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
