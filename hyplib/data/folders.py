"""A folder of captioned images -> the files the real-data path reads (README, "Your own data").

    python -m hyplib.data.folders shards SRC OUT_DIR [--per-shard 1000]
    python -m hyplib.data.folders coco SRC OUT_JSON

Layout of ``SRC``: every image (``.jpg``, ``.jpeg``, ``.png``, ``.webp``) anywhere below it, with
a caption file of the same stem beside it (``cat_01.jpg`` + ``cat_01.txt``). Each non-empty
line of the caption file is one caption of the image.

* ``shards``: webdataset shards ``OUT_DIR/shard-000000.tar``, ... of ``--per-shard`` records,
  one per image: the image bytes as they are and ``{"caption": <first line>, "source":
  <path under SRC>}`` (``data.paths.train_shards``).
* ``coco``: a COCO-style captions JSON (``images`` with ``id`` and ``file_name`` relative to
  ``SRC``, one ``annotations`` entry per caption line), read with ``data.paths.coco_captions``
  and ``data.paths.coco_images: SRC`` as the ``retrieval`` benchmark.

Images are visited in sorted path order, so the output depends only on the folder. Nothing is
dropped silently: an image without a caption file (``no_caption_file``) or with only blank lines
(``empty_caption``), and a caption file without an image (``caption_without_image``), are counted
and reported (printed, and in the returned stats).
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from .shards import write_shard

IMAGE_EXT = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp"}


def captioned_images(src) -> tuple[list[tuple[Path, list[str]]], Counter]:
    """``[(image path, captions)]`` under ``src`` in sorted order, and the skipped items by reason."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"image folder not found: {src}")
    skipped: Counter = Counter()
    items = []
    images = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXT)
    stems = {p.with_suffix("") for p in images}
    for path in images:
        txt = path.with_suffix(".txt")
        if not txt.is_file():
            skipped["no_caption_file"] += 1
            continue
        caps = [line.strip() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not caps:
            skipped["empty_caption"] += 1
            continue
        items.append((path, caps))
    skipped["caption_without_image"] += sum(p.with_suffix("") not in stems for p in src.rglob("*.txt"))
    if not items:
        raise ValueError(f"no captioned images under {src} (an image needs a same-stem .txt beside it); "
                         f"skipped {dict(+skipped)}")
    return items, +skipped


def write_shards(src, out_dir, *, per_shard: int = 1000) -> dict:
    """Captioned images of ``src`` -> ``out_dir/shard-NNNNNN.tar``; returns the stats."""
    if per_shard < 1:
        raise ValueError(f"per_shard must be >= 1, got {per_shard}")
    items, skipped = captioned_images(src)
    out = Path(out_dir)
    shards = []
    for k in range(0, len(items), per_shard):
        records = ({"__key__": f"{k + i:08d}", IMAGE_EXT[p.suffix.lower()]: p.read_bytes(),
                    "json": json.dumps({"caption": caps[0], "source": p.relative_to(src).as_posix()},
                                       ensure_ascii=False).encode("utf-8")}
                   for i, (p, caps) in enumerate(items[k:k + per_shard]))
        path = out / f"shard-{k // per_shard:06d}.tar"
        write_shard(path, records)
        shards.append(path.name)
    return {"images": len(items), "shards": shards, "skipped": dict(skipped)}


def write_coco(src, out_json) -> dict:
    """Captioned images of ``src`` -> a COCO captions JSON at ``out_json``; returns the stats."""
    items, skipped = captioned_images(src)
    images, annotations = [], []
    for i, (p, caps) in enumerate(items, start=1):
        images.append({"id": i, "file_name": p.relative_to(src).as_posix()})
        annotations += [{"id": len(annotations) + j + 1, "image_id": i, "caption": c} for j, c in enumerate(caps)]
    out = Path(out_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"images": images, "annotations": annotations}, ensure_ascii=False, indent=1))
    return {"images": len(images), "captions": len(annotations), "skipped": dict(skipped)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m hyplib.data.folders", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("shards", help="training shards from captioned images")
    s.add_argument("src")
    s.add_argument("out_dir")
    s.add_argument("--per-shard", type=int, default=1000)
    c = sub.add_parser("coco", help="a COCO captions json (retrieval benchmark) from captioned images")
    c.add_argument("src")
    c.add_argument("out_json")
    args = ap.parse_args(argv)
    if args.command == "shards":
        stats = write_shards(args.src, args.out_dir, per_shard=args.per_shard)
        print(f"{stats['images']} images in {len(stats['shards'])} shard(s) under {args.out_dir}; "
              f"skipped {stats['skipped'] or 'none'}")
    else:
        stats = write_coco(args.src, args.out_json)
        print(f"{stats['images']} images, {stats['captions']} captions -> {args.out_json}; "
              f"skipped {stats['skipped'] or 'none'}")
    return stats


if __name__ == "__main__":
    main()
