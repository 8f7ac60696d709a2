"""Recipes x methods x seeds through the real training loop, many runs at once.

    python scripts/recipe_sweep.py --grid config/studies/recipe_sweep.yaml --out results/study/sweep.jsonl
    python scripts/recipe_sweep.py --grid ... --recipes base w16 --methods clip meru --device cuda --jobs 16

Where ``scripts/recipe_study.py`` trains one method in memory, this script runs the workflow's own
``hyplib.train`` (loader, box crops, every method) on data the generator wrote, then evaluates
the run with the workflow's own protocols (zero-shot with the benchmark's prompts, the linear
probe, TIE/LCA/J), so its numbers are those ``make reproduce`` would report for the same recipe.
It exists to measure *learning* per recipe over several seeds quickly, for example on a lent GPU
with many runs sharing it; the cost of a recipe on the 2-core machine is measured separately
(``benchmarks/train_step.py``) because runs sharing a device do not time it.

The grid (YAML) names datasets (generator settings) and recipes (a dataset plus ``--set``
overrides of ``config/runs/default.yaml``); runs go in the grid's order, recipe by recipe, so a
sweep cut short has finished the first recipes. Each finished run appends one JSON line to
``--out`` at once; a rerun skips the (recipe, method, seed) rows already there.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: The metrics a sweep row keeps (the workflow's metric names).
KEEP = {"zeroshot/mean_per_class_acc": "zeroshot", "probe/acc": "probe", "hierarchy/reference/TIE": "tie",
        "hierarchy/reference/LCA": "lca", "hierarchy/reference/J": "j"}


def load_grid(path: str | Path) -> dict:
    """The grid file, checked: every recipe names a dataset the grid defines."""
    grid = yaml.safe_load(Path(path).read_text())
    for key in ("datasets", "recipes"):
        if not isinstance(grid.get(key), dict) or not grid[key]:
            raise ValueError(f"{path}: {key!r} must be a non-empty mapping")
    for name, recipe in grid["recipes"].items():
        if recipe.get("data") not in grid["datasets"]:
            raise ValueError(f"{path}: recipe {name!r} names dataset {recipe.get('data')!r}; "
                             f"defined: {sorted(grid['datasets'])}")
        unknown = set(recipe) - {"data", "set", "methods"}
        if unknown:
            raise ValueError(f"{path}: recipe {name!r} has unknown keys {sorted(unknown)}")
    return grid


def plan(grid: dict, recipes: list[str] | None, methods: list[str] | None, seeds: list[int] | None) -> list[dict]:
    """The runs, in grid order: one dict per (recipe, method, seed)."""
    names = recipes or list(grid["recipes"])
    missing = [r for r in names if r not in grid["recipes"]]
    if missing:
        raise ValueError(f"unknown recipe(s) {missing}; the grid has {list(grid['recipes'])}")
    jobs = []
    for name in names:
        recipe = grid["recipes"][name]
        chosen = methods or recipe.get("methods") or grid.get("methods") or ["clip"]
        if methods and recipe.get("methods"):
            chosen = [m for m in methods if m in recipe["methods"]]
        for seed in seeds or grid.get("seeds") or [0]:
            for method in chosen:
                jobs.append({"recipe": name, "data": recipe["data"], "method": method, "seed": int(seed),
                             "set": dict(recipe.get("set") or {})})
    return jobs


def prepare(grid: dict, names: set[str], root: Path, workers: int) -> None:
    """Write each dataset the runs need under ``root/<name>`` (skipped when its manifest exists)."""
    from hyplib.data.prepare import prepare_data

    for name in sorted(names):
        out = root / name
        if (out / "manifest.json").exists():
            continue
        spec = dict(grid["datasets"][name])
        n_train = spec.pop("n_train", 20000)
        t0 = time.perf_counter()
        prepare_data("generated", out, n_train=n_train, seed=0, image_size=32, workers=workers,
                     generator=spec, progress=False)
        print(f"dataset {name}: {n_train} records in {time.perf_counter() - t0:.0f} s", flush=True)


def run_one(job: dict, data_root: Path, runs_root: Path, device: str, config: str) -> dict:
    """Train one run with ``hyplib.train`` and evaluate it; returns its sweep row."""
    import torch

    from hyplib.evaluation.driver import load_model, run_all
    from hyplib.train import train

    torch.set_num_threads(1)
    run_dir = runs_root / f"{job['recipe']}-{job['method']}-s{job['seed']}"
    data = data_root / job["data"]
    sets = {"method": job["method"], "seed": job["seed"], "data.shards": str(data / "train"),
            "train.device": device, "train.threads": 1, "train.progress": False, **job["set"]}
    t0 = time.perf_counter()
    summary = train(config, run_dir, overrides=sets)
    train_s = time.perf_counter() - t0
    model, _ = load_model(run_dir, device=device)
    metrics = run_all(model, data / "bench", protocols=["zeroshot", "probe", "hierarchy"])
    row = {k: job[k] for k in ("recipe", "method", "seed")}
    row.update({short: round(float(metrics[k]), 4) for k, short in KEEP.items() if k in metrics})
    row.update({"loss": round(float(summary["final_loss"]), 4), "train_s": round(train_s, 1),
                "eval_s": round(time.perf_counter() - t0 - train_s, 1), "set": job["set"]})
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", default=str(ROOT / "config/studies/recipe_sweep.yaml"))
    p.add_argument("--recipes", nargs="*", help="recipe names (default: every recipe of the grid, in order)")
    p.add_argument("--methods", nargs="*", help="methods (default: the recipe's, else the grid's)")
    p.add_argument("--seeds", nargs="*", type=int)
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (each one thread)")
    p.add_argument("--out", default="results/study/sweep.jsonl")
    p.add_argument("--work", default="results/study/sweep", help="datasets and run folders go here")
    p.add_argument("--config", default=str(ROOT / "config/runs/default.yaml"))
    p.add_argument("--one", help=argparse.SUPPRESS)  # one job as JSON: the worker process's entry
    args = p.parse_args(argv)
    work = Path(args.work)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one), work / "data", work / "runs", args.device, args.config)))
        return 0
    grid = load_grid(args.grid)
    jobs = plan(grid, args.recipes, args.methods, args.seeds)
    out = Path(args.out)
    done = set()
    if out.exists():
        done = {(r["recipe"], r["method"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())}
    todo = [j for j in jobs if (j["recipe"], j["method"], j["seed"]) not in done]
    print(f"{len(jobs)} runs planned, {len(jobs) - len(todo)} already in {out}, {len(todo)} to run", flush=True)
    prepare(grid, {j["data"] for j in todo}, work / "data", workers=max(1, args.jobs))
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

    def launch(job):
        cmd = [sys.executable, __file__, "--one", json.dumps(job), "--device", args.device,
               "--work", str(work), "--config", args.config]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            return {**{k: job[k] for k in ("recipe", "method", "seed")}, "error": res.stderr[-2000:]}
        return json.loads(res.stdout.strip().splitlines()[-1])

    failed = 0
    with ThreadPoolExecutor(max(1, args.jobs)) as pool, out.open("a") as fh:
        futures = [pool.submit(launch, j) for j in todo]
        for n, fut in enumerate(as_completed(futures), 1):
            row = fut.result()
            failed += "error" in row
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            brief = {k: row.get(k) for k in ("recipe", "method", "seed", "zeroshot", "probe", "train_s")}
            print(f"[{n}/{len(todo)}] {brief}" + (f" ERROR {row['error'][-300:]}" if "error" in row else ""),
                  flush=True)
    print(f"{len(todo) - failed} runs finished, {failed} failed; rows in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
