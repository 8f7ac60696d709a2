"""Operators one training step dispatches, per method, against its baseline: on a GPU, its launches.

    python benchmarks/launches.py                          # every method, the embedded run's towers
    python benchmarks/launches.py --methods meru hycoclip --top 15

At the size of ``benchmarks/gpu.py`` a hyperbolic step costs more than CLIP's mostly through the
objective's small kernels, each launched from Python (README, "Speed on a GPU"). Every ATen
operator that computes something is one kernel launch there, and how many a step dispatches does
not depend on the device, so this script counts them on the CPU, where no GPU is needed: one step
of the training loop's :class:`~hyplib.training.step.StepRunner` (forward under bf16 autocast,
loss, backward, AdamW, clamps) after two warm-up steps, with the C kernels off
(:func:`hyplib.native.turned_off`: a GPU takes the PyTorch paths). View operators (``view``,
``transpose``, ``detach``, ...) launch nothing and are counted apart.

The counts are an estimate of a GPU's: autocast casts a slightly different list of operators on
each device, and AdamW may be a fused kernel there; both are the same for every method, so the
difference from the baseline (CLIP, or CLIP trained with boxes for the box methods, as in
``benchmarks/gpu.py``) is what this measures. They include the curvature checks
(``lorentz._check_curv``, three operators a call), which run on CPU tensors only. ``--top N``
lists the N operators a method adds most.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import ROOT, baseline, bench_labels, make_runner, random_batch  # noqa: E402

from hyplib import methods, native  # noqa: E402
from hyplib.training.config import resolve_config  # noqa: E402


class _Counting(TorchDispatchMode):
    """Counts every ATen operator dispatched inside it, by name; views apart."""

    def __init__(self):
        super().__init__()
        self.computing, self.views = Counter(), Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        (self.views if func.is_view else self.computing)[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def count_operators(fn: Callable[[], object]) -> tuple[Counter, Counter]:
    """``(computing, views)``: operators ``fn()`` dispatched, by name, those that compute and views."""
    with _Counting() as mode:
        fn()
    return mode.computing, mode.views


def count_step(label: str, model_cfg: dict, batch_size: int, precision: str) -> tuple[Counter, Counter]:
    """:func:`count_operators` of one training step of bench label ``label``, kernels off."""
    device = torch.device("cpu")
    with native.turned_off():
        runner, _ = make_runner(label, model_cfg, device, precision)
        batch = random_batch(model_cfg, runner.method.uses_boxes, batch_size, device)
        for _ in range(2):  # warm-up: AdamW's state, lazily built buffers
            runner.backward_step(runner.forward(batch)[0])
        return count_operators(lambda: runner.backward_step(runner.forward(batch)[0]))


def table(counts: dict[str, tuple[Counter, Counter]]) -> list[str]:
    """Rows: operators that compute, views, the baseline and what the method adds to it."""
    lines = [f"{'method':<12}{'computing':>10}{'views':>8}{'baseline':>12}{'added':>8}"]
    for label, (computing, views) in counts.items():
        ref, total = baseline(label), sum(computing.values())
        added = f"{total - sum(counts[ref][0].values()):+d}" if label != ref and ref in counts else ""
        lines.append(f"{label:<12}{total:>10}{sum(views.values()):>8}{ref:>12}{added:>8}".rstrip())
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "config/runs/default.yaml"),
                   help="run config whose model: section is counted")
    p.add_argument("--methods", nargs="+", default=methods.names())
    p.add_argument("--batch", type=int, default=8, help="batch (the counts do not depend on it)")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--top", type=int, default=0, help="list the N operators each method adds most")
    args = p.parse_args(argv)
    model_cfg = resolve_config(args.config)["model"]
    counts = {}
    for label in bench_labels(args.methods):
        counts[label] = count_step(label, model_cfg, args.batch, args.precision)
        print(f"  {label}: {sum(counts[label][0].values())} operators", flush=True)
    print(f"\noperators in one training step, {args.config}, batch {args.batch}, {args.precision} autocast, "
          f"C kernels off (a GPU's path)")
    print("\n".join(table(counts)))
    for label in counts if args.top else ():
        ref = baseline(label)
        if label != ref:
            added = counts[label][0] - counts[ref][0]
            print(f"\n{label}, beyond {ref}: " + ", ".join(f"{n} {k}" for n, k in added.most_common(args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
