"""Training loader: determinism, resume, DDP split, corrupt records, errors, box preprocessing."""
import io
import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from hyplib.data import generate_all, make_loader
from hyplib.data.genconfig import GenConfig
from hyplib.data.loader import block_ids
from hyplib.data.preprocess import crop_box, usable_boxes
from hyplib.data.shards import write_shard


def tok(texts):
    """A toy tokenizer: character codes, padded to 48."""
    out = torch.zeros(len(texts), 48, dtype=torch.long)
    for i, t in enumerate(texts):
        codes = [ord(c) for c in t[:48]]
        out[i, :len(codes)] = torch.tensor(codes)
    return out


def small_shards(out):
    """96 generated records in 3 shards of blocks of 16 (half of them look-alike), under ``out/train``."""
    generate_all(out, GenConfig.preset("quick", n_train=96, shard_size=32, group_size=16, look_alike_blocks=0.5),
                 progress=False, benchmarks=())
    return out / "train"


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return small_shards(tmp_path_factory.mktemp("loader"))


def _batches(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_batch_shapes_and_stats(shards):
    ld = make_loader(shards, batch_size=8, image_size=32, tokenize=tok, caption_weights=[1, 1, 1, 1],
                     with_boxes=True, seed=0)
    b = next(iter(ld))
    assert b["image"].shape == b["image_box"].shape == (8, 3, 32, 32) and b["image"].dtype == torch.float32
    assert b["text"].shape == b["text_box"].shape == (8, 48) and b["has_box"].dtype == torch.bool
    assert b["has_box"].any()
    assert ld.stats["records_read"] == 8 and ld.stats["records_skipped"] == 0
    assert ld.min_box_size == 4.0  # read from the generator's manifest
    assert abs(float(b["image"].mean())) < 2


def test_deterministic_and_resume(shards):
    kw = dict(batch_size=16, image_size=32, tokenize=tok, caption_weights=[1, 2, 3, 4], with_boxes=True, seed=3)
    full = _batches(make_loader(shards, **kw), 9)  # crosses the epoch boundary (6 batches per epoch)
    again = _batches(make_loader(shards, **kw), 9)
    assert all(_same(a, b) for a, b in zip(full, again))
    resumed = _batches(make_loader(shards, start_batch=4, **kw), 5)
    assert all(_same(a, b) for a, b in zip(full[4:], resumed))
    other = _batches(make_loader(shards, **{**kw, "seed": 4}), 6)  # one epoch: 6 blocks of 16
    assert not torch.equal(torch.cat([b["image"] for b in other]), torch.cat([b["image"] for b in full[:6]]))


def test_workers_match_main_process(shards):
    kw = dict(batch_size=16, image_size=32, tokenize=tok, with_boxes=False, seed=1, epochs=1)
    a = list(make_loader(shards, **kw))
    b = list(make_loader(shards, num_workers=2, **kw))
    assert len(a) == len(b) == 6 and all(_same(x, y) for x, y in zip(a, b))


def test_ranks_partition_records(shards):
    kw = dict(batch_size=8, image_size=32, tokenize=tok, seed=0, world_size=2, epochs=1)
    r0, r1 = make_loader(shards, rank=0, **kw), make_loader(shards, rank=1, **kw)
    assert len(r0) == len(r1) == 6
    ids0 = np.concatenate([r0._record_ids(b) for b in range(6)])
    ids1 = np.concatenate([r1._record_ids(b) for b in range(6)])
    assert not set(ids0) & set(ids1) and len(set(ids0) | set(ids1)) == 96


@pytest.mark.parametrize("world", [2, 4])
def test_every_process_count_sees_the_samples_of_one_process(shards, world):
    """Global batch b on W processes, concatenated in rank order, equals batch b of one process
    with W times the batch: same records, caption levels, box crops and phrases, across an
    epoch boundary and after a resume."""
    kw = dict(image_size=32, tokenize=tok, caption_weights=[1, 1, 1, 1], with_boxes=True, seed=3)
    one = _batches(make_loader(shards, batch_size=16, **kw), 8)  # 6 batches an epoch
    ranks = [_batches(make_loader(shards, batch_size=16 // world, rank=r, world_size=world, **kw), 8)
             for r in range(world)]
    for b in range(8):
        gathered = {k: torch.cat([ranks[r][b][k] for r in range(world)]) for k in one[b]}
        assert _same(one[b], gathered), f"batch {b} on {world} processes"
    assert one[0]["has_box"].all() and not torch.equal(one[0]["image_box"], one[0]["image"])  # real crops
    resumed = _batches(make_loader(shards, batch_size=16 // world, rank=world - 1, world_size=world,
                                   start_batch=5, **kw), 2)
    assert all(_same(a, b) for a, b in zip(ranks[world - 1][5:7], resumed))


def test_shard_index_is_flat_and_small(shards):
    """The index holds numpy arrays, not a Python object per record: under 120 bytes a record
    here (keys of ~10 characters, 2-3 fields), and its records read back as the tar holds them."""
    import tarfile

    from hyplib.data.shards import ShardIndex, expand_shards

    paths = expand_shards(shards)
    index = ShardIndex.build(paths)
    arrays = [index.shard_of, index.key_end, index.field_start, index.field_ext, index.field_offset,
              index.field_size]
    per_record = (sum(a.nbytes for a in arrays) + len(index.keys)) / len(index)
    assert len(index) == 96 and per_record < 120, per_record
    with tarfile.open(paths[1]) as tf:
        members = [m for m in tf if m.isfile()]
    sid, key, fields = index.records[32]  # the second shard's first record
    first = [m for m in members if m.name.split(".", 1)[0] == key]
    assert sid == 1 and first and {m.name.split(".", 1)[1]: (m.offset_data, m.size) for m in first} == fields
    assert [r[1] for r in index.records][:3] == [index.record(i)[1] for i in range(3)]


def test_block_ids_restart_at_each_shard():
    assert block_ids([0, 0, 0, 0, 0, 1, 1, 1], 2).tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    assert block_ids([0, 0, 1], 1).tolist() == [0, 1, 2]


def test_blocks_stay_whole_and_group_size_one_is_a_plain_shuffle(shards):
    kw = dict(batch_size=8, image_size=32, tokenize=tok, seed=5, epochs=1)
    grouped = make_loader(shards, **kw)
    assert grouped.group_size == 16  # read from the generator's manifest
    order = np.concatenate([grouped._record_ids(b) for b in range(grouped.batches_per_epoch)])
    assert sorted(order.tolist()) == list(range(96))
    for run in order.reshape(-1, 16):
        assert run[0] % 16 == 0 and run.tolist() == list(range(run[0], run[0] + 16))
    assert order.reshape(-1, 16)[:, 0].tolist() != sorted(order.reshape(-1, 16)[:, 0].tolist())
    free = make_loader(shards, group_size=1, **kw)
    order = np.concatenate([free._record_ids(b) for b in range(free.batches_per_epoch)])
    assert order.tolist() == np.random.default_rng([5, 1, 0]).permutation(96).tolist()


def test_caption_weights_pick_levels(shards):
    specific = next(iter(make_loader(shards, batch_size=8, image_size=32, tokenize=tok, caption_weights=[0, 0, 0, 1])))
    default = next(iter(make_loader(shards, batch_size=8, image_size=32, tokenize=tok)))
    generic = next(iter(make_loader(shards, batch_size=8, image_size=32, tokenize=tok, caption_weights=[1, 0, 0, 0])))
    assert torch.equal(specific["text"], default["text"]) and not torch.equal(generic["text"], default["text"])


def _png(colour):
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "PNG")
    return buf.getvalue()


def test_corrupt_records_counted_and_logged(tmp_path, caplog):
    good = {"caption": "a red square", "boxes": [{"box": [0, 0, 20, 20], "phrase": "a square", "kind": "object"}]}
    samples = [{"__key__": f"k{i:03d}", "png": _png((i * 10, 0, 0)), "json": json.dumps(good).encode()}
               for i in range(12)]
    samples[2]["png"] = b"not an image"
    samples[5]["json"] = b"{broken"
    samples[7] = {"__key__": "k007", "json": json.dumps(good).encode()}
    write_shard(tmp_path / "s.tar", samples)
    with caplog.at_level(logging.WARNING):
        ld = make_loader(tmp_path, batch_size=12, image_size=32, tokenize=tok, with_boxes=True, seed=0, min_box_size=8)
        batch = next(iter(ld))
    assert batch["image"].shape[0] == 12
    assert ld.stats["skipped_by_reason"] == {"bad_image": 1, "bad_json": 1, "no_image": 1}
    assert ld.stats["records_skipped"] == 3
    assert "skipped" in caplog.text and "bad_image" in caplog.text


def test_truncated_shard_keeps_prior_records(tmp_path):
    samples = [{"__key__": f"k{i}", "png": _png((0, 0, 0)), "json": b'{"caption": "x"}'} for i in range(6)]
    write_shard(tmp_path / "s.tar", samples)
    data = (tmp_path / "s.tar").read_bytes()
    (tmp_path / "s.tar").write_bytes(data[: len(data) // 2])
    ld = make_loader(tmp_path, batch_size=2, image_size=32, tokenize=tok)
    assert 0 < ld.stats["records_indexed"] < 6
    assert sum(ld.stats["skipped_by_reason"].values()) >= 1


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.tar"):
        make_loader(tmp_path / "nowhere.tar", batch_size=2, image_size=32, tokenize=tok)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .tar shards"):
        make_loader(tmp_path / "empty", batch_size=2, image_size=32, tokenize=tok)
    write_shard(tmp_path / "zero.tar", [])
    with pytest.raises(ValueError, match="no readable records"):
        make_loader(tmp_path / "zero.tar", batch_size=2, image_size=32, tokenize=tok)
    bad = [{"__key__": f"k{i}", "png": b"x", "json": b"{}"} for i in range(4)]
    write_shard(tmp_path / "bad.tar", bad)
    with pytest.raises(RuntimeError, match="unreadable records"):
        next(iter(make_loader(tmp_path / "bad.tar", batch_size=2, image_size=32, tokenize=tok)))
    with pytest.raises(ValueError, match="global batch"):
        make_loader(tmp_path / "bad.tar", batch_size=8, image_size=32, tokenize=tok)


def test_box_preprocessing_rules():
    boxes = [{"box": [0, 0, 40, 40], "phrase": "a dog"}, {"box": [50, 50, 90, 90], "phrase": "a dog"},
             {"box": [0, 0, 32, 32], "phrase": "a cat"}, {"box": [0, 0, 33, 32], "phrase": "a hat"}]
    kept = usable_boxes(boxes, 32)
    assert [b["phrase"] for b in kept] == ["a dog", "a hat"] and kept[0]["box"] == [0, 0, 40, 40]
    img = Image.new("RGB", (100, 50), (0, 0, 255))
    crop = np.asarray(crop_box(img, [10, 10, 90, 30], 16))
    assert crop.shape == (16, 16, 3)
    assert (crop[0, 8] == 255).all() and crop[8, 8, 2] > 200 and crop[8, 8, 0] < 50  # white pad above, blue box
