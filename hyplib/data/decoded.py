"""Decoded records of a small shard set, saved beside its shards so training runs skip decoding.

Every batch of the training loader reads its records from the tars: a seek and a read, a PNG
decode, a json parse and the box checks of :mod:`hyplib.data.records`. On the generated data
that is 30-50 ms a batch of 64, a tenth of a training step on one CPU core, and the workflow's
24 runs decode the same 20,000 records again and again. The data step therefore decodes them
once (:func:`write_decoded`) and the loader reads them back (:func:`load_decoded`):

* ``.decoded-images.npy``: uint8 ``(N, H, W, 3)``, record ``i``'s RGB pixels (zeros for a
  record that does not decode);
* ``.decoded-records.npz``: a header (the shards' fingerprint,
  :func:`hyplib.data.shards.index_fingerprint`, and the pixels' shape), and per record two JSON
  texts in one byte array: ``{"key", "captions", "caption", "boxes"}`` (or ``{"key", "bad":
  [reason, message]}``), then the record's own json field as it is in the tar (the Sample's
  ``meta``). Each is parsed when its record is read, so opening the files costs a run a
  fraction of a second however many records there are.

A record read back is the :class:`~hyplib.data.records.Sample` that ``decode_record`` returns
for it, pixel for pixel and field for field, and a record that does not decode raises the same
:class:`~hyplib.data.records.BadRecord`; so a run trains bit for bit as it does from the tars
(``tests/test_decoded.py``). The files are written only when every decodable record has one image
size and the pixels fit :data:`MAX_BYTES` (the generator's default data: 20,000 x 32 x 32 x 3, 61
MB); real data keeps decoding per batch. A shard rewritten, added or removed after the files were
written changes the fingerprint, and the loader decodes the tars again.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .records import BadRecord, Sample, decode_record
from .shards import RecordReader, ShardIndex, index_fingerprint

__all__ = ["IMAGES_FILE", "RECORDS_FILE", "MAX_BYTES", "DecodedRecords", "write_decoded", "load_decoded"]

log = logging.getLogger(__name__)

IMAGES_FILE = ".decoded-images.npy"
RECORDS_FILE = ".decoded-records.npz"
#: Largest pixel array written: a copy this size beside the shards is cheap; real data's is not.
MAX_BYTES = 1 << 30


class DecodedRecords:
    """Record ``i`` of a shard set as :meth:`sample` (a Sample) or a raised BadRecord.

    Args:
        images: uint8 ``(N, H, W, 3)``, usually memory-mapped.
        text: uint8, the records' JSON texts one after another.
        offsets: int64 ``(N, 3)``: record ``i``'s fields JSON is ``text[o0:o1]``, its meta JSON
            ``text[o1:o2]`` (empty: ``{}``).
    """

    def __init__(self, images: np.ndarray, text: np.ndarray, offsets: np.ndarray):
        if len(images) != len(offsets):
            raise ValueError(f"{len(images)} images for {len(offsets)} records")
        self.images, self.text, self.offsets = images, text, offsets

    def __len__(self) -> int:
        return len(self.offsets)

    def _json(self, lo, hi):
        return json.loads(self.text[int(lo):int(hi)].tobytes()) if hi > lo else {}

    def sample(self, i: int, *, meta: bool = True) -> Sample:
        """The decoded record ``i``; raises :class:`BadRecord` as ``decode_record`` did for it.

        ``meta=False`` leaves ``Sample.meta`` empty instead of parsing the record's json (the
        training loader reads only the image, captions and boxes).
        """
        lo, mid, hi = self.offsets[int(i)]
        r = self._json(lo, mid)
        if "bad" in r:
            reason, message = r["bad"]
            raise BadRecord(reason, message[len(reason) + 2:] if message.startswith(f"{reason}: ") else "")
        image = Image.fromarray(np.asarray(self.images[int(i)]), mode="RGB")
        return Sample(key=r["key"], image=image, captions=r["captions"], caption=r["caption"], boxes=r["boxes"],
                      meta=self._json(mid, hi) if meta else {})


def _paths(index: ShardIndex) -> tuple[Path, Path]:
    folder = Path(index.shards[0]).parent
    return folder / IMAGES_FILE, folder / RECORDS_FILE


def write_decoded(index: ShardIndex, *, max_bytes: int = MAX_BYTES) -> bool:
    """Decode every record of ``index`` and save them beside its shards; returns whether it did.

    Nothing is written (and False returned) when the index is empty, when the decodable records'
    images differ in size, when their pixels would exceed ``max_bytes``, or when the folder is
    read-only; the loader then decodes the tars as before.
    """
    if len(index) == 0:
        return False
    reader, images, shape = RecordReader(index), [], None
    text, offsets, end = [], np.zeros((len(index), 3), dtype=np.int64), 0
    for i in range(len(index)):
        key, raw = reader.read(i)
        try:
            s = decode_record(key, raw)
        except BadRecord as err:
            fields, meta, pixels = {"key": key, "bad": [err.reason, str(err)]}, b"", None
        else:
            pixels = np.asarray(s.image, dtype=np.uint8)
            if shape is None:
                shape = pixels.shape
                if len(index) * pixels.nbytes > max_bytes:
                    log.info("decoded records not saved: %d x %s pixels exceed %d bytes", len(index), shape,
                             max_bytes)
                    return False
            elif pixels.shape != shape:
                log.info("decoded records not saved: record %s is %s, the first %s", key, pixels.shape, shape)
                return False
            fields = {"key": key, "captions": s.captions, "caption": s.caption, "boxes": s.boxes}
            meta = raw.get("json", b"")
        images.append(pixels)
        encoded = json.dumps(fields, separators=(",", ":")).encode()
        text += [encoded, meta]
        offsets[i] = end, end + len(encoded), end + len(encoded) + len(meta)
        end = int(offsets[i, 2])
    if shape is None:  # no record decodes: nothing worth keeping
        return False
    array = np.zeros((len(index), *shape), dtype=np.uint8)
    for i, pixels in enumerate(images):
        if pixels is not None:
            array[i] = pixels
    image_path, records_path = _paths(index)
    header = {"fingerprint": index_fingerprint(index.shards), "shape": list(array.shape)}
    try:
        tmp = image_path.with_name(f"{image_path.name}.{os.getpid()}.tmp.npy")
        np.save(tmp, array)
        os.replace(tmp, image_path)
        tmp = records_path.with_name(f"{records_path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, header=np.array(json.dumps(header)), offsets=offsets,
                 text=np.frombuffer(b"".join(text), dtype=np.uint8))
        os.replace(tmp, records_path)  # last: its fingerprint vouches for the pixels beside it
    except OSError as err:  # a read-only folder: runs decode the tars, as before
        log.warning("could not save decoded records next to %s: %s", index.shards[0], err)
        return False
    return True


def load_decoded(index: ShardIndex) -> DecodedRecords | None:
    """The decoded records saved beside ``index``'s shards if they were made from exactly these
    shards as they are now, else None."""
    image_path, records_path = _paths(index)
    try:
        with np.load(records_path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if header["fingerprint"] != index_fingerprint(index.shards):
                return None
            offsets, text = z["offsets"], z["text"]
        images = np.load(image_path, mmap_mode="r")
    except (OSError, ValueError, KeyError, TypeError, EOFError):  # absent, unreadable or another format
        return None
    if list(images.shape) != header["shape"] or images.dtype != np.uint8 or len(offsets) != len(index):
        return None
    return DecodedRecords(images, text, offsets)
