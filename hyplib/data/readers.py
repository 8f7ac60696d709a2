"""Readers for real data, returning the benchmark dicts of :mod:`hyplib.data.benchmarks`.

Registry (:func:`read_dataset`, :func:`dataset_names`); the ``read_*`` functions themselves
return ``(arrays, meta)`` for :func:`~hyplib.data.benchmarks.write_benchmark`:
    ``cc3m``, ``redcaps``   image-caption webdataset shards -> iterator of :class:`Sample`
    ``grit``                GRIT shards (``noun_chunks``/``ref_exps`` boxes) -> iterator of Sample
    ``imagenet``            class folders named by WordNet id -> ``zeroshot`` dict
    ``classes``             class folders with any names (+ taxonomy, templates) -> ``zeroshot`` dict
    ``coco``                val2017 ``captions_val2017.json`` + image dir -> ``retrieval`` dict
    ``flickr30k``           Karpathy ``dataset_flickr30k.json`` + image dir -> ``retrieval`` dict
    ``sugarcrepe``          one ``<subset>.json`` per subset + COCO images -> ``composition`` dict
    ``hierarcaps``          ``hierarcaps_test.csv`` (captions joined by `` => ``) -> ``hierarcaps`` dict

Images: zero-shot ones are resized on the shorter side and centre-cropped (CLIP's evaluation
transform); retrieval, composition and hierarcaps images are resized to a square without crop
(the retrieval protocol of docs/METHODS.md, section 4). A missing path raises FileNotFoundError naming
it; a reader that finds nothing raises ValueError rather than returning an empty benchmark.

Skipping: by default a missing or undecodable image raises. Given ``skipped=Counter()``, the
benchmark readers skip such items instead and count them by reason (``missing_image``,
``bad_image``, and per reader ``no_captions``, ``bad_item``, ``bad_row``), so nothing is dropped
silently; :func:`hyplib.data.real.prepare_real` writes those counts to the manifest.
``progress=True`` shows a tqdm bar over the items.
"""
from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .captions import SUBSETS
from .preprocess import resize_square, squash
from .records import BadRecord, Sample, decode_record
from .shards import RecordReader, ShardIndex, expand_shards

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
HIERARCAPS_LEVELS = 4

log = logging.getLogger(__name__)


def _need(path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p}")
    return p


def _load(path: Path, size: int, crop: bool) -> np.ndarray:
    img = Image.open(_need(path, "image")).convert("RGB")
    return np.asarray(resize_square(img, size) if crop else squash(img, size), np.uint8)


def _try_load(path: Path, size: int, crop: bool, skipped: Counter | None) -> np.ndarray | None:
    """:func:`_load`, or (with a ``skipped`` counter) None and the reason counted."""
    if skipped is None:
        return _load(path, size, crop)
    if not Path(path).is_file():
        reason = "missing_image"
    else:
        try:
            return _load(path, size, crop)
        except (OSError, ValueError, Image.DecompressionBombError):  # PIL's errors on bad files
            reason = "bad_image"
    skipped[reason] += 1
    log.warning("skipped %s (%s)", path, reason)
    return None


def _bar(items, progress: bool, desc: str):
    return tqdm(items, desc=desc, unit="img", disable=not progress, mininterval=2.0)


def _nonempty(n: int, what: str, where) -> None:
    if n == 0:
        raise ValueError(f"no {what} found in {where}")


def read_shards(path, *, skip_bad: bool = True, skipped: Counter | None = None) -> Iterator[Sample]:
    """Decoded records of image-caption (or GRIT) shards; bad records skipped unless told.

    Every skipped record and every damaged shard (:class:`~hyplib.data.shards.ShardIndex`'s
    ``corrupt_tar``, ``truncated_record``) is logged with its shard and counted by reason in
    ``skipped`` when given.
    """
    skipped = Counter() if skipped is None else skipped
    found = 0
    for shard in expand_shards(path):
        index = ShardIndex.build([shard])
        skipped.update(index.problems)
        reader = RecordReader(index)
        for i in range(len(index)):
            key, fields = reader.read(i)
            try:
                sample = decode_record(key, fields)
            except BadRecord as err:
                if not skip_bad:
                    raise BadRecord(err.reason, f"record {key} in {shard}: {err}") from err
                skipped[err.reason] += 1
                log.warning("skipped record %s in %s: %s", key, shard, err)
                continue
            found += 1
            yield sample
    if sum(skipped.values()):
        log.warning("%s: skipped %s", path, dict(skipped))
    _nonempty(found, "readable records", path)


