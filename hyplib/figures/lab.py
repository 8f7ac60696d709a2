"""The runs a figure or table notebook uses when opened by hand (no ``runs`` passed): the ones
under the lab folder ``results/lab`` (what ``03_prepare_data`` -> ``04_train`` -> ``05_evaluate``
write with their defaults), plus a teaching-size run of each method the figure needs and the lab
lacks, trained and evaluated there on the spot.

Everything here writes under ``lab_dir`` only, never over the workflow's ``results/`` outputs.
Teaching size: the ``quick`` generated data (``n_train`` images) and ``config/runs/quick.yaml``
(tiny towers, a few dozen steps: seconds to a minute per run on 2 CPU cores). The numbers such
runs give show that the pipeline works, not what the methods can do.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hyplib.paths import resolve

__all__ = ["LAB_DIR", "RUN_CONFIG", "N_TRAIN", "find_runs", "ensure_runs", "runs_for"]

LAB_DIR = "results/lab"
RUN_CONFIG = "config/runs/quick.yaml"
N_TRAIN = 2000


def _spec(lab: Path, name: str, method: str, seed: int) -> dict:
    return {"name": name, "method": method, "variant": "base", "seed": int(seed), "study": ["main"],
            "overrides": {}, "train_dir": str(lab / "train" / name), "eval_dir": str(lab / "eval" / name)}


def find_runs(lab_dir=LAB_DIR) -> list[dict]:
    """Run specs (the workflow's format) of every evaluated run under ``lab_dir/eval``."""
    lab = resolve(lab_dir)
    out = []
    for metrics in sorted((lab / "eval").glob("*/metrics.json")):
        record = json.loads(metrics.read_text())
        config = record.get("config") or {}
        method = record.get("method") or config.get("method")
        if not method:
            raise ValueError(f"{metrics}: no 'method' in the record; cannot tell which method this run is")
        out.append(_spec(lab, metrics.parent.name, method, record.get("seed", config.get("seed", 0))))
    return out


def _prepare_data(lab: Path) -> Path:
    from hyplib.data import prepare_data

    data = lab / "data"
    if not (data / "manifest.json").is_file():
        prepare_data("generated", data, size="quick", n_train=N_TRAIN, image_size=32, seed=0, workers=1)
    return data


def _train_and_evaluate(lab: Path, data: Path, method: str, seed: int = 0) -> dict:
    """Train ``method`` at teaching size and evaluate it as ``05_evaluate`` does."""
    import torch

    from hyplib import figures
    from hyplib.evaluation import load_model, run_all, write_metrics
    from hyplib.train import train

    spec = _spec(lab, f"{method}-base-s{seed}", method, seed)
    run_dir, eval_dir = Path(spec["train_dir"]), Path(spec["eval_dir"])
    print(f"lab: training {spec['name']} at teaching size in {run_dir}")
    train(resolve(RUN_CONFIG), run_dir, overrides={"method": method, "seed": seed, "data.shards": str(data / "train"),
                                                   "train.progress": False})
    model, cfg = load_model(run_dir / "final.pt", device="cpu")
    torch.manual_seed(seed)
    arrays, report = {}, {}
    metrics = run_all(model, data / "bench", arrays=arrays, report=report, log_path=run_dir / "log.jsonl")
    write_metrics(eval_dir / "metrics.json", metrics, cfg, seed, method=method, checkpoint=str(run_dir / "final.pt"),
                  skipped=report["skipped"])
    np.savez_compressed(eval_dir / "embeddings.npz", method=np.array(method),
                        geometry=np.array(model.method.geometry), **arrays)
    figures.write_eval_inputs(model, data / "bench", eval_dir / figures.EVAL_INPUTS, log_path=run_dir / "log.jsonl")
    return spec


def ensure_runs(methods, lab_dir=LAB_DIR) -> list[dict]:
    """Every run under ``lab_dir``, after training and evaluating a teaching-size run of each of
    ``methods`` that has none (generating the teaching data first if ``lab_dir/data`` is empty)."""
    lab = resolve(lab_dir)
    runs = find_runs(lab)
    missing = [m for m in dict.fromkeys(methods) if m not in {r["method"] for r in runs}]
    if missing:
        data = _prepare_data(lab)
        runs += [_train_and_evaluate(lab, data, m) for m in missing]
    return runs


def runs_for(figure: str | None = None, lab_dir=LAB_DIR) -> list[dict]:
    """The lab runs for ``figure`` (its methods, trained if missing; every run when the figure takes
    any method), or for the tables (``None``); MERU is trained when the lab holds no run at all."""
    from hyplib.figures.registry import get

    methods = get(figure).methods if figure is not None else None
    return ensure_runs(methods if methods is not None else ([] if find_runs(lab_dir) else ["meru"]), lab_dir)
