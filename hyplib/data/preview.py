"""A contact sheet of training records: upscaled images, their boxes and captions (PNG).

Object boxes are drawn in yellow, part boxes in cyan; under each tile the most specific caption
and the generic one. Used by ``notebooks/01_prepare_data.ipynb`` to eyeball the generated data.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .records import decode_record
from .shards import expand_shards, iter_records


def save_grid(shards, path, *, n: int = 16, cols: int = 4, scale: int = 5, parts: bool = True) -> Path:
    """Write the first ``n`` records of ``shards`` as a grid PNG at ``path``; returns the path."""
    samples = []
    for key, fields in iter_records(expand_shards(shards)[:1]):
        samples.append(decode_record(key, fields))
        if len(samples) == n:
            break
    if not samples:
        raise ValueError(f"no records in {shards}")
    side = samples[0].image.size[0] * scale
    text_h = 80
    rows = -(-len(samples) // cols)
    sheet = Image.new("RGB", (cols * (side + 8), rows * (side + text_h + 8)), "white")
    font = ImageFont.load_default(size=11)
    for i, s in enumerate(samples):
        x, y = (i % cols) * (side + 8) + 4, (i // cols) * (side + text_h + 8) + 4
        tile = s.image.resize((side, side), Image.NEAREST)
        draw = ImageDraw.Draw(tile)
        for b in s.boxes:
            if b.get("kind") == "part" and (not parts or "/" in b.get("part", "")):
                continue
            colour = (255, 220, 0) if b.get("kind") == "object" else (0, 230, 230)
            draw.rectangle([v * scale for v in b["box"]], outline=colour, width=2 if b.get("kind") == "object" else 1)
        sheet.paste(tile, (x, y))
        lines = textwrap.wrap(s.captions[-1], 34)[:3] + textwrap.wrap(f"[{s.captions[0]}]", 34)[:2]
        ImageDraw.Draw(sheet).multiline_text((x, y + side + 2), "\n".join(lines), fill="black", font=font, spacing=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
