"""Which training data teaches the default towers object shape? One in-memory run per call.

    python scripts/shape_sweep.py --method clip --look-alike 1.0             # only look-alike blocks
    python scripts/shape_sweep.py --method clip --look-alike 0.5             # half, interleaved
    python scripts/shape_sweep.py --method clip --look-alike 0.5 --curriculum  # half, look-alikes first

The scenes come from the generator's own code (:mod:`hyplib.data.scene`, most specific
caption), ``steps * batch`` of them, in blocks of ``--block``: with probability
``--look-alike`` a block is one-object scenes sharing a colour and a background
(:func:`~hyplib.data.scene.block_scene`, as the generator draws them), else independent random scenes. Blocks are
shuffled whole, as the loader does with ``group_size``; ``--curriculum`` puts every look-alike
block first. The model, optimiser and schedule are the default run config's. Zero-shot accuracy
(the benchmark's prompts) is printed at each quarter and a linear probe at the end, both on
``--bench``'s zero-shot images, so the numbers compare with ``scripts/probe_shape.py``. The
README's "What the default run can and cannot show" quotes this script. About 2-3 min on one core.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image
from probe_shape import probe, train_in_memory
from tqdm.auto import tqdm

from hyplib import methods, models
from hyplib.data.benchmarks import load_benchmark
from hyplib.data.captions import levels
from hyplib.data.genconfig import GenConfig
from hyplib.data.preprocess import to_tensor
from hyplib.data.scene import block_look, block_scene
from hyplib.data.taxonomy import heldout_pairs
from hyplib.training.config import resolve_config


def make_blocks(n_blocks: int, block: int, look_alike: float, seed: int):
    """``n_blocks`` blocks of (image, caption) pairs and a flag per block: look-alike or not."""
    rng = np.random.default_rng(seed)
    forbid = frozenset(heldout_pairs(0))
    size, weights = GenConfig().image_size, GenConfig().objects_per_scene
    blocks, alike = [], []
    for _ in tqdm(range(n_blocks), desc="scenes", unit="block"):
        look = block_look(rng, look_alike)
        pairs = []
        for _ in range(block):
            img, scene = block_scene(rng, size, look, forbid, weights)
            pairs.append((Image.fromarray(img), levels(scene)[-1].text()))
        blocks.append(pairs)
        alike.append(look is not None)
    return blocks, np.asarray(alike)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="clip", choices=["clip", "meru", "atmg"],
                   help="a method without box terms (the scenes carry no box crops here)")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--look-alike", type=float, default=0.0, help="fraction of look-alike blocks")
    p.add_argument("--block", type=int, default=64, help="scenes per block (64 = one default batch)")
    p.add_argument("--curriculum", action="store_true", help="all look-alike blocks first")
    p.add_argument("--config", default="config/runs/default.yaml")
    p.add_argument("--bench", default="results/data/bench")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = resolve_config(args.config, {"method": args.method, "train.steps": args.steps})
    batch = cfg["train"]["batch_size"]
    bench = load_benchmark(args.bench, "zeroshot")
    blocks, alike = make_blocks(-(-args.steps * batch // args.block), args.block, args.look_alike, args.seed)
    order = np.random.default_rng([args.seed, 1]).permutation(len(blocks))
    if args.curriculum:
        order = np.concatenate([order[alike[order]], order[~alike[order]]])
    stream = [pair for b in order for pair in blocks[b]]
    print(f"{len(blocks)} blocks of {args.block}, {int(alike.sum())} look-alike, "
          f"{'look-alikes first' if args.curriculum else 'interleaved'}")

    torch.manual_seed(args.seed)
    method = methods.get(cfg["method"], **cfg["method_overrides"])
    model = models.build_model(cfg["model"], method).train()
    def batch_at(step):
        images, texts = zip(*stream[step * batch:(step + 1) * batch])
        return to_tensor(list(images)), texts

    train_in_memory(cfg, model, method, args.steps, batch_at, bench)
    print(f"linear probe {probe(model.eval(), bench):.3f} (chance {1 / len(bench['classnames']):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
