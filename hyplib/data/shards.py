"""Webdataset shards: expand shard specs, write shards, index them and read records at random.

Conventions:
    * A shard is a plain (uncompressed) tar; a record is the group of members sharing a key,
      where the key is the member path up to the first ``.`` of its basename (webdataset's rule:
      ``abc/00012.png`` and ``abc/00012.json`` form record ``abc/00012`` with fields
      ``png`` and ``json``).
    * Shards are written with :class:`webdataset.TarWriter` and ``mtime=0`` so the same records
      give byte-identical shards.
    * :class:`ShardIndex` scans tar headers once (no payload decoding) so a loader can address
      record ``i`` directly; that makes batch ``b`` a pure function of ``(seed, b)``. It keeps
      the index in a few flat numpy arrays (about 80 bytes a record, against about 700 for
      Python tuples and dicts), which forked data workers share instead of copying: reading
      numpy buffers touches no per-record reference counts, so no page is ever written.
    * The data step saves the index of its shards next to them (:data:`INDEX_CACHE`, with a
      fingerprint of every shard's resolved path, size and modification time);
      :meth:`ShardIndex.cached` reads it back instead of scanning the tars again, and scans them
      when the fingerprint no longer matches (a shard rewritten, added or removed).
"""
from __future__ import annotations

import array
import glob
import hashlib
import json
import logging
import os
import re
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
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


class _Records:
    """Read-only sequence view of an index's records as ``(shard_id, key, {field: (offset, size)})``,
    built on demand from the flat arrays."""

    def __init__(self, index: ShardIndex):
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int):
        return self._index.record(i)

    def __iter__(self):
        return (self._index.record(i) for i in range(len(self._index)))


@dataclass
class ShardIndex:
    """Where each record's fields live; ``records[i] = (shard_id, key, {field: (offset, size)})``.

    Stored flat: ``shard_of`` (N,) int32; keys as one utf-8 blob cut at ``key_end`` (N,) int64;
    field ``j`` of record ``i`` for ``j`` in ``field_start[i]:field_start[i+1]`` has extension
    ``ext_names[field_ext[j]]``, byte ``field_offset[j]`` and ``field_size[j]``.
    """

    shards: list[Path]
    problems: Counter = field(default_factory=Counter)
    problems_by_shard: dict[str, Counter] = field(default_factory=dict)
    ext_names: list[str] = field(default_factory=list)

    @classmethod
    def cached(cls, shards: list[Path]) -> ShardIndex:
        """The index saved next to ``shards`` (:func:`save_index`) when it still matches them,
        else a fresh scan (:meth:`build`); either way the same arrays and problem counts."""
        shards = [Path(p) for p in shards]
        return load_index(shards, index_cache_path(shards)) or cls.build(shards)

    @classmethod
    def write_cache(cls, shards: list[Path]) -> ShardIndex:
        """Scan ``shards`` and save the index next to them for :meth:`cached`."""
        idx = cls.build([Path(p) for p in shards])
        try:
            save_index(idx, index_cache_path(idx.shards))
        except OSError as err:  # a read-only folder: runs scan the shards themselves, as before
            log.warning("could not save the shard index next to %s: %s", idx.shards[0], err)
        return idx

    @classmethod
    def build(cls, shards: list[Path]) -> ShardIndex:
        idx = cls(shards=list(shards))
        idx._acc = {"shard": array.array("i"), "key_end": array.array("q"), "fstart": array.array("q", [0]),
                    "fext": array.array("h"), "foff": array.array("q"), "fsize": array.array("q")}
        idx._keys = bytearray()
        for sid, path in enumerate(idx.shards):
            idx._scan(sid, path)
        acc = idx.__dict__.pop("_acc")
        idx.shard_of = np.frombuffer(acc["shard"], dtype=np.int32).copy()
        idx.key_end = np.frombuffer(acc["key_end"], dtype=np.int64).copy()
        idx.field_start = np.frombuffer(acc["fstart"], dtype=np.int64).copy()
        idx.field_ext = np.frombuffer(acc["fext"], dtype=np.int16).copy()
        idx.field_offset = np.frombuffer(acc["foff"], dtype=np.int64).copy()
        idx.field_size = np.frombuffer(acc["fsize"], dtype=np.int64).copy()
        idx.keys = bytes(idx.__dict__.pop("_keys"))
        return idx

    def _append(self, sid: int, key: str, fields: dict[str, tuple[int, int]]) -> None:
        acc = self._acc
        acc["shard"].append(sid)
        self._keys += key.encode("utf-8")
        acc["key_end"].append(len(self._keys))
        for ext, (off, n) in fields.items():
            if ext not in self.ext_names:
                self.ext_names.append(ext)
            acc["fext"].append(self.ext_names.index(ext))
            acc["foff"].append(off)
            acc["fsize"].append(n)
        acc["fstart"].append(len(acc["fext"]))

    def record(self, i: int) -> tuple[int, str, dict[str, tuple[int, int]]]:
        """``(shard_id, key, {field: (offset, size)})`` of record ``i``."""
        i = int(i)
        start = int(self.key_end[i - 1]) if i > 0 else 0
        key = self.keys[start:int(self.key_end[i])].decode("utf-8")
        lo, hi = int(self.field_start[i]), int(self.field_start[i + 1])
        fields = {self.ext_names[e]: (int(o), int(n)) for e, o, n in
                  zip(self.field_ext[lo:hi], self.field_offset[lo:hi], self.field_size[lo:hi])}
        return int(self.shard_of[i]), key, fields

    @property
    def records(self) -> _Records:
        return _Records(self)

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
            self._append(sid, key, fields)

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
        return len(self.shard_of)


