"""Webdataset shards: expand shard specs, write shards, index them and read records at random.

Conventions:
    * A shard is a plain (uncompressed) tar; a record is the group of members sharing a key,
      where the key is the member path up to the first ``.`` of its basename (webdataset's rule:
      ``abc/00012.png`` and ``abc/00012.json`` form record ``abc/00012`` with fields
      ``png`` and ``json``).
    * Shards are written with :class:`webdataset.TarWriter` and ``mtime=0`` so the same records
      give byte-identical shards.
    * :class:`ShardIndex` scans tar headers once (no payload decoding) so a loader can address
      record ``i`` directly; that makes batch ``b`` a pure function of ``(seed, b)``.
"""
from __future__ import annotations

import glob
import logging
import os
import re
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import webdataset as wds

log = logging.getLogger(__name__)

_BRACE = re.compile(r"\{(\d+)\.\.(\d+)\}")


def _expand_braces(spec: str) -> list[str]:
    """Expand webdataset's ``{000..009}`` ranges (zero padding kept)."""
    m = _BRACE.search(spec)
    if not m:
        return [spec]
    lo, hi = m.group(1), m.group(2)
    width = len(lo)
    out = []
    for i in range(int(lo), int(hi) + 1):
        out.extend(_expand_braces(spec[: m.start()] + str(i).zfill(width) + spec[m.end():]))
    return out


def expand_shards(spec) -> list[Path]:
    """Turn a shard spec into a sorted list of existing tar paths.

    ``spec`` may be a directory (all ``*.tar`` inside), a glob, a brace range
    (``train-{000..009}.tar``), a ``::``-separated list of those, or a list of them.
    A path that does not exist raises ``FileNotFoundError`` naming it.
    """
    items = list(spec) if isinstance(spec, (list, tuple)) else str(spec).split("::")
    out: list[Path] = []
    for item in items:
        item = str(item)
        for part in _expand_braces(item):
            p = Path(part)
            if p.is_dir():
                found = sorted(p.glob("*.tar"))
                if not found:
                    raise FileNotFoundError(f"no .tar shards in directory {p}")
                out.extend(found)
            elif any(ch in part for ch in "*?["):
                found = sorted(Path(x) for x in glob.glob(part))
                if not found:
                    raise FileNotFoundError(f"no shards match the pattern {part}")
                out.extend(found)
            elif p.is_file():
                out.append(p)
            else:
                raise FileNotFoundError(f"shard not found: {p}")
    if not out:
        raise FileNotFoundError(f"no shards in {spec!r}")
    return out


def split_key(member_name: str) -> tuple[str, str]:
    """``dir/abc.seg.png`` -> (``dir/abc``, ``seg.png``): webdataset's key/field split."""
    head, base = os.path.split(member_name)
    if "." not in base:
        return member_name, ""
    stem, ext = base.split(".", 1)
    return (f"{head}/{stem}" if head else stem), ext.lower()


