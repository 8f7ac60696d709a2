"""Malformed records and damaged shards: skipped, counted by reason, shard named; never a crash,
never silent (issue 19). Covers the record decoder, the training loader, the shard readers and
real-data preparation."""
import io
import json
import logging
import tarfile
from collections import Counter

import pytest
from PIL import Image
from test_data_loader import tok

from hyplib.data import make_loader, read_dataset
from hyplib.data.real import prepare_real, scan_shard
from hyplib.data.records import BadRecord, decode_record
from hyplib.data.shards import ShardIndex, write_shard


def _png(colour=(200, 0, 0), size=(40, 30)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()
GOOD_BOX = {"box": [0, 0, 20, 20], "phrase": "a square"}
GRIT_ITEM = [0, 5, 0.1, 0.2, 0.5, 1.0, 0.9]

#: (label, json, reason) for every malformed field of the audit, and a few neighbours.
MALFORMED = [
    ("boxes is a number", {"caption": "a red square", "boxes": 5}, "bad_boxes"),
    ("boxes is a string", {"caption": "a red square", "boxes": "0 0 20 20"}, "bad_boxes"),
    ("null box coordinate", {"caption": "x", "boxes": [{"box": [0, None, 20, 20], "phrase": "p"}]}, "bad_boxes"),
    ("three coordinates", {"caption": "x", "boxes": [{"box": [0, 0, 20], "phrase": "p"}]}, "bad_boxes"),
    ("box without phrase", {"caption": "x", "boxes": [{"box": [0, 0, 20, 20]}]}, "bad_boxes"),
    ("box item not a dict", {"caption": "x", "boxes": [[0, 0, 20, 20]]}, "bad_boxes"),
    ("phrase not a string", {"caption": "x", "boxes": [{"box": [0, 0, 20, 20], "phrase": 3}]}, "bad_boxes"),
    ("short noun_chunks item", {"caption": "a dog", "noun_chunks": [[0, 5, 0.1, 0.2]]}, "bad_boxes"),
    ("noun_chunks is a string", {"caption": "a dog", "noun_chunks": "a dog"}, "bad_boxes"),
    ("null GRIT coordinate", {"caption": "a dog", "noun_chunks": [[0, 5, 0.1, None, 0.5, 1.0, 0.9]]},
     "bad_boxes"),
    ("fractional span", {"caption": "a dog", "ref_exps": [[0.5, 5, 0.1, 0.2, 0.5, 1.0, 0.9]]}, "bad_boxes"),
    ("captions is a number", {"captions": 5}, "bad_captions"),
    ("captions holds a number", {"captions": ["a shape", 3]}, "bad_captions"),
    ("caption is a list", {"caption": ["a", "b"]}, "bad_captions"),
]


@pytest.mark.parametrize("label,meta,reason", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_field_is_a_bad_record(label, meta, reason):
    with pytest.raises(BadRecord) as err:
        decode_record("k", {"png": PNG, "json": json.dumps(meta).encode()})
    assert err.value.reason == reason
    if reason == "bad_captions":
        field = "caption"
    else:
        field = next(k for k in ("boxes", "noun_chunks", "ref_exps") if k in meta)
    assert field in str(err.value)  # the message names the field


def test_string_captions_is_one_caption_not_characters():
    s = decode_record("k", {"png": PNG, "json": json.dumps({"captions": "a red square"}).encode()})
    assert s.captions == ["a red square"] and s.caption == "a red square"


def test_well_formed_fields_still_decode():
    s = decode_record("k", {"png": PNG, "json": json.dumps({"caption": "a dog on a sofa", "noun_chunks": None,
                                                              "ref_exps": [GRIT_ITEM]}).encode()})
    assert [b["phrase"] for b in s.boxes] == ["a dog"]
    assert s.boxes[0]["box"] == pytest.approx([4.0, 6.0, 20.0, 30.0])  # 40 x 30 image
    s = decode_record("k", {"png": PNG, "json": json.dumps({"captions": ["shape", "", "red square"],
                                                              "boxes": [GOOD_BOX]}).encode()})
    assert s.captions == ["shape", "red square"] and s.caption == "red square"
    assert s.boxes[0]["box"] == [0.0, 0.0, 20.0, 20.0] and s.boxes[0]["phrase"] == "a square"


def _malformed_shard(path, n_good=16):
    good = {"caption": "a red square", "boxes": [GOOD_BOX]}
    samples = [{"__key__": f"g{i:03d}", "png": _png((i * 10, 0, 0)), "json": json.dumps(good).encode()}
               for i in range(n_good)]
    samples += [{"__key__": f"m{i:03d}", "png": PNG, "json": json.dumps(meta).encode()}
                for i, (_, meta, _) in enumerate(MALFORMED)]
    write_shard(path, samples)
    return Counter(reason for _, _, reason in MALFORMED)


def test_loader_skips_and_counts_malformed_records_by_shard(tmp_path, caplog):
    expected = _malformed_shard(tmp_path / "s.tar")
    with caplog.at_level(logging.WARNING):
        ld = make_loader(tmp_path, batch_size=10, image_size=32, tokenize=tok, with_boxes=True, seed=0,
                         min_box_size=8, epochs=1)
        batches = list(ld)  # one epoch reads every record at least once
    assert len(batches) == 3 and all(b["image"].shape[0] == 10 for b in batches)
    assert ld.stats["skipped_by_reason"] == dict(expected)
    assert ld.stats["records_skipped"] == len(MALFORMED)
    assert ld.stats["skipped_by_shard"] == {str(tmp_path / "s.tar"): dict(expected)}
    assert "m000" in caplog.text and "s.tar" in caplog.text


def test_readers_and_preparation_count_malformed_records(tmp_path):
    expected = _malformed_shard(tmp_path / "shards" / "s.tar", n_good=3)
    skipped = Counter()
    got = list(read_dataset("grit", tmp_path / "shards", skipped=skipped))
    assert len(got) == 3 and skipped == expected
    with pytest.raises(BadRecord, match="record m000 in .*s.tar"):
        list(read_dataset("grit", tmp_path / "shards", skip_bad=False))
    scan = scan_shard(tmp_path / "shards" / "s.tar", min_box_size=8)
    assert scan["records"] == 3 + len(MALFORMED) and scan["images"] == 3 and scan["with_boxes"] == 3
    assert scan["skipped"] == dict(expected)


def test_real_preparation_counts_malformed_records_per_shard(tmp_path):
    expected = _malformed_shard(tmp_path / "data" / "shards" / "s.tar", n_good=3)
    m = prepare_real(tmp_path / "out", root=tmp_path / "data",
                     paths={"train_shards": "shards", "grit_shards": "shards"}, image_size=16, progress=False)
    for folder in ("train", "grit"):
        assert m[folder]["images"] == 3 and m["skipped"][folder] == dict(expected)
        assert m[folder]["skipped_by_shard"] == {str(tmp_path / "data" / "shards" / "s.tar"): dict(expected)}


def _garble_header(path, member_name, block=-1):
    """Overwrite the first 100 bytes (the name) of a header block of ``member_name``: -1 its own
    header (just before its data), 0 the first block of its headers (an extended header when
    the writer added one); the checksum is then wrong."""
    with tarfile.open(path) as tf:
        m = tf.getmember(member_name)
        offset = m.offset_data - tarfile.BLOCKSIZE if block == -1 else m.offset
    data = bytearray(path.read_bytes())
    data[offset:offset + 100] = b"\xff" * 100
    path.write_bytes(bytes(data))


def _hundred(path):
    write_shard(path, [{"__key__": f"k{i:03d}", "png": _png((i, 0, 0)), "json": b'{"caption": "x"}'}
                       for i in range(100)])


def test_garbled_header_mid_shard_is_counted_and_the_rest_recovered(tmp_path, caplog):
    _hundred(tmp_path / "s.tar")
    _garble_header(tmp_path / "s.tar", "k050.png")
    with caplog.at_level(logging.WARNING):
        index = ShardIndex.build([tmp_path / "s.tar"])
    # tarfile alone stops at the garbled header (50 records); the index resumes after it.
    assert len(index) == 100
    assert index.problems == {"corrupt_tar": 1}
    assert index.problems_by_shard == {str(tmp_path / "s.tar"): {"corrupt_tar": 1}}
    assert "s.tar is damaged" in caplog.text
    ld = make_loader(tmp_path, batch_size=10, image_size=32, tokenize=tok, seed=0, epochs=1)
    list(ld)
    # k050 lost its image member: skipped when read, as no_image; nothing vanishes uncounted.
    assert ld.stats["skipped_by_reason"] == {"corrupt_tar": 1, "no_image": 1}
    assert ld.stats["skipped_by_shard"] == {str(tmp_path / "s.tar"): {"corrupt_tar": 1, "no_image": 1}}
    assert scan_shard(tmp_path / "s.tar") == {"records": 100, "images": 99, "with_boxes": 0,
                                              "skipped": {"corrupt_tar": 1, "no_image": 1}}


def test_garbled_extended_header_loses_nothing_but_is_counted(tmp_path):
    _hundred(tmp_path / "s.tar")
    with tarfile.open(tmp_path / "s.tar") as tf:
        m = tf.getmember("k050.png")
    if m.offset == m.offset_data - tarfile.BLOCKSIZE:
        pytest.skip("this tar writer adds no extended header")
    _garble_header(tmp_path / "s.tar", "k050.png", block=0)
    index = ShardIndex.build([tmp_path / "s.tar"])
    assert len(index) == 100 and index.problems == {"corrupt_tar": 1}
    assert scan_shard(tmp_path / "s.tar")["images"] == 100


def test_garbled_last_header_and_trailing_garbage_are_counted(tmp_path):
    _hundred(tmp_path / "a.tar")
    _garble_header(tmp_path / "a.tar", "k099.json")
    index = ShardIndex.build([tmp_path / "a.tar"])
    assert len(index) == 100 and index.problems == {"corrupt_tar": 1}
    _hundred(tmp_path / "b.tar")
    with open(tmp_path / "b.tar", "ab") as fh:
        fh.write(b"garbage after the end of the archive")
    index = ShardIndex.build([tmp_path / "b.tar"])
    assert len(index) == 100 and index.problems == {"corrupt_tar": 1}
    _hundred(tmp_path / "c.tar")
    assert ShardIndex.build([tmp_path / "c.tar"]).problems == {}  # an intact shard has no problem
