"""Real data for the workflow: your shards and benchmark files laid out as ``generate_all`` lays out
the generated world, so training and evaluation read both alike.

Layout written under ``out_dir``::

    train/train-000000.tar ...   symlinks to the shards of ``data.paths.train_shards`` (sorted)
    grit/grit-000000.tar ...     symlinks to the shards of ``data.paths.grit_shards`` (box methods)
    bench/<name>.npz|json        benchmarks read by :mod:`hyplib.data.readers`
    manifest.json                sources, counts, skipped records by reason, unavailable benchmarks,
                                 repeated caption texts per retrieval set (``duplicate_captions``)

Configured paths (:data:`PATHS`, config keys ``data.paths.<key>``; relative ones are taken under
``data.root``) are resolved by :func:`resolve_data_paths`, which ``hyplib.workflow.check_config``
also calls before any job starts; every error names the config key and the resolved path. It also
checks what each file must hold without reading an image (folder names, taxonomy and templates,
JSON top-level keys, csv header), so a bad benchmark file fails in seconds, before the training
shards are verified.

Benchmarks (names the evaluation driver reads): ``zeroshot`` (ImageNet val, whose hierarchy
metrics use the built-in WordNet tree; or your own ``class_folders`` with an optional
``taxonomy`` file, written as the ``taxonomy`` benchmark, and ``templates``; see
:mod:`hyplib.data.classes`), ``retrieval`` (COCO val2017), ``retrieval_flickr30k``
(Flickr30k Karpathy test), ``composition`` (SugarCrepe), ``hierarcaps``, and ``pep`` built from
the HierarCaps chains (:mod:`hyplib.data.pep_pairs`). ``chains`` needs whole/part/sub-part crops
that no configured dataset provides. A benchmark that cannot be built is listed under
``manifest["unavailable"]`` with the reason, and the evaluation reports it as
"not available for this data".

Nothing is dropped silently: training shards are indexed and (``verify_shards=True``) every
record decoded as the loader decodes it; unreadable records, missing or undecodable benchmark
images and malformed items are counted by reason in ``manifest["skipped"]``.
"""
from __future__ import annotations

import csv
import functools
import json
import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .benchmarks import duplicate_caption_counts, save_benchmark
from .captions import SUBSETS
from .decoded import IMAGES_FILE, RECORDS_FILE
from .loader import HYCOCLIP_MIN_BOX
from .pep_pairs import pep_from_chains
from .preprocess import usable_boxes
from .readers import read_dataset
from .records import BadRecord, decode_record
from .shards import INDEX_CACHE, ShardIndex, expand_shards

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PathSpec:
    """What one ``data.paths`` key holds: ``kind`` is ``shards`` (directory, glob or brace range
    of ``.tar``), ``dir`` or ``file``; ``needs`` are the keys it cannot be read without."""

    kind: str
    help: str
    needs: tuple[str, ...] = ()


PATHS: dict[str, PathSpec] = {
    "train_shards": PathSpec("shards", "webdataset shards of {jpg|png|webp, json|txt} image-caption records "
                                       "(RedCaps, CC3M); every method without boxes trains on them"),
    "grit_shards": PathSpec("shards", "GRIT webdataset shards (json with caption, noun_chunks, ref_exps); "
                                      "the methods that use boxes train on them"),
    "imagenet_val": PathSpec("dir", "ImageNet-1k validation images, one folder per WordNet id "
                                    "(n01440764/...)"),
    "class_folders": PathSpec("dir", "your zero-shot classes: one folder of images per class, any folder names "
                                     "(the class ids; set this instead of imagenet_val)"),
    "taxonomy": PathSpec("file", "csv/tsv 'child,parent[,name]', one row per node; its leaves are the class "
                                 "folders (hierarchy metrics)", needs=("class_folders",)),
    "templates": PathSpec("file", "prompt templates for the class folders, one per line, each with '{}'",
                          needs=("class_folders",)),
    "coco_captions": PathSpec("file", "COCO captions_val2017.json", needs=("coco_images",)),
    "coco_images": PathSpec("dir", "COCO val2017 images (file names as in the captions json and SugarCrepe)"),
    "flickr_karpathy": PathSpec("file", "Karpathy split dataset_flickr30k.json (test split)",
                                needs=("flickr_images",)),
    "flickr_images": PathSpec("dir", "Flickr30k images (file names as in the Karpathy json)"),
    "sugarcrepe": PathSpec("dir", "SugarCrepe <subset>.json files (add_obj.json, ..., swap_att.json)",
                           needs=("coco_images",)),
    "hierarcaps": PathSpec("file", "HierarCaps csv (id,captions,image_url; 4 levels joined by ' => ')",
                           needs=("hierarcaps_images",)),
    "hierarcaps_images": PathSpec("dir", "HierarCaps images, named as the last part of each row's image_url"),
}
REQUIRED = ("train_shards",)