@dataclass
class ShardIndex:
    """Where each record's fields live: ``records[i] = (shard_id, key, {field: (offset, size)})``."""

    shards: list[Path]
    records: list[tuple[int, str, dict[str, tuple[int, int]]]] = field(default_factory=list)
    problems: Counter = field(default_factory=Counter)
    problems_by_shard: dict[str, Counter] = field(default_factory=dict)

    @classmethod
    def build(cls, shards: list[Path]) -> "ShardIndex":
        idx = cls(shards=list(shards))
        for sid, path in enumerate(idx.shards):
            idx._scan(sid, path)
        return idx

    def _scan(self, sid: int, path: Path) -> None:
        """Index one shard. ``tarfile`` stops silently at a garbled header mid-shard, so the offset
        it reached is compared with the file: non-zero bytes beyond it mean damage, counted as
        ``corrupt_tar`` (shard named in :attr:`problems_by_shard` and the log); the scan then
        resumes at the next valid header, so only the members of the damaged region are lost and
        a record missing its image or caption is skipped (and counted) when decoded."""
        groups: dict[str, dict[str, tuple[int, int]]] = {}
        order: list[str] = []
        size = path.stat().st_size
        damaged, start = [], 0
        with open(path, "rb") as fh:
            while start is not None:
                end, err = self._scan_from(fh, start, groups, order)
                if err is None and not _nonzero_after(fh, end):
                    break
                damaged.append(f"offset {end}: {err or 'unreadable tar header'}")
                start = _next_header(fh, end + BLOCK)
        if damaged:
            self.problems["corrupt_tar"] += 1
            self.problems_by_shard.setdefault(str(path), Counter())["corrupt_tar"] += 1
            log.warning("shard %s is damaged (%s); indexed %d records around the damage, the members "
                        "in it are lost", path, "; ".join(damaged), len(order))
        for key in order:
            fields = groups[key]
            if any(off + n > size for off, n in fields.values()):  # truncated payload
                self.problems["truncated_record"] += 1
                self.problems_by_shard.setdefault(str(path), Counter())["truncated_record"] += 1
                log.warning("record %s in %s is truncated; skipped", key, path)
                continue
            self.records.append((sid, key, fields))

    @staticmethod
    def _scan_from(fh, start: int, groups: dict, order: list) -> tuple[int, Exception | None]:
        """Index the members from byte ``start``; returns (offset reached, error or None)."""
        fh.seek(start)
        tf = None
        try:
            tf = tarfile.open(fileobj=fh, mode="r:")  # member offsets are absolute (from fh.tell())
            for m in tf:
                if not m.isfile():
                    continue
                key, ext = split_key(m.name)
                if key not in groups:
                    groups[key] = {}
                    order.append(key)
                groups[key][ext] = (m.offset_data, m.size)
        except (tarfile.TarError, OSError, EOFError) as err:
            return (tf.offset if tf is not None else start), err
        return tf.offset, None

    def __len__(self) -> int:
        return len(self.records)


BLOCK = tarfile.BLOCKSIZE


def _nonzero_after(fh, offset: int) -> bool:
    """Whether any byte from ``offset`` on is non-zero (a tar ends in zero blocks only)."""
    fh.seek(offset)
    while chunk := fh.read(1 << 20):
        if chunk.strip(b"\0"):
            return True
    return False


def _next_header(fh, offset: int) -> int | None:
    """Offset of the first block at or after ``offset`` (block-aligned) that is a valid tar
    header (its checksum matches), or None."""
    offset = -(-offset // BLOCK) * BLOCK
    fh.seek(offset)
    while len(buf := fh.read(BLOCK)) == BLOCK:
        if buf.strip(b"\0"):
            try:
                tarfile.TarInfo.frombuf(buf, tarfile.ENCODING, "surrogateescape")
                return offset
            except tarfile.HeaderError:
                pass
        offset += BLOCK
    return None


class RecordReader:
    """Random access to indexed records; file handles opened lazily per process (fork-safe)."""

    def __init__(self, index: ShardIndex):
        self.index = index
        self._handles: dict[int, object] = {}
        self._pid = None

    def read(self, i: int) -> tuple[str, dict[str, bytes]]:
        """Raw bytes of record ``i``: (key, {field: bytes})."""
        if self._pid != os.getpid():
            self._handles, self._pid = {}, os.getpid()
        sid, key, fields = self.index.records[i]
        fh = self._handles.get(sid)
        if fh is None:
            fh = self._handles[sid] = open(self.index.shards[sid], "rb")
        out = {}
        for ext, (off, n) in fields.items():
            fh.seek(off)
            out[ext] = fh.read(n)
        return key, out

    def __getstate__(self):
        return {"index": self.index, "_handles": {}, "_pid": None}


def iter_records(shards) -> "Iterator[tuple[str, dict[str, bytes]]]":  # noqa: F821
    """Stream every record of the shards in order, as (key, {field: bytes})."""
    index = ShardIndex.build(expand_shards(shards))
    reader = RecordReader(index)
    for i in range(len(index)):
        yield reader.read(i)


def write_shard(path: str | Path, samples) -> int:
    """Write ``samples`` (dicts with ``__key__`` and bytes fields) to one tar; returns the count.

    Uses :class:`webdataset.TarWriter` with ``mtime=0`` and fixed owner so output bytes depend
    only on the samples.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        writer = wds.TarWriter(fh, encoder=False, mtime=0.0, user="hyplib", group="hyplib")
        for sample in samples:
            writer.write(sample)
            n += 1
        writer.close()
    os.replace(tmp, path)  # a reader never sees a half-written shard
    return n