def read_imagenet(root, *, image_size: int = 224, per_class: int | None = None,
                  skipped: Counter | None = None, progress: bool = False) -> tuple[dict, dict]:
    """ImageNet-style ``root/<wnid>/*.JPEG`` -> zeroshot (labels in ImageNet class-index order)."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    from .wordnet import imagenet_wnids
    root = _need(root, "ImageNet folder")
    wnids = imagenet_wnids()
    index = {w: i for i, w in enumerate(wnids)}
    items = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if d.name not in index:
            raise ValueError(f"folder {d} is not an ImageNet-1k wnid")
        files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXT)[:per_class]
        items += [(f, index[d.name]) for f in files]
    templates = [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    meta = {"classnames": list(IMAGENET_CLASSNAMES), "class_ids": wnids, "templates": templates}
    return labelled_images(items, image_size, root, skipped, progress, "imagenet"), meta


def labelled_images(items: list[tuple[Path, int]], size: int, where, skipped: Counter | None = None,
                    progress: bool = False, desc: str = "images") -> dict:
    """``[(path, label)]`` -> ``{"images", "labels"}`` for zero-shot (resize + centre crop); an
    unreadable image is counted in ``skipped`` (or raises without it); none readable raises."""
    images, labels = [], []
    for f, label in _bar(items, progress, desc):
        img = _try_load(f, size, True, skipped)
        if img is not None:
            images.append(img)
            labels.append(label)
    _nonempty(len(images), "images", where)
    return {"images": np.stack(images), "labels": np.asarray(labels, np.int64)}


def _retrieval(items: list[tuple[Path, list[str]]], size: int, where, skipped: Counter | None = None,
               progress: bool = False, desc: str = "retrieval") -> tuple[dict, dict]:
    """Images squashed to ``size`` and their captions; a skipped image takes its captions with it."""
    _nonempty(len(items), "images with captions", where)
    images, owner, captions = [], [], []
    for path, caps in _bar(items, progress, desc):
        img = _try_load(path, size, False, skipped)
        if img is None:
            continue
        owner += [len(images)] * len(caps)
        images.append(img)
        captions += caps
    _nonempty(len(images), "readable images", where)
    return {"images": np.stack(images), "caption_image": np.asarray(owner, np.int64)}, {"captions": captions}


def read_coco(captions_json, image_dir, *, image_size: int = 224, limit: int | None = None,
              skipped: Counter | None = None, progress: bool = False):
    """COCO ``captions_val2017.json`` -> retrieval (all captions of each image).

    Images without any caption are left out (counted as ``no_captions`` when ``skipped`` is given).
    """
    data = json.loads(_need(captions_json, "COCO captions json").read_text())
    image_dir = _need(image_dir, "COCO image folder")
    caps: dict[int, list[str]] = {}
    for ann in data["annotations"]:
        caps.setdefault(ann["image_id"], []).append(ann["caption"].strip())
    items = [(image_dir / im["file_name"], caps[im["id"]]) for im in sorted(data["images"], key=lambda x: x["id"])
             if im["id"] in caps][:limit]
    if skipped is not None and limit is None:
        uncaptioned = sum(im["id"] not in caps for im in data["images"])
        if uncaptioned:
            skipped["no_captions"] += uncaptioned
    return _retrieval(items, image_size, captions_json, skipped, progress, "coco")


def read_flickr30k(karpathy_json, image_dir, *, image_size: int = 224, split: str = "test", limit=None,
                   skipped: Counter | None = None, progress: bool = False):
    """Karpathy ``dataset_flickr30k.json`` -> retrieval over one split (1k test images)."""
    data = json.loads(_need(karpathy_json, "Karpathy split json").read_text())
    image_dir = _need(image_dir, "Flickr30k image folder")
    items = [(image_dir / im["filename"], [s["raw"].strip() for s in im["sentences"]])
             for im in data["images"] if im.get("split") == split][:limit]
    return _retrieval(items, image_size, f"{karpathy_json} split {split!r}", skipped, progress, "flickr30k")


def read_sugarcrepe(json_dir, image_dir, *, image_size: int = 224, subsets=SUBSETS, limit=None,
                    skipped: Counter | None = None, progress: bool = False):
    """SugarCrepe ``<subset>.json`` files ({id: {filename, caption, negative_caption}}) -> composition.

    With ``skipped``, an item lacking one of those keys is counted as ``bad_item``.
    """
    json_dir, image_dir = _need(json_dir, "SugarCrepe folder"), _need(image_dir, "COCO image folder")
    items = []
    for subset in subsets:
        path = _need(json_dir / f"{subset}.json", f"SugarCrepe subset {subset!r}")
        items += [(subset, item) for item in list(json.loads(path.read_text()).values())[:limit]]
    images, pos, neg, subs = [], [], [], []
    for subset, item in _bar(items, progress, "sugarcrepe"):
        if skipped is not None and not (isinstance(item, dict) and all(
                isinstance(item.get(k), str) for k in ("filename", "caption", "negative_caption"))):
            skipped["bad_item"] += 1
            continue
        img = _try_load(image_dir / item["filename"], image_size, False, skipped)
        if img is not None:
            images.append(img)
            pos.append(item["caption"])
            neg.append(item["negative_caption"])
            subs.append(subset)
    _nonempty(len(images), "SugarCrepe items", json_dir)
    meta = {"positives": pos, "negatives": neg, "subsets": subs, "heldout": [False] * len(pos)}
    return {"images": np.stack(images)}, meta


def read_hierarcaps(csv_path, image_dir, *, image_size: int = 224, limit=None,
                    skipped: Counter | None = None, progress: bool = False):
    """HierarCaps test CSV (``id,captions,image_url``; levels joined by `` => ``) -> hierarcaps.

    Images are looked up in ``image_dir`` by the URL's file name. With ``skipped``, a row
    without exactly 4 non-empty levels or without an image URL is counted as ``bad_row``.
    """
    image_dir = _need(image_dir, "HierarCaps image folder")
    with open(_need(csv_path, "HierarCaps csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))[:limit]
    images, caps = [], []
    for row in _bar(rows, progress, "hierarcaps"):
        levels = [c.strip() for c in (row.get("captions") or "").split("=>")]
        url = (row.get("image_url") or "").strip()
        if skipped is not None and (len(levels) != HIERARCAPS_LEVELS or not all(levels) or not url):
            skipped["bad_row"] += 1
            continue
        img = _try_load(image_dir / url.rsplit("/", 1)[-1], image_size, False, skipped)
        if img is not None:
            images.append(img)
            caps.append(levels)
    _nonempty(len(images), "HierarCaps rows", csv_path)
    return {"images": np.stack(images)}, {"captions": caps}


def read_classes(root, taxonomy=None, templates=None, **kwargs):
    """Class folders with any names -> zeroshot (:func:`hyplib.data.classes.read_classes`)."""
    from .classes import read_classes as _read

    return _read(root, taxonomy, templates, **kwargs)


REGISTRY: dict[str, Callable] = {
    "cc3m": read_shards, "redcaps": read_shards, "grit": read_shards, "imagenet": read_imagenet,
    "classes": read_classes,
    "coco": read_coco, "flickr30k": read_flickr30k, "sugarcrepe": read_sugarcrepe, "hierarcaps": read_hierarcaps,
}


def dataset_names() -> list[str]:
    return sorted(REGISTRY)


def read_dataset(name: str, *args, **kwargs):
    """Read dataset ``name`` (see the module docstring); unknown names raise listing valid ones.

    Benchmark readers return one dict shaped like :func:`load_benchmark`'s (arrays and meta
    merged; save it with :func:`~hyplib.data.benchmarks.save_benchmark`); shard readers return an
    iterator of samples.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; valid: {dataset_names()}")
    out = REGISTRY[name](*args, **kwargs)
    if isinstance(out, tuple):
        arrays, meta = out
        return {**arrays, **meta}
    return out
