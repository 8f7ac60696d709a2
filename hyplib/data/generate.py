"""Entry point of the generated world: training shards + every benchmark + ``manifest.json``.

Layout written under ``out_dir``::

    train/train-000000.tar ...   webdataset shards, records {png, json} (see hyplib.data.scene)
    bench/<name>.npz|json        benchmarks in the format of hyplib.data.benchmarks
    manifest.json                counts, seeds, config, held-out pairs, loader hints

Training records come in blocks of ``group_size`` (see :func:`_train_samples`); the manifest's
``loader.group_size`` tells the loader to keep blocks whole.
Shard json: ``captions`` (4 levels, generic -> specific), ``caption`` (= level 3; the loader
draws other levels itself when given ``caption_weights``), ``boxes``, ``labels`` (leaf per
object), ``objects`` [{label, colour, box}], ``background``, ``relations``.
Same config -> byte-identical shards (fixed seed streams, ``mtime=0`` tars, fixed PNG settings).
"""
from __future__ import annotations

import io
import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .benchmarks import duplicate_caption_counts, write_benchmark
from .captions import levels, scene_relations
from .genconfig import STREAMS, GenConfig
from .scene import block_look, block_scene, box_records
from .semantics import Desc, Mention
from .shards import write_shard
from .suites import BUILDERS
from .taxonomy import colour_tree, heldout_pairs, leaves


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def plainer(desc: Desc, *, colour: bool, background: bool) -> Desc:
    """``desc`` without its colours (unless ``colour``) and background (unless ``background``):
    still true of the scene, since it only says less."""
    mentions = tuple(Mention(m.category, m.colour if colour else None) for m in desc.mentions)
    return Desc(mentions, desc.relations, desc.background if background else None)


def scene_json(scene, *, colour: bool = True, background: bool = True) -> dict:
    """The shard json of ``scene``; ``colour``/``background`` False leave those words out of its
    captions (and colours out of its box phrases), while ``objects`` keeps the full truth."""
    descs = [plainer(d, colour=colour, background=background) for d in levels(scene)]
    return {"captions": [d.text() for d in descs], "caption": descs[-1].text(),
            "boxes": box_records(scene, colour=colour),
            "labels": [o.leaf for o in scene.objects],
            "objects": [{"label": o.leaf, "colour": o.colour, "box": o.box} for o in scene.objects],
            "background": scene.background, "relations": [list(r) for r in scene_relations(scene)]}


def _train_samples(cfg: GenConfig, shard: int, count: int):
    """Blocks of ``group_size`` records from the shard's first one: with probability
    ``look_alike_blocks`` a block is one-object scenes sharing a colour and background, else
    independent random scenes."""
    rng = np.random.default_rng([cfg.seed, STREAMS["train"], shard])
    # The wording draws have their own stream, so scenes are the same whatever the wording.
    wording = np.random.default_rng([cfg.seed, STREAMS["train"], shard, 1])
    forbid = frozenset(heldout_pairs(cfg.seed))
    look = None
    for j in range(count):
        if cfg.look_alike_blocks > 0 and j % cfg.group_size == 0:
            look = block_look(rng, cfg.look_alike_blocks)
        img, scene = block_scene(rng, cfg.image_size, look, forbid, cfg.objects_per_scene, cfg.supersample)
        colour, background = wording.random(2) < (cfg.caption_colour, cfg.caption_background)
        meta = json.dumps(scene_json(scene, colour=bool(colour), background=bool(background)),
                          sort_keys=True, separators=(",", ":"))
        yield {"__key__": f"s{shard:05d}_{j:06d}", "png": png_bytes(img), "json": meta.encode()}


def _task(args):
    kind, cfg, arg, out = args
    t0 = time.perf_counter()
    if kind == "shard":
        shard, count = arg
        n = write_shard(Path(out) / f"train-{shard:06d}.tar", _train_samples(cfg, shard, count))
        return kind, f"train-{shard:06d}", n, time.perf_counter() - t0
    arrays, meta = BUILDERS[arg](cfg)
    write_benchmark(out, arg, arrays, meta)
    n = max([len(a) for k, a in arrays.items() if k in ("images", "whole")] or [0])
    return kind, arg, n, time.perf_counter() - t0


def generate_all(out_dir: str | Path, cfg: GenConfig | None = None, *, progress: bool = True,
                 benchmarks=tuple(BUILDERS)) -> dict:
    """Write training shards, the benchmarks and ``manifest.json``; returns the manifest."""
    cfg = cfg or GenConfig()
    out = Path(out_dir)
    unknown = sorted(set(benchmarks) - set(BUILDERS))
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; valid: {sorted(BUILDERS)}")
    if cfg.n_train < 1:
        raise ValueError(f"n_train must be >= 1, got {cfg.n_train}")
    if cfg.group_size < 1 or cfg.shard_size % cfg.group_size:
        raise ValueError(f"group_size={cfg.group_size} must be >= 1 and divide shard_size={cfg.shard_size}, "
                         "so that no block straddles two shards")
    for name in ("look_alike_blocks", "caption_colour", "caption_background"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"{name}={getattr(cfg, name)} must lie in [0, 1]")
    n_shards = -(-cfg.n_train // cfg.shard_size)
    tasks = [("bench", cfg, name, str(out / "bench")) for name in benchmarks]
    tasks += [("shard", cfg, (k, min(cfg.shard_size, cfg.n_train - k * cfg.shard_size)), str(out / "train"))
              for k in range(n_shards)]
    (out / "train").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = []
    bar = tqdm(total=len(tasks), desc="generate", unit="task", disable=not progress)
    if cfg.workers <= 1:
        for t in tasks:
            results.append(_task(t))
            bar.update()
    else:
        with mp.get_context("fork").Pool(cfg.workers) as pool:
            for r in pool.imap_unordered(_task, tasks):
                results.append(r)
                bar.update()
    bar.close()
    elapsed = time.perf_counter() - t0
    counts = {name: n for kind, name, n, _ in results if kind == "bench"}
    manifest = {
        "config": cfg.to_dict(), "seed": cfg.seed, "streams": STREAMS,
        "train": {"shards": sorted(f"train/{name}.tar" for kind, name, _, _ in results if kind == "shard"),
                  "images": sum(n for kind, _, n, _ in results if kind == "shard")},
        "benchmarks": counts, "heldout_pairs": [list(p) for p in heldout_pairs(cfg.seed)],
        "leaves": leaves(), "colour_taxonomy": colour_tree().parent,
        "loader": {"min_box_size": cfg.min_box_size, "caption_levels": 4, "group_size": cfg.group_size},
        "seconds": round(elapsed, 2), "images_per_second": round(
            (sum(n for _, _, n, _ in results)) / max(elapsed, 1e-9), 1),  # 1e-9: avoid /0 on tiny runs
    }
    manifest["duplicate_captions"] = duplicate_caption_counts(out / "bench")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest
