"""Decode one webdataset record (real or generated) into an image, its captions and boxes.

Accepted fields (the union of what CC3M/RedCaps/GRIT shards and our generator write):
    * image: ``png``, ``jpg``, ``jpeg`` or ``webp``;
    * ``json``: ``captions`` (list, generic -> specific), ``caption`` (str), ``boxes``
      ([{"box": [x0,y0,x1,y1] pixels, "phrase", "kind", "label"}]), or GRIT's ``noun_chunks`` /
      ``ref_exps`` (``[start, end, x0, y0, x1, y1, score]``, box normalised to [0,1], phrase
      ``caption[start:end]``);
    * ``txt``: the caption, when there is no json caption.

A record that cannot be used raises :class:`BadRecord` with a short machine-readable reason
(``no_image``, ``bad_image``, ``bad_json``, ``no_caption``, ``bad_captions``, ``bad_boxes``) and
a detail naming the field; loaders count those reasons and name the shard.

Malformed fields are never repaired silently; the whole record is skipped:
    * ``captions`` must be a list of strings (empty strings are ignored); a plain string is
      taken as *one* caption (never split into characters); anything else, or a list holding a
      non-string, is ``bad_captions``; so is a ``caption`` that is neither a string nor null;
    * every ``boxes`` item must be ``{"box": 4 finite numbers, "phrase": str, ...}`` and every
      GRIT ``noun_chunks``/``ref_exps`` item at least 6 finite numbers whose ``start <= end`` are
      integers; a ``null`` list is empty; anything else is ``bad_boxes``.
"""
from __future__ import annotations

import io
import json
import math
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


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_box(box, where: str) -> list[float]:
    if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(_number(v) for v in box)):
        raise BadRecord("bad_boxes", f"{where}: expected 4 finite numbers [x0, y0, x1, y1], got {box!r}")
    return [float(v) for v in box]


def _items(meta: dict, key: str) -> list:
    """``meta[key]`` as a list (absent or null: empty); any other type is ``bad_boxes``."""
    items = meta.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise BadRecord("bad_boxes", f"{key}: expected a list, got {type(items).__name__} {items!r}"[:200])
    return items


def json_boxes(meta: dict) -> list[dict]:
    """The ``boxes`` field, checked item by item (see the module docstring)."""
    out = []
    for i, b in enumerate(_items(meta, "boxes")):
        if not (isinstance(b, dict) and isinstance(b.get("phrase"), str)):
            raise BadRecord("bad_boxes", f"boxes[{i}]: expected {{'box': [...], 'phrase': str}}, got {b!r}"[:200])
        out.append({**b, "box": _check_box(b.get("box"), f"boxes[{i}].box")})
    return out


def grit_boxes(meta: dict, width: int, height: int) -> list[dict]:
    """GRIT ``noun_chunks`` then ``ref_exps`` as pixel boxes with their caption phrases."""
    caption = meta.get("caption") or ""
    out = []
    for kind in ("noun_chunks", "ref_exps"):
        for i, item in enumerate(_items(meta, kind)):
            if not (isinstance(item, (list, tuple)) and len(item) >= 6 and all(_number(v) for v in item[:6])
                    and float(item[0]).is_integer() and float(item[1]).is_integer() and 0 <= item[0] <= item[1]):
                raise BadRecord("bad_boxes", f"{kind}[{i}]: expected [start, end, x0, y0, x1, y1, ...] "
                                             f"(finite numbers, integer 0 <= start <= end), got {item!r}"[:200])
            start, end, x0, y0, x1, y1 = item[:6]
            out.append({"box": [x0 * width, y0 * height, x1 * width, y1 * height],
                        "phrase": caption[int(start):int(end)], "kind": "object"})
    return out


def _captions(meta: dict) -> list[str]:
    """Caption levels from ``captions`` (a string is one caption); malformed: ``bad_captions``."""
    raw = meta.get("captions")
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise BadRecord("bad_captions", f"captions: expected a list of strings, got {raw!r}"[:200])
    return [c for c in raw if c.strip()]


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
    captions = _captions(meta)
    caption = meta.get("caption")
    if caption is not None and not isinstance(caption, str):
        raise BadRecord("bad_captions", f"caption: expected a string, got {caption!r}"[:200])
    if not caption or not caption.strip():
        caption = fields["txt"].decode("utf-8", "replace").strip() if "txt" in fields else None
    if not caption and captions:
        caption = captions[-1]
    if not caption:
        raise BadRecord("no_caption")
    if not captions:
        captions = [caption]
    if "boxes" in meta:
        boxes = json_boxes(meta)
    else:
        boxes = grit_boxes(meta, *image.size)
    return Sample(key=key, image=image, captions=captions, caption=caption, boxes=boxes, meta=meta)
