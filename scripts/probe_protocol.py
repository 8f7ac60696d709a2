"""The linear probe with its fixed cost against CLIP's cost search, on trained runs.

    python scripts/probe_protocol.py --bench results/data/bench results/train/*-base-s*/ --out probe_protocol.jsonl

For each run folder (or checkpoint) this encodes the zero-shot benchmark's images with the
image tower, as the workflow's ``probe`` protocol does, and scores two probes on the same
features and folds: the workflow's (``cost=1.0``) and CLIP's protocol, as MERU's evaluation
runs it (``cost="sweep"``: the cost chosen per fold on a validation quarter; see
:mod:`hyplib.evaluation.probe`). One JSON line per run, with both accuracies, the median chosen
cost and the seconds each probe took. It answers whether the probe's fixed cost is what sets a
method's probe, without retraining anything.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def compare(run: Path, bench: Path, *, folds: int = 5) -> dict:
    """Both probes on one run's image features; returns its JSON row."""
    import numpy as np

    from hyplib.evaluation import _common as C
    from hyplib.evaluation.driver import load_model
    from hyplib.evaluation.probe import linear_probe

    path = bench / "zeroshot.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no zero-shot benchmark at {path}")
    data = np.load(path, allow_pickle=True)
    model, cfg = load_model(run)
    feats = C.image_features(model, data["images"]).numpy()
    row = {"run": str(run), "method": cfg.get("method"), "seed": cfg.get("seed")}
    for name, cost in (("fixed", 1.0), ("sweep", "sweep")):
        t0 = time.perf_counter()
        got = linear_probe(feats, data["labels"], folds=folds, cost=cost)
        row[name] = round(got["acc"], 4)
        row[f"{name}_s"] = round(time.perf_counter() - t0, 1)
        if "cost" in got:
            row["cost"] = got["cost"]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders or checkpoints")
    p.add_argument("--bench", type=Path, required=True, help="benchmark folder with zeroshot.npz")
    p.add_argument("--out", type=Path, help="append one JSON line per run here")
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(1)
    for run in args.runs:
        row = compare(run, args.bench, folds=args.folds)
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
