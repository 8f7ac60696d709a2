"""Which recipe (captions, image tower, budget) teaches the default towers object classes?

    python scripts/recipe_study.py --method clip --tower vit8 --colour 1.0 --background 1.0
    python scripts/recipe_study.py --method meru --tower resnet --colour 0.5 --background 0.5 --steps 400

One in-memory run per call on the default world's own training scenes (``--train``, the
generator's shards: image + the json the generator wrote). What varies is only what the
training loop sees:

* ``--colour p`` / ``--background p``: the probability that a training caption names the
  objects' colours / the background. ``1 1`` is the generator's most specific caption
  ("a red car left of a green pine tree on grass"); lower values drop those words from some
  captions ("a car left of a pine tree"), so colour and background alone cannot tell a batch's
  pairs apart and shape has to.
* ``--tower``: ``vit8`` (the default 2-layer ViT, 8-px patches), ``vit4`` (4-px patches) or
  ``resnet`` (open_clip's ModifiedResNet, built from scratch at ``--resnet-width``).
* ``--steps``, ``--batch``: the budget.

Zero-shot accuracy (mean per class, the benchmark's own prompts) is printed at each quarter, then
a linear probe of the image features, on ``--bench``'s zero-shot images (30 classes, chance
0.033), so the numbers compare with ``scripts/probe_shape.py``. The table in the README's "What
the default run can and cannot show" comes from this script. Prints one JSON line at the end.
"""
from __future__ import annotations

import argparse
import io
import json
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from probe_shape import probe, train_in_memory
from tqdm.auto import tqdm

from hyplib import methods, models
from hyplib.data.benchmarks import load_benchmark
from hyplib.data.generate import plainer
from hyplib.data.preprocess import MEAN, STD
from hyplib.data.semantics import Desc, Mention
from hyplib.training.config import resolve_config


def load_pool(train_dir: str, cache: str | None, limit: int | None = None):
    """Every training record of ``train_dir``'s shards: (uint8 images (N, H, W, 3), json metas)."""
    if cache and Path(cache).exists():
        z = np.load(cache, allow_pickle=False)
        return z["images"], json.loads(str(z["metas"]))
    images, metas = [], []
    shards = sorted(Path(train_dir).glob("*.tar"))
    if not shards:
        raise FileNotFoundError(f"no .tar shards in {train_dir}")
    for shard in tqdm(shards, desc="shards"):
        with tarfile.open(shard) as tar:
            members = {}
            for m in tar.getmembers():
                key, ext = m.name.rsplit(".", 1)
                members.setdefault(key, {})[ext] = tar.extractfile(m).read()
        for key in sorted(members):
            rec = members[key]
            images.append(np.asarray(Image.open(io.BytesIO(rec["png"])).convert("RGB")))
            metas.append(json.loads(rec["json"]))
            if limit and len(images) >= limit:
                break
    images = np.stack(images)
    if cache:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, images=images, metas=json.dumps(metas))
    return images, metas


def caption(meta: dict, rng: np.random.Generator, p_colour: float, p_background: float) -> str:
    """The record's most specific caption, naming colours with probability ``p_colour`` and the
    background with probability ``p_background``, worded as the generator words it
    (:func:`hyplib.data.generate.plainer`), so what it says stays true of the image."""
    full = Desc(tuple(Mention(o["label"], o["colour"]) for o in meta["objects"]),
                tuple((int(i), r, int(j)) for i, r, j in meta["relations"]), meta["background"])
    colour, background = rng.random(2) < (p_colour, p_background)
    return plainer(full, colour=bool(colour), background=bool(background)).text()


#: The first wave's image tower: a 2-layer ViT, 96 wide, 8-px patches (4 x 4 patches at 32 px).
VIT = {"vision_tower": "vit", "vision_width": 96, "vision_layers": 2, "vision_heads": 3}
#: The first wave's text tower, 96 wide (the default is now 64: ``--text-width 96`` restores it).
TEXT_WIDTH_HEAD = 32


def tower_config(tower: str, resnet_width: int) -> dict:
    """``model:`` keys of the image tower ``tower``, whatever the run config names."""
    towers = {"vit8": {**VIT, "patch_size": 8}, "vit4": {**VIT, "patch_size": 4},
              # head width 8, as in the first measurements of this study
              "resnet": {"vision_tower": "resnet", "vision_layers": 1, "vision_width": resnet_width,
                         "vision_heads": 4 * resnet_width}}
    if tower not in towers:
        raise ValueError(f"unknown tower {tower!r}; valid: {sorted(towers)}")
    return towers[tower]


def to_batch(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    return x.sub_(torch.tensor(MEAN).view(1, 3, 1, 1)).div_(torch.tensor(STD).view(1, 3, 1, 1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="clip", choices=["clip", "meru", "atmg"],
                   help="a method without box terms (the study trains on full images only)")
    p.add_argument("--set", nargs="*", default=[], help="method overrides key=value (yaml values)")
    p.add_argument("--tower", default="resnet", choices=["vit8", "vit4", "resnet"])
    p.add_argument("--resnet-width", type=int, default=16)
    p.add_argument("--text-width", type=int, default=None,
                   help="text tower width (heads of 32 channels); default: the run config's")
    p.add_argument("--colour", type=float, default=1.0, help="P(caption names colours)")
    p.add_argument("--background", type=float, default=1.0, help="P(caption names the background)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--config", default="config/runs/default.yaml")
    p.add_argument("--train", default="results/data/train")
    p.add_argument("--cache", default="results/study/pool.npz")
    p.add_argument("--bench", default="results/data/bench")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import yaml
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = resolve_config(args.config, {"method": args.method, "train.steps": args.steps,
                                       "train.batch_size": args.batch,
                                       **({"train.lr": args.lr} if args.lr else {})})
    bench = load_benchmark(args.bench, "zeroshot")
    images, metas = load_pool(args.train, args.cache)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    method = methods.get(cfg["method"], **{**cfg["method_overrides"], **overrides})
    text = ({"text_width": args.text_width, "text_heads": max(1, args.text_width // TEXT_WIDTH_HEAD)}
            if args.text_width else {})
    model = models.build_model({**cfg["model"], **tower_config(args.tower, args.resnet_width), **text},
                               method).train()
    order = rng.permutation(len(images))

    def batch_at(step):
        idx = order[(np.arange(args.batch) + step * args.batch) % len(order)]
        return to_batch(images[idx]), [caption(metas[i], rng, args.colour, args.background) for i in idx]

    t0 = time.perf_counter()
    loss, curve = train_in_memory(cfg, model, method, args.steps, batch_at, bench)
    train_s = time.perf_counter() - t0
    lin = probe(model.eval(), bench)
    print(f"linear probe {lin:.3f} (chance {1 / len(bench['classnames']):.3f})")
    print(json.dumps({"method": args.method, "set": overrides, "tower": args.tower,
                      "text_width": model.text.transformer.width, "colour": args.colour,
                      "background": args.background, "steps": args.steps, "batch": args.batch,
                      "seed": args.seed, "zeroshot": curve[-1] if curve else None, "curve": curve,
                      "probe": round(lin, 3), "loss": round(loss, 3), "train_s": round(train_s, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