BLOCK = tarfile.BLOCKSIZE
#: File name of a saved index, in the folder of the first shard it covers.
INDEX_CACHE = ".shard-index.npz"
_ARRAYS = ("shard_of", "key_end", "field_start", "field_ext", "field_offset", "field_size")


def index_fingerprint(shards: list[Path]) -> str:
    """Hash of each shard's resolved path, size and modification time (links followed)."""
    h = hashlib.sha1()
    for p in shards:
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def index_cache_path(shards: list[Path]) -> Path:
    return Path(shards[0]).parent / INDEX_CACHE


def save_index(index: ShardIndex, path: str | Path) -> None:
    """Write ``index`` with the fingerprint of its shards; atomic (a reader never sees half a file)."""
    path = Path(path)
    meta = {"fingerprint": index_fingerprint(index.shards), "shards": [str(p) for p in index.shards],
            "ext_names": index.ext_names, "problems": dict(index.problems),
            "problems_by_shard": {k: dict(v) for k, v in index.problems_by_shard.items()}}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, keys=np.frombuffer(index.keys, dtype=np.uint8), meta=np.array(json.dumps(meta)),
                 **{name: getattr(index, name) for name in _ARRAYS})
    os.replace(tmp, path)


def load_index(shards: list[Path], path: str | Path) -> ShardIndex | None:
    """The index saved at ``path`` if it was made from exactly ``shards`` as they are now, else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta["fingerprint"] != index_fingerprint(shards):  # resolved paths: relative or not
                return None
            idx = ShardIndex(shards=list(shards), problems=Counter(meta["problems"]),
                             problems_by_shard={k: Counter(v) for k, v in meta["problems_by_shard"].items()},
                             ext_names=list(meta["ext_names"]))
            for name in _ARRAYS:
                setattr(idx, name, z[name])
            idx.keys = z["keys"].tobytes()
    except (OSError, ValueError, KeyError, EOFError):  # absent, unreadable or another format: scan
        return None
    if idx.problems:
        log.warning("shard index %s: %s (counted when the shards were indexed)", path, dict(idx.problems))
    return idx


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
        sid, key, fields = self.index.record(i)
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


def iter_records(shards) -> Iterator[tuple[str, dict[str, bytes]]]:  # noqa: F821
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