#: benchmark name -> its sources, each (reader, the keys whose paths it reads in the reader's
#: argument order, optional keys passed when set); the first source whose first key is set is read.
BENCHMARKS: dict[str, tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] = {
    "zeroshot": (("imagenet", ("imagenet_val",), ()),
                 ("classes", ("class_folders",), ("taxonomy", "templates"))),
    "retrieval": (("coco", ("coco_captions", "coco_images"), ()),),
    "retrieval_flickr30k": (("flickr30k", ("flickr_karpathy", "flickr_images"), ()),),
    "composition": (("sugarcrepe", ("sugarcrepe", "coco_images"), ()),),
    "hierarcaps": (("hierarcaps", ("hierarcaps", "hierarcaps_images"), ()),),
}
#: Keys that give the same benchmark: at most one of each group may be set.
EXCLUSIVE = (("imagenet_val", "class_folders"),)
CHAINS_UNAVAILABLE = ("needs whole -> part -> sub-part image crops and adjective -> noun phrase -> caption "
                      "chains; none of the configured real datasets provides them")
#: Config path key -> folder of ``out_dir`` holding those training shards (each folder also gets
#: the saved shard index).
SHARD_FOLDERS = {"train_shards": "train", "grit_shards": "grit"}


def resolve_data_paths(root, paths: dict, *, required=REQUIRED) -> dict[str, list[Path]]:
    """Check and resolve ``data.paths`` under ``root``: key -> list of paths (one unless shards).

    ``required``: keys that must be set (``()`` for evaluation-only data, e.g. released checkpoints).

    Raises:
        ValueError: an unknown key, a required key (``train_shards``) not set, or a key set
            without one it needs (``coco_captions`` without ``coco_images``, ...).
        FileNotFoundError: a path that does not exist or is not of its kind; the message names
            ``data.paths.<key>`` and the resolved path.
    """
    paths = {k: v for k, v in (paths or {}).items() if v not in (None, "")}
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        raise ValueError(f"config key data.paths.{unknown[0]}: unknown key; valid keys: {sorted(PATHS)}")
    out: dict[str, list[Path]] = {}
    for key in sorted(paths):
        out[key] = _resolve_one(key, Path(root) / str(paths[key]))
    for key in required:
        if key not in out:
            raise ValueError(f"config key data.paths.{key}: not set ({PATHS[key].help})")
    for key in sorted(out):
        for need in PATHS[key].needs:
            if need not in out:
                raise ValueError(f"config key data.paths.{need}: not set, but data.paths.{key} needs it "
                                 f"({PATHS[need].help})")
    for group in EXCLUSIVE:
        both = [k for k in group if k in out]
        if len(both) > 1:
            raise ValueError(f"config key data.paths.{both[1]}: set together with data.paths.{both[0]}; both give "
                             "the zero-shot benchmark, keep one")
    _check_contents(out)
    return out


