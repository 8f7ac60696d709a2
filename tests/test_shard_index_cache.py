"""The saved shard index: read back equal to a fresh scan, problems included; ignored when a
shard changed or the file is unreadable; written by the data step and removed with its shards."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hyplib.data.prepare import prepare_data
from hyplib.data.real import clear_prepared
from hyplib.data.shards import INDEX_CACHE, ShardIndex, index_cache_path, write_shard


def _shards(tmp_path, n_shards=3, per_shard=5):
    paths = []
    for s in range(n_shards):
        samples = [{"__key__": f"{s:02d}{i:03d}", "png": b"\x89PNG fake", "json": json.dumps({"i": i}).encode(),
                    **({"txt": b"a caption"} if i % 2 else {})} for i in range(per_shard)]
        path = tmp_path / "train" / f"train-{s:06d}.tar"
        write_shard(path, samples)
        paths.append(path)
    return paths


def _same(a: ShardIndex, b: ShardIndex) -> None:
    assert [str(p) for p in a.shards] == [str(p) for p in b.shards]
    for name in ("shard_of", "key_end", "field_start", "field_ext", "field_offset", "field_size"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.keys == b.keys and a.ext_names == b.ext_names
    assert a.problems == b.problems and a.problems_by_shard == b.problems_by_shard
    assert [a.record(i) for i in range(len(a))] == [b.record(i) for i in range(len(b))]


def test_cached_index_equals_a_fresh_scan(tmp_path):
    paths = _shards(tmp_path)
    written = ShardIndex.write_cache(paths)
    assert index_cache_path(paths) == tmp_path / "train" / INDEX_CACHE and index_cache_path(paths).exists()
    loaded = ShardIndex.cached(paths)
    assert len(loaded) == 15 and loaded.record(7) == written.record(7)
    _same(loaded, ShardIndex.build(paths))


def test_cache_written_with_absolute_paths_serves_relative_ones(tmp_path, monkeypatch):
    paths = _shards(tmp_path)
    ShardIndex.write_cache(paths)
    monkeypatch.chdir(tmp_path)
    relative = [p.relative_to(tmp_path) for p in paths]
    monkeypatch.setattr(ShardIndex, "build", classmethod(lambda cls, s: pytest.fail("scanned again")))
    loaded = ShardIndex.cached(relative)
    assert [str(p) for p in loaded.shards] == [str(p) for p in relative] and len(loaded) == 15


def test_damaged_shard_problems_survive_the_cache(tmp_path):
    paths = _shards(tmp_path)
    data = bytearray(paths[1].read_bytes())
    paths[1].write_bytes(bytes(data[: len(data) // 2]))  # truncated mid-payload
    fresh = ShardIndex.build(paths)
    assert sum(fresh.problems.values()) > 0
    ShardIndex.write_cache(paths)
    _same(ShardIndex.cached(paths), fresh)


def test_changed_added_or_removed_shard_is_scanned_again(tmp_path, monkeypatch):
    paths = _shards(tmp_path)
    ShardIndex.write_cache(paths)
    scans = []
    real_build = ShardIndex.build.__func__
    monkeypatch.setattr(ShardIndex, "build", classmethod(lambda cls, s: scans.append(len(s)) or real_build(cls, s)))
    ShardIndex.cached(paths)
    assert scans == []  # the saved index was used
    st = paths[0].stat()
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    ShardIndex.cached(paths)
    ShardIndex.cached(paths[:2])
    assert scans == [3, 2]


def test_unreadable_cache_falls_back_to_a_scan(tmp_path):
    paths = _shards(tmp_path)
    index_cache_path(paths).write_bytes(b"not an npz")
    _same(ShardIndex.cached(paths), ShardIndex.build(paths))


def test_data_step_writes_the_index_and_clearing_removes_it(tmp_path):
    out = tmp_path / "data"
    prepare_data("generated", out, size="quick", n_train=8, image_size=16, workers=1, progress=False)
    shards = sorted((out / "train").glob("*.tar"))
    assert (out / "train" / INDEX_CACHE).exists()
    _same(ShardIndex.cached(shards), ShardIndex.build(shards))
    before = (out / "train" / INDEX_CACHE).stat().st_mtime_ns
    prepare_data("generated", out, size="quick", n_train=8, image_size=16, workers=1, progress=False)
    assert (out / "train" / INDEX_CACHE).stat().st_mtime_ns >= before
    _same(ShardIndex.cached(sorted((out / "train").glob("*.tar"))), ShardIndex.build(shards))
    clear_prepared(out)
    assert not (out / "train" / INDEX_CACHE).exists() and not list((out / "train").glob("*.tar"))
