"""The decoded copy of small shard sets (hyplib.data.decoded): every record reads back as the
Sample the tar gives, bad records raise the same BadRecord, the loader's batches and counts are
the same with and without it, and it is ignored when stale and not written when it cannot hold
the records."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from test_bad_records import MALFORMED, _malformed_shard, _png
from test_data_loader import small_shards, tok

from hyplib.data import make_loader
from hyplib.data.decoded import IMAGES_FILE, RECORDS_FILE, load_decoded, write_decoded
from hyplib.data.prepare import prepare_data
from hyplib.data.real import clear_prepared
from hyplib.data.records import BadRecord, decode_record
from hyplib.data.shards import RecordReader, ShardIndex, expand_shards, write_shard


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return small_shards(tmp_path_factory.mktemp("decoded"))  # its own folder: the tests write beside it


def _index(folder):
    return ShardIndex.build(expand_shards(str(folder)))


def _same_sample(a, b):
    assert a.key == b.key and a.captions == b.captions and a.caption == b.caption
    assert a.boxes == b.boxes and a.meta == b.meta
    assert a.image.mode == b.image.mode == "RGB" and a.image.size == b.image.size
    np.testing.assert_array_equal(np.asarray(a.image), np.asarray(b.image))


def test_every_record_reads_back_as_the_tar_decodes_it(generated):
    index = _index(generated)
    assert write_decoded(index)
    assert (generated / IMAGES_FILE).exists() and (generated / RECORDS_FILE).exists()
    decoded, reader = load_decoded(index), RecordReader(index)
    assert len(decoded) == len(index) == 96
    for i in range(len(index)):
        _same_sample(decoded.sample(i), decode_record(*reader.read(i)))
    assert any(decoded.sample(i).boxes for i in range(96))  # the comparison covered boxes
    s = decoded.sample(5, meta=False)
    assert s.meta == {} and s.captions == decoded.sample(5).captions


def test_bad_records_raise_the_same_reason_and_message(tmp_path):
    _malformed_shard(tmp_path / "s.tar")
    index = _index(tmp_path)
    assert write_decoded(index)
    decoded, reader = load_decoded(index), RecordReader(index)
    raised = 0
    for i in range(len(index)):
        try:
            want = decode_record(*reader.read(i))
        except BadRecord as err:
            with pytest.raises(BadRecord) as got:
                decoded.sample(i)
            assert (got.value.reason, str(got.value)) == (err.reason, str(err))
            raised += 1
        else:
            _same_sample(decoded.sample(i), want)
    assert raised == len(MALFORMED)


def _epoch(folder, **kw):
    ld = make_loader(folder, batch_size=10, image_size=32, tokenize=tok, seed=0, epochs=1, **kw)
    return ld, list(ld)


def test_loader_batches_and_counts_are_the_same_with_and_without_it(tmp_path, caplog):
    expected = _malformed_shard(tmp_path / "s.tar")
    plain, plain_batches = _epoch(tmp_path, with_boxes=True, min_box_size=8)
    assert plain.decoded is None
    write_decoded(_index(tmp_path))
    with caplog.at_level(logging.WARNING):
        fast, fast_batches = _epoch(tmp_path, with_boxes=True, min_box_size=8)
    assert fast.decoded is not None
    assert len(fast_batches) == len(plain_batches) == 3
    for a, b in zip(plain_batches, fast_batches):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert fast.stats == plain.stats and fast.stats["skipped_by_reason"] == dict(expected)
    assert "m000" in caplog.text and "s.tar" in caplog.text  # the skipped record is still named


def test_generated_batches_are_the_same_with_and_without_it(generated):
    def batches():
        ld = make_loader(generated, batch_size=8, image_size=32, tokenize=tok, caption_weights=[1, 1, 1, 1],
                         with_boxes=True, seed=3)
        it = iter(ld)
        return ld, [next(it) for _ in range(15)]  # more than one epoch of 96 records

    write_decoded(_index(generated))
    fast, fast_batches = batches()
    assert fast.decoded is not None
    for name in (IMAGES_FILE, RECORDS_FILE):
        os.rename(generated / name, generated / f"{name}.off")
    try:
        plain, plain_batches = batches()
    finally:
        for name in (IMAGES_FILE, RECORDS_FILE):
            os.rename(generated / f"{name}.off", generated / name)
    assert plain.decoded is None
    assert any(b["has_box"].any() for b in plain_batches)
    for a, b in zip(plain_batches, fast_batches):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_rewritten_shard_makes_it_stale(tmp_path):
    write_shard(tmp_path / "s.tar", [{"__key__": f"k{i}", "png": _png((i, 0, 0)), "txt": b"a red square"}
                                     for i in range(4)])
    assert write_decoded(_index(tmp_path))
    assert load_decoded(_index(tmp_path)) is not None
    write_shard(tmp_path / "s.tar", [{"__key__": f"k{i}", "png": _png((0, i, 0)), "txt": b"a green square"}
                                     for i in range(4)])
    os.utime(tmp_path / "s.tar", ns=(1, 1))  # a different modification time, whatever the clock's resolution
    index = _index(tmp_path)
    assert load_decoded(index) is None
    ld = make_loader(tmp_path, batch_size=4, image_size=32, tokenize=tok, seed=0)
    assert ld.decoded is None and ld.make_batch(0)[0]["image"].shape == (4, 3, 32, 32)


def test_unreadable_files_are_ignored(tmp_path):
    write_shard(tmp_path / "s.tar", [{"__key__": f"k{i}", "png": _png(), "txt": b"x"} for i in range(3)])
    index = _index(tmp_path)
    assert write_decoded(index)
    (tmp_path / RECORDS_FILE).write_bytes(b"not an npz")
    assert load_decoded(index) is None
    assert write_decoded(index)
    np.save(tmp_path / IMAGES_FILE, np.zeros((2, 30, 40, 3), np.uint8))  # two records' pixels for three
    assert load_decoded(index) is None


def test_not_written_for_mixed_sizes_or_too_many_pixels(tmp_path, caplog):
    write_shard(tmp_path / "a" / "s.tar", [{"__key__": "k0", "png": _png(size=(40, 30)), "txt": b"x"},
                                           {"__key__": "k1", "png": _png(size=(30, 40)), "txt": b"y"}])
    with caplog.at_level(logging.INFO):
        assert not write_decoded(_index(tmp_path / "a"))
    assert "k1" in caplog.text and not (tmp_path / "a" / RECORDS_FILE).exists()
    write_shard(tmp_path / "b" / "s.tar", [{"__key__": f"k{i}", "png": _png(), "txt": b"x"} for i in range(3)])
    assert not write_decoded(_index(tmp_path / "b"), max_bytes=3 * 40 * 30 * 3 - 1)
    assert write_decoded(_index(tmp_path / "b"), max_bytes=3 * 40 * 30 * 3)


def test_the_data_step_writes_it_for_generated_data_and_clearing_removes_it(tmp_path):
    prepare_data("generated", tmp_path, size="quick", n_train=64, progress=False, generator={"shard_size": 32})
    train = tmp_path / "train"
    decoded = load_decoded(ShardIndex.cached(expand_shards(str(train))))
    assert decoded is not None and len(decoded) == 64
    clear_prepared(tmp_path)
    assert not (train / IMAGES_FILE).exists() and not (train / RECORDS_FILE).exists()
