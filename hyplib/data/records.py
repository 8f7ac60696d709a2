"""Decode one webdataset record (real or generated) into an image, its captions and boxes.

Accepted fields (the union of what CC3M/RedCaps/GRIT shards and our generator write):
    * image: ``png``, ``jpg``, ``jpeg`` or ``webp``;
    * ``json``: ``captions`` (list, generic -> specific), ``caption`` (str), ``boxes``
      ([{"box": [x0,y0,x1,y1] pixels, "phrase", "kind", "label"}]), or GRIT's ``noun_chunks`` /
      ``ref_exps`` (``[start, end, x0, y0, x1, y1, score]``, box normalised to [0,1], phrase
      ``caption[start:end]``);
    * ``txt``: the caption, when there is no json caption.

A record that cannot be used raises :class:`BadRecord` with a short machine-readable reason
(``no_image``, ``bad_image``, ``bad_json``, ``no_caption``); loaders count those reasons.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

from PIL import Image

IMAGE_FIELDS = ("png", "jpg", "jpeg", "webp")


class BadRecord(Exception):
    """A record that cannot be decoded; ``reason`` is the counter key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Sample:
    key: str
    image: Image.Image                       # RGB
    captions: list[str]                      # caption levels, generic -> specific (len >= 1)
    caption: str                             # the record's single caption (most specific if absent)
    boxes: list[dict] = field(default_factory=list)   # {"box": [x0,y0,x1,y1] px, "phrase", "kind"}
    meta: dict = field(default_factory=dict)


def decode_image(data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as err:  # PIL raises many types on bad bytes
        raise BadRecord("bad_image", str(err)) from err
    return img.convert("RGB")


def grit_boxes(meta: dict, width: int, height: int) -> list[dict]:
    """GRIT ``noun_chunks`` then ``ref_exps`` as pixel boxes with their caption phrases."""
    caption = meta.get("caption", "")
    out = []
    for kind in ("noun_chunks", "ref_exps"):
        for item in meta.get(kind) or []:
            start, end, x0, y0, x1, y1 = item[:6]
            out.append({"box": [x0 * width, y0 * height, x1 * width, y1 * height],
                        "phrase": caption[int(start):int(end)], "kind": "object"})
    return out


def decode_record(key: str, fields: dict[str, bytes]) -> Sample:
    """Decode raw fields into a :class:`Sample`; raises :class:`BadRecord`."""
    img_field = next((f for f in IMAGE_FIELDS if f in fields), None)
    if img_field is None:
        raise BadRecord("no_image", f"fields {sorted(fields)}")
    meta: dict = {}
    if "json" in fields:
        try:
            meta = json.loads(fields["json"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BadRecord("bad_json", str(err)) from err
        if not isinstance(meta, dict):
            raise BadRecord("bad_json", "json is not an object")
    image = decode_image(fields[img_field])
    captions = [c for c in meta.get("captions") or [] if isinstance(c, str) and c.strip()]
    caption = meta.get("caption")
    if not isinstance(caption, str) or not caption.strip():
        caption = fields["txt"].decode("utf-8", "replace").strip() if "txt" in fields else None
    if not caption and captions:
        caption = captions[-1]
    if not caption:
        raise BadRecord("no_caption")
    if not captions:
        captions = [caption]
    if "boxes" in meta:
        boxes = [b for b in meta["boxes"] if isinstance(b, dict) and "box" in b and "phrase" in b]
    else:
        boxes = grit_boxes(meta, *image.size)
    return Sample(key=key, image=image, captions=captions, caption=caption, boxes=boxes, meta=meta)