def _check_contents(resolved: dict[str, list[Path]]) -> None:
    """What each benchmark's files must hold, checked without reading an image (seconds), so a
    bad file fails here rather than after the training shards are verified."""
    from .classes import check_classes, read_taxonomy, read_templates

    def fail(key: str, err: Exception):
        raise ValueError(f"config key data.paths.{key} ({resolved[key][0]}): {err}") from None

    if "imagenet_val" in resolved:
        from .wordnet import imagenet_wnids

        root, wnids = resolved["imagenet_val"][0], set(imagenet_wnids())
        odd = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in wnids)
        if odd:
            fail("imagenet_val", ValueError(
                f"{len(odd)} folder(s) are not ImageNet-1k WordNet ids, e.g. {odd[:5]}; for classes of your "
                "own set data.paths.class_folders instead (optionally with data.paths.taxonomy)"))
    if "class_folders" in resolved:
        args = {k: resolved[k][0] for k in ("taxonomy", "templates") if k in resolved}
        for key, parse in (("taxonomy", read_taxonomy), ("templates", read_templates)):
            if key in args:
                try:
                    parse(args[key])
                except ValueError as err:
                    fail(key, err)
        try:  # the folders, and the taxonomy's leaves against them
            check_classes(resolved["class_folders"][0], **args)
        except ValueError as err:
            fail("class_folders", err)
    for key, top in (("coco_captions", ("images", "annotations")), ("flickr_karpathy", ("images",))):
        if key in resolved:
            try:
                data = json.loads(resolved[key][0].read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                fail(key, ValueError(f"not valid JSON ({err})"))
            missing = [k for k in top if not isinstance(data, dict) or k not in data]
            if missing:
                fail(key, ValueError(f"JSON lacks the top-level key(s) {missing}"))
    if "sugarcrepe" in resolved and not any((resolved["sugarcrepe"][0] / f"{s}.json").is_file() for s in SUBSETS):
        fail("sugarcrepe", FileNotFoundError(f"no <subset>.json of {list(SUBSETS)}"))
    if "hierarcaps" in resolved:
        with open(resolved["hierarcaps"][0], newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        if not {"captions", "image_url"} <= {h.strip() for h in header}:
            fail("hierarcaps", ValueError(f"csv header {header} lacks 'captions' and 'image_url'"))


def _resolve_one(key: str, path: Path) -> list[Path]:
    kind = PATHS[key].kind
    if kind == "shards":
        try:
            return expand_shards(str(path))
        except FileNotFoundError as err:
            raise FileNotFoundError(f"config key data.paths.{key}: {err} (resolved path {path})") from None
    ok = path.is_dir() if kind == "dir" else path.is_file()
    if not ok:
        what = "folder" if kind == "dir" else "file"
        state = "is not a " + what if path.exists() else "does not exist"
        raise FileNotFoundError(f"config key data.paths.{key}: {what} {path} {state} ({PATHS[key].help})")
    return [path]


def clear_prepared(out_dir, *, keep=()) -> None:
    """Remove what a previous preparation left in ``out_dir`` (shards or their links, benchmarks,
    manifest), so no stale file of another source is read. Refuses when a path in ``keep`` (your
    data) lies in one of those folders."""
    out = Path(out_dir)
    managed = [out / "train", out / "grit", out / "bench"]
    for src in keep:
        for folder in managed:
            if Path(src).resolve().is_relative_to(folder.resolve()):
                raise ValueError(f"input {src} lies inside the output folder {folder}; "
                                 "choose another out_dir")
    for folder, pattern in ((managed[0], "*.tar"), (managed[1], "*.tar"), (managed[2], "*.npz"),
                            (managed[2], "*.json"), (managed[0], INDEX_CACHE), (managed[1], INDEX_CACHE),
                            (managed[0], IMAGES_FILE), (managed[0], RECORDS_FILE),
                            (managed[1], IMAGES_FILE), (managed[1], RECORDS_FILE)):
        for p in folder.glob(pattern):
            p.unlink()
    (out / "manifest.json").unlink(missing_ok=True)


def scan_shard(path, *, decode: bool = True, min_box_size: float = HYCOCLIP_MIN_BOX) -> dict:
    """Count one shard's records as the loader would read them.

    Returns ``{"records", "images", "with_boxes", "skipped": {reason: n}}``: ``records`` indexed,
    ``images`` decodable (all indexed ones when ``decode`` is False), ``with_boxes`` records with
    a usable box; ``skipped`` holds the index's problems (``truncated_record``, and
    ``corrupt_tar`` once per damaged shard) and, when decoding, the loader's reasons
    (``bad_image``, ``bad_json``, ``no_image``, ``no_caption``, ``bad_captions``, ``bad_boxes``).
    :func:`prepare_real` keeps these per shard in the manifest (``<folder>.skipped_by_shard``).
    """
    index = ShardIndex.build([Path(path)])
    skipped = Counter(index.problems)
    if not decode:
        return {"records": len(index), "images": len(index), "with_boxes": None, "skipped": dict(skipped)}
    images = boxed = 0
    with open(path, "rb") as fh:
        for _, key, fields in index.records:
            raw = {}
            for ext, (offset, size) in fields.items():
                fh.seek(offset)
                raw[ext] = fh.read(size)
            try:
                sample = decode_record(key, raw)
            except BadRecord as err:
                skipped[err.reason] += 1
                log.warning("skipped record %s in %s: %s", key, path, err)
                continue
            images += 1
            boxed += bool(usable_boxes(sample.boxes, min_box_size))
    return {"records": len(index), "images": images, "with_boxes": boxed, "skipped": dict(skipped)}


def _link_shards(key: str, sources: list[Path], out: Path, *, decode: bool, workers: int,
                 progress: bool) -> dict:
    """Symlink ``sources`` as ``out/<folder>/<folder>-NNNNNN.tar`` and count their records."""
    folder = SHARD_FOLDERS[key]
    (out / folder).mkdir(parents=True, exist_ok=True)
    names = []
    for i, src in enumerate(sources):
        name = f"{folder}/{folder}-{i:06d}.tar"
        os.symlink(src.resolve(), out / name)
        names.append(name)
    scan = functools.partial(scan_shard, decode=decode)
    bar = tqdm(total=len(sources), desc=f"{'verify' if decode else 'index'} {folder}", unit="shard",
               disable=not progress)
    results = []
    if workers <= 1 or len(sources) == 1:
        for src in sources:
            results.append(scan(src))
            bar.update()
    else:
        with mp.get_context("fork").Pool(min(workers, len(sources))) as pool:
            for r in pool.imap(scan, sources):
                results.append(r)
                bar.update()
    bar.close()
    skipped = sum((Counter(r["skipped"]) for r in results), Counter())
    by_shard = {str(src): r["skipped"] for src, r in zip(sources, results) if r["skipped"]}
    entry = {"shards": names, "sources": [str(s.resolve()) for s in sources], "skipped_by_shard": by_shard,
             "records": sum(r["records"] for r in results), "images": sum(r["images"] for r in results),
             "verified": decode}
    if decode:
        entry["with_boxes"] = sum(r["with_boxes"] for r in results)
    if entry["images"] == 0:
        raise ValueError(f"config key data.paths.{key}: no readable records in {len(sources)} shard(s) "
                         f"{[str(s) for s in sources[:3]]}; skipped {dict(skipped)}")
    return {**entry, "skipped": dict(skipped)}


def _source(name: str, resolved: dict):
    """The first source of benchmark ``name`` whose first key is set, or None."""
    return next((src for src in BENCHMARKS[name] if src[1][0] in resolved), None)


def _read_benchmark(name: str, resolved: dict, image_size: int, progress: bool) -> tuple[dict, dict]:
    """One benchmark through its reader; returns (benchmark dict, manifest record)."""
    dataset, keys, optional = _source(name, resolved)
    args = [resolved[k][0] for k in keys]
    kwargs: dict = {"image_size": image_size, "skipped": Counter(), "progress": progress}
    kwargs.update({k: resolved[k][0] for k in optional if k in resolved})
    record = {"dataset": dataset, "paths": {k: str(resolved[k][0]) for k in keys + optional if k in resolved}}
    if dataset == "sugarcrepe":
        present = [s for s in SUBSETS if (args[0] / f"{s}.json").is_file()]
        if not present:
            raise FileNotFoundError(f"config key data.paths.sugarcrepe: no <subset>.json of {list(SUBSETS)} "
                                    f"in {args[0]}")
        kwargs["subsets"] = present
        record["missing_subsets"] = [s for s in SUBSETS if s not in present]
        if record["missing_subsets"]:
            log.warning("SugarCrepe subsets missing in %s: %s", args[0], record["missing_subsets"])
    try:
        bench = read_dataset(dataset, *args, **kwargs)
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"config key data.paths.{keys[0]} ({args[0]}): {err}") from err
    record["skipped"] = dict(kwargs["skipped"])
    return bench, record


def prepare_real(out_dir, *, root=".", paths: dict, image_size: int = 224, seed: int = 0, workers: int = 1,
                 verify_shards: bool = True, progress: bool = True, required=REQUIRED) -> dict:
    """Link the training shards, read every benchmark the files provide, write ``manifest.json``.

    Args:
        out_dir: output folder (``results/data`` in the workflow); see the module docstring.
        root: folder that relative ``paths`` are taken under (``data.root``).
        paths: ``data.paths`` of the config, keys from :data:`PATHS`; ``train_shards`` required.
        image_size: side of the benchmark images (zero-shot: resize + centre crop; the others:
            squashed to a square).
        seed: draws of the cross-image PEP negatives.
        workers: processes verifying shards in parallel.
        verify_shards: decode every training record (slow on millions; False only indexes).
        progress: tqdm bars.
        required: ``data.paths`` keys that must be set (``()``: benchmarks only, no training shards).

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    resolved = resolve_data_paths(root, paths, required=required)
    clear_prepared(out, keep=[p for ps in resolved.values() for p in ps])
    manifest: dict = {"source": "real", "seed": int(seed), "benchmarks": {}, "benchmark_sources": {},
                      "unavailable": {}, "skipped": {},
                      "config": {"root": str(root), "paths": {k: str(v) for k, v in paths.items() if v},
                                 "image_size": int(image_size), "verify_shards": bool(verify_shards)},
                      "loader": {"min_box_size": HYCOCLIP_MIN_BOX, "caption_levels": 1}}
    for key, folder in SHARD_FOLDERS.items():
        if key in resolved:
            entry = _link_shards(key, resolved[key], out, decode=verify_shards, workers=workers,
                                 progress=progress)
            manifest[folder] = entry
            manifest["skipped"][folder] = entry["skipped"]
    for name, sources in BENCHMARKS.items():
        if _source(name, resolved) is None:
            manifest["unavailable"][name] = " / ".join(f"data.paths.{src[1][0]}" for src in sources) + " not set"
            continue
        bench, record = _read_benchmark(name, resolved, image_size, progress)
        manifest["benchmark_sources"][name] = record
        manifest["skipped"][name] = record["skipped"]
        taxonomy = bench.pop("taxonomy", None)
        _save(out, name, bench, manifest)  # one benchmark in memory at a time (ImageNet val is large)
        if taxonomy is not None:
            save_benchmark(out / "bench", "taxonomy", taxonomy)
        if name == "hierarcaps":
            pep, pep_meta = pep_from_chains(bench["images"], bench["captions"], seed=seed)
            manifest["benchmark_sources"]["pep"] = {"dataset": "hierarcaps", **pep_meta}
            _save(out, "pep", pep, manifest)
        del bench
    if "hierarcaps" not in resolved:
        manifest["unavailable"]["pep"] = "built from the HierarCaps chains; data.paths.hierarcaps not set"
    if "class_folders" in resolved and "taxonomy" not in resolved:
        manifest["unavailable"]["taxonomy"] = ("data.paths.taxonomy not set: zero-shot runs on the class folders, "
                                               "the hierarchy metrics need a taxonomy")
    elif "zeroshot" in manifest["unavailable"]:
        manifest["unavailable"]["taxonomy"] = "no zero-shot classes to place in a taxonomy"
    manifest["unavailable"]["chains"] = CHAINS_UNAVAILABLE
    manifest["duplicate_captions"] = duplicate_caption_counts(out / "bench")
    _finish(manifest, out, t0)
    return manifest


def _save(out: Path, name: str, bench: dict, manifest: dict) -> None:
    save_benchmark(out / "bench", name, bench)
    manifest["benchmarks"][name] = int(len(bench["images"]))


def _finish(manifest: dict, out: Path, t0: float) -> None:
    elapsed = time.perf_counter() - t0
    n = (manifest.get("train", {}).get("images", 0) + manifest.get("grit", {}).get("images", 0)
         + sum(manifest["benchmarks"].values()))
    manifest["seconds"] = round(elapsed, 2)
    manifest["images_per_second"] = round(n / max(elapsed, 1e-9), 1)  # 1e-9: avoid /0 on tiny runs
    for what, reasons in manifest["skipped"].items():
        if reasons:
            log.warning("%s: skipped %d record(s) %s", what, sum(reasons.values()), reasons)
    for name, why in manifest["unavailable"].items():
        log.warning("benchmark %r not available for this data: %s", name, why)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
