"""A contact sheet of training records: upscaled images, their boxes and captions (PNG).

Object boxes are drawn in yellow, part boxes in cyan; under each tile the most specific caption
and (when the record has caption levels) the generic one. Used by
``notebooks/03_prepare_data.ipynb`` to eyeball the training data, generated or real: every image
is resized to one square tile (small generated images upscaled by ``scale``, large real ones
shrunk to at most ``MAX_TILE`` pixels), its boxes scaled with it.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .records import BadRecord, decode_record
from .shards import expand_shards, iter_records

MAX_TILE = 192


def save_grid(shards, path, *, n: int = 16, cols: int = 4, scale: int = 5, parts: bool = True,
              tile: int | None = None) -> Path:
    """Write the first ``n`` records of ``shards`` as a grid PNG at ``path``; returns the path.

    ``tile`` is the side of each image in pixels; None: the first image's width times ``scale``,
    at most :data:`MAX_TILE`.
    """
    samples = []
    for shard in expand_shards(shards):  # shard by shard: indexing thousands up front is slow
        for key, fields in iter_records([shard]):
            try:
                samples.append(decode_record(key, fields))
            except BadRecord:  # counted in the manifest; the sheet shows readable records
                continue
            if len(samples) == n:
                break
        if len(samples) == n:
            break
    if not samples:
        raise ValueError(f"no records in {shards}")
    side = tile or min(samples[0].image.size[0] * scale, MAX_TILE)
    text_h = 80
    rows = -(-len(samples) // cols)
    sheet = Image.new("RGB", (cols * (side + 8), rows * (side + text_h + 8)), "white")
    font = ImageFont.load_default(size=11)
    for i, s in enumerate(samples):
        x, y = (i % cols) * (side + 8) + 4, (i // cols) * (side + text_h + 8) + 4
        w, h = s.image.size
        sx, sy = side / w, side / h
        img = s.image.resize((side, side), Image.NEAREST if side >= max(w, h) else Image.BICUBIC)
        draw = ImageDraw.Draw(img)
        for b in s.boxes:
            if b.get("kind") == "part" and (not parts or "/" in b.get("part", "")):
                continue
            colour = (255, 220, 0) if b.get("kind") == "object" else (0, 230, 230)
            x0, y0, x1, y1 = b["box"]
            draw.rectangle([x0 * sx, y0 * sy, x1 * sx, y1 * sy], outline=colour,
                           width=2 if b.get("kind") == "object" else 1)
        sheet.paste(img, (x, y))
        lines = textwrap.wrap(s.captions[-1], 34)[:3]
        if len(s.captions) > 1:
            lines += textwrap.wrap(f"[{s.captions[0]}]", 34)[:2]
        ImageDraw.Draw(sheet).multiline_text((x, y + side + 2), "\n".join(lines), fill="black", font=font, spacing=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
