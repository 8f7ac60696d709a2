#!/usr/bin/env python
"""Data throughput: generation (images/s) and shard reading through make_loader (batches/s).

Usage: python benchmarks/data.py [--n-train 50000] [--out DIR] [--batch-size 128] [--batches 40]

Generation writes the default training set plus every benchmark with ``GenConfig.workers``
processes; reading uses the real open_clip tokenizer (context 32) and boxes on, i.e. the
heaviest training path. CPU seconds are printed beside wall seconds because the machine may be
shared: wall time under contention overstates what the code costs.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hyplib.data import generate_all, make_loader  # noqa: E402
from hyplib.data.genconfig import GenConfig  # noqa: E402


def cpu_seconds() -> float:
    self_, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--batches", type=int, default=40)
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="hyplib-data-"))
    cfg = GenConfig(n_train=args.n_train, workers=args.workers)

    c0, t0 = cpu_seconds(), time.perf_counter()
    manifest = generate_all(out, cfg, progress=False)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    n_img = manifest["train"]["images"] + sum(manifest["benchmarks"].values())
    print(f"generation: {n_img} images ({manifest['train']['images']} train + "
          f"{sum(manifest['benchmarks'].values())} benchmark) in {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"-> {n_img / wall:.0f} images/s wall, {n_img / cpu:.0f} images/s per CPU-second "
          f"({args.workers} workers, {os.cpu_count()} cores)")

    from open_clip.tokenizer import SimpleTokenizer
    tok = SimpleTokenizer(context_length=32)
    for boxes in (True, False):
        loader = make_loader(out / "train", batch_size=args.batch_size, image_size=cfg.image_size, tokenize=tok,
                             caption_weights=[1, 1, 1, 1], with_boxes=boxes, seed=0)
        it = iter(loader)
        next(it)  # warm-up: index build and file handles
        c0, t0 = cpu_seconds(), time.perf_counter()
        for _ in range(args.batches):
            next(it)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        print(f"reading (boxes={boxes}): {args.batches / wall:.1f} batches/s, "
              f"{args.batches * args.batch_size / wall:.0f} images/s wall; {wall / args.batches:.3f} s/batch wall, "
              f"{cpu / args.batches:.3f} s/batch CPU at batch {args.batch_size}; "
              f"skipped {loader.stats['records_skipped']}")
    print(f"data in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
