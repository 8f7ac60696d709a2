"""Does a trained run recognise object classes? Zero-shot under several prompt sets plus a linear probe.

    python scripts/probe_shape.py results/train/meru-base-s0 [more run dirs] --bench results/data/bench

For each run: zero-shot mean per-class accuracy with the benchmark's templates, with ``a {}``,
with a colour ensemble and with a background ensemble (the generator's caption vocabulary), and
the 5-fold cross-validated accuracy of a logistic-regression probe on the image features of the
zero-shot images. ``--untrained`` adds the same probe on a freshly initialised tower of the first
run's config, the baseline a probe must beat. The README's "What the default run can and cannot
show" quotes this script's output.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from threadpoolctl import threadpool_limits

from hyplib import methods, models
from hyplib.data.benchmarks import load_benchmark
from hyplib.data.taxonomy import BACKGROUNDS, colours, with_article
from hyplib.evaluation import _common as C
from hyplib.evaluation import load_model
from hyplib.evaluation.probe import blas_threads
from hyplib.evaluation.zeroshot import evaluate_zeroshot


def prompt_sets(benchmark: dict) -> dict[str, list[str]]:
    return {"benchmark": list(benchmark["templates"]), "a {}": ["a {}"],
            "colours": [with_article(f"{c} {{}}") for c in colours()],
            "backgrounds": [f"a {{}} {b}" for b in BACKGROUNDS.values()]}


def probe(model, benchmark: dict, folds: int = 5) -> float:
    """Cross-validated accuracy of a linear classifier on the image features."""
    feats = np.asarray(C.image_features(model, benchmark["images"]))
    with threadpool_limits(limits=blas_threads(feats.size), user_api="blas"):  # small fits: one thread
        return float(cross_val_score(LogisticRegression(max_iter=2000), feats, benchmark["labels"],
                                     cv=folds).mean())


def train_in_memory(cfg: dict, model, method, steps: int, batch_at, bench: dict) -> tuple[float, list[float]]:
    """Train ``model`` for ``steps`` steps on ``batch_at(step) -> (images (B,3,H,W), texts)``
    with the run config's optimiser and schedule, printing zero-shot accuracy (``bench``'s
    prompts) at each quarter. Returns the last loss and the four zero-shot accuracies."""
    from hyplib.training.schedule import WarmupCosine, build_optimizer

    opt = build_optimizer(models.param_groups(model, cfg["train"]["weight_decay"]), cfg["train"],
                          torch.device("cpu"))
    sched = WarmupCosine(opt, base_lr=cfg["train"]["lr"], warmup=cfg["train"]["warmup_steps"],
                         total=steps, min_lr=cfg["train"]["min_lr"])
    t0, curve, loss = time.perf_counter(), [], torch.tensor(float("nan"))
    for step in range(steps):
        images, texts = batch_at(step)
        loss = method.loss(model({"image": images, "text": model.tokenize(list(texts))}))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        model.clamp_parameters_()
        if (step + 1) % max(1, steps // 4) == 0:
            model.eval()
            acc = evaluate_zeroshot(model, bench)["mean_per_class_acc"]
            model.train()
            curve.append(round(acc, 3))
            print(f"step {step + 1}: loss {loss.item():.3f}, zero-shot {acc:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return loss.item(), curve


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run directories (with final.pt)")
    p.add_argument("--bench", default="results/data/bench", help="benchmark folder with zeroshot.npz/json")
    p.add_argument("--untrained", action="store_true", help="also probe an untrained tower")
    args = p.parse_args(argv)
    bench = load_benchmark(args.bench, "zeroshot")
    print(f"{len(bench['labels'])} images, {len(bench['classnames'])} classes, chance "
          f"{1 / len(bench['classnames']):.3f}")
    for run in args.runs:
        model, cfg = load_model(run)
        shots = {name: evaluate_zeroshot(model, {**bench, "templates": t})["mean_per_class_acc"]
                 for name, t in prompt_sets(bench).items()}
        print(f"{run}: zero-shot " + ", ".join(f"{k} {v:.3f}" for k, v in shots.items())
              + f"; linear probe {probe(model, bench):.3f}")
    if args.untrained:
        torch.manual_seed(0)
        _, cfg = load_model(args.runs[0])
        method = methods.get(cfg["method"], **cfg.get("method_overrides", {}))
        fresh = models.build_model(cfg["model"], method).eval()
        print(f"untrained {cfg['method']} tower: linear probe {probe(fresh, bench):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
