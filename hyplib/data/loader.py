"""Training batches from webdataset shards (docs/INTERFACES.md, "Training batches").

Determinism: batch ``b`` on rank ``r`` is a pure function of ``(seed, b, r, world_size,
batch_size)`` and the shards' contents, so ``make_loader(..., start_batch=k)`` yields exactly the
batches ``k, k+1, ...`` of a run started at 0 (resume skips nothing it must not).

Order: each epoch ``e`` draws a permutation with ``rng([seed, 1, e])`` of the record *blocks*,
runs of ``group_size`` consecutive records of one shard counted from its first record (1: every
record is its own block). Blocks stay whole: the generator writes look-alike scenes as one block,
so they meet as in-batch negatives. The flattened order is cut to a multiple of
``world_size * batch_size`` (the tail is dropped, as DDP needs equal batch counts); global batch
``b`` is records ``[b * W * B, (b + 1) * W * B)`` of that order, blocks included, and rank ``r``
takes its ``r``-th contiguous slice of ``B``. So the all-gathered global batch is, sample for
sample and in order, the batch one process with ``batch_size = W * B`` reads.
Batches continue across epochs forever unless ``epochs`` is given: take as many as you need.

Draws depend on the sample, not on the process: sample ``g`` (its position in the whole run,
``g = b * W * B + r * B + slot``) draws its caption level, then its box, from
``rng([seed, 2, g])``, and a corrupt record in its slot is replaced from ``rng([seed, 3, g, k])``;
so a run on 8 processes sees the samples, captions and crops a run on 1 process would.

Per sample: the caption is drawn from the record's caption levels with ``caption_weights``
(generic -> specific; ``None`` uses the record's single ``caption`` field, which the generator
sets to the most specific level); one random usable box (see :mod:`hyplib.data.preprocess`)
gives ``image_box``/``text_box``; without one the full image/caption is repeated and
``has_box`` is False.

Records come from the decoded copy the data step saves beside small shard sets
(:mod:`hyplib.data.decoded`) when it matches the shards, else from the tars; the batches are the
same either way.

Corrupt records (undecodable image or json, no image, no caption, malformed captions or boxes:
see :mod:`hyplib.data.records`) and damaged shards are skipped, counted by reason in
``.stats["skipped_by_reason"]`` and by shard in ``.stats["skipped_by_shard"]`` and logged; the
slot is refilled from a seeded draw so batch sizes and determinism hold. Each corrupt record is
counted once per process (workers count their own). Zero readable records, or 50 failures in a
row, raise.
"""
from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .decoded import load_decoded
from .preprocess import crop_box, resize_square, to_tensor, usable_boxes
from .records import BadRecord, Sample, decode_record
from .shards import RecordReader, ShardIndex, expand_shards
from .token_cache import CachedTokenizer

log = logging.getLogger(__name__)

HYCOCLIP_MIN_BOX = 32.0
MAX_FAILS = 50


def _manifest_hint(shards: list[Path], key: str, default: float) -> float:
    """``loader.<key>`` from the ``manifest.json`` beside the shards (or one level up), else ``default``."""
    for cand in (shards[0].parent / "manifest.json", shards[0].parent.parent / "manifest.json"):
        if cand.is_file():
            try:
                return float(json.loads(cand.read_text())["loader"][key])
            except (KeyError, TypeError, ValueError, json.JSONDecodeError):
                pass
    return default


def block_ids(shard_of_record: Sequence[int], group_size: int) -> np.ndarray:
    """Block of each record: runs of ``group_size`` records within a shard, from its first record."""
    shard = np.asarray(shard_of_record, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, shard[1:] != shard[:-1]])
    position = np.arange(len(shard)) - np.repeat(starts, np.diff(np.r_[starts, len(shard)]))
    new_block = (position % group_size) == 0
    return np.cumsum(new_block) - 1


class ShardLoader:
    """Iterable of batch dicts; see the module docstring. Build it with :func:`make_loader`."""

    def __init__(self, shards, *, batch_size: int, image_size: int, tokenize: Callable,
                 caption_weights: Sequence[float] | None, with_boxes: bool, seed: int,
                 rank: int, world_size: int, start_batch: int, num_workers: int,
                 min_box_size: float | None, epochs: int | None, group_size: int | None = None):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        paths = expand_shards(shards)
        self.index = ShardIndex.cached(paths)
        if len(self.index) == 0:
            raise ValueError(f"no readable records in {len(paths)} shard(s): {[str(p) for p in paths[:3]]}")
        self.reader = RecordReader(self.index)
        self.decoded = load_decoded(self.index)  # the data step's decoded copy, when it matches the shards
        self.batch_size, self.image_size = batch_size, image_size
        self.tokenize = CachedTokenizer(tokenize)  # generated captions repeat: tokenise each once
        self.with_boxes, self.seed, self.rank, self.world_size = with_boxes, seed, rank, world_size
        self.start_batch, self.num_workers, self.epochs = start_batch, num_workers, epochs
        self.min_box_size = (_manifest_hint(paths, "min_box_size", HYCOCLIP_MIN_BOX) if min_box_size is None
                             else float(min_box_size))
        self.group_size = int(_manifest_hint(paths, "group_size", 1) if group_size is None else group_size)
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")
        blocks = block_ids(self.index.shard_of, self.group_size)
        self._block_starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
        self._block_sizes = np.diff(np.r_[self._block_starts, len(blocks)])
        self.caption_weights = None if caption_weights is None else np.asarray(caption_weights, float)
        if self.caption_weights is not None and (self.caption_weights < 0).any():
            raise ValueError(f"caption_weights must be >= 0, got {caption_weights}")
        per_step = world_size * batch_size
        self.batches_per_epoch = len(self.index) // per_step
        if self.batches_per_epoch == 0:
            raise ValueError(f"{len(self.index)} records cannot fill one global batch of {per_step}")
        self._perm_epoch, self._perm, self._bad = -1, None, set()
        self.stats = {"records_read": 0, "records_skipped": 0,
                      "skipped_by_reason": dict(self.index.problems), "records_indexed": len(self.index),
                      "skipped_by_shard": {k: dict(v) for k, v in self.index.problems_by_shard.items()}}

    # ---- order -------------------------------------------------------------------------
    def _record_ids(self, b: int) -> np.ndarray:
        """Record ids of this rank's slice of global batch ``b``."""
        epoch, j = divmod(b, self.batches_per_epoch)
        if epoch != self._perm_epoch:
            perm = np.random.default_rng([self.seed, 1, epoch]).permutation(len(self._block_starts))
            if self.group_size > 1:
                perm = np.concatenate([np.arange(s, s + n) for s, n in
                                       zip(self._block_starts[perm], self._block_sizes[perm])])
            self._perm, self._perm_epoch = perm, epoch
        first = (j * self.world_size + self.rank) * self.batch_size
        return self._perm[first:first + self.batch_size]

    def _sample_ids(self, b: int) -> range:
        """Run-wide positions ``g`` of this rank's samples in global batch ``b`` (seeds their draws)."""
        first = (b * self.world_size + self.rank) * self.batch_size
        return range(first, first + self.batch_size)

    # ---- one batch ---------------------------------------------------------------------
    def _load(self, i: int, stats: Counter) -> Sample | None:
        if int(i) in self._bad:  # known corrupt: already counted once in this process
            return None
        stats["records_read"] += 1
        try:
            if self.decoded is not None:
                return self.decoded.sample(i, meta=False)  # batches read no meta
            return decode_record(*self.reader.read(int(i)))
        except BadRecord as err:
            _, key, _ = self.index.record(int(i))
            shard = self.index.shards[int(self.index.shard_of[int(i)])]
            stats[("skip", err.reason, str(shard))] += 1
            self._bad.add(int(i))
            log.warning("skipped record %s in %s: %s", key, shard, err)
            return None

    def _caption(self, s: Sample, rng: np.random.Generator) -> str:
        w = self.caption_weights
        if w is None or len(s.captions) < 2:
            return s.caption
        w = w[: len(s.captions)]
        if w.sum() <= 0:
            return s.caption
        return s.captions[int(rng.choice(len(w), p=w / w.sum()))]

    def make_batch(self, b: int) -> tuple[dict, Counter]:
        """Batch ``b`` for this rank and the stats counted while making it."""
        stats: Counter = Counter()
        samples, rngs = [], []
        for g, i in zip(self._sample_ids(b), self._record_ids(b)):
            s, fails = self._load(i, stats), 0
            while s is None:
                fails += 1
                if fails >= MAX_FAILS:
                    raise RuntimeError(f"{MAX_FAILS} unreadable records in a row near batch {b}: "
                                       f"stats {dict(stats)}")
                j = np.random.default_rng([self.seed, 3, g, fails]).integers(len(self.index))
                s = self._load(j, stats)
            samples.append(s)
            rngs.append(np.random.default_rng([self.seed, 2, g]))
        images = [resize_square(s.image, self.image_size) for s in samples]
        texts = [self._caption(s, rng) for s, rng in zip(samples, rngs)]
        batch = {"image": to_tensor(images), "text": self.tokenize(texts)}
        if self.with_boxes:
            crops, phrases, has = [], [], []
            for s, full, text, rng in zip(samples, images, texts, rngs):
                boxes = usable_boxes(s.boxes, self.min_box_size)
                if boxes:
                    box = boxes[int(rng.integers(len(boxes)))]
                    crops.append(crop_box(s.image, box["box"], self.image_size))
                    phrases.append(box["phrase"])
                else:
                    crops.append(full)
                    phrases.append(text)
                has.append(bool(boxes))
            batch.update(image_box=to_tensor(crops), text_box=self.tokenize(phrases),
                         has_box=torch.tensor(has, dtype=torch.bool))
        return batch, stats

    # ---- resume ------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The counts so far and the records known corrupt, for a checkpoint (plain data)."""
        return {"stats": json.loads(json.dumps(self.stats)), "bad": sorted(self._bad)}

    def load_state_dict(self, state: dict) -> None:
        """Continue the counts of the run a checkpoint came from, so ``.stats`` after a resume
        equals an uninterrupted run's (exactly with ``num_workers=0``; workers count their own).
        The index's problems were counted again when this loader was built: only what decoding
        found is carried over."""
        saved = state["stats"]
        for key in ("records_read", "records_skipped"):
            self.stats[key] += saved.get(key, 0)
        for reason, n in saved.get("skipped_by_reason", {}).items():
            _bump(self.stats["skipped_by_reason"], reason, max(0, n - self.index.problems.get(reason, 0)))
        for shard, reasons in saved.get("skipped_by_shard", {}).items():
            at_build = self.index.problems_by_shard.get(shard, {})
            for reason, n in reasons.items():
                _bump(self.stats["skipped_by_shard"].setdefault(shard, {}), reason, max(0, n - at_build.get(reason, 0)))
        self._bad |= set(state.get("bad", []))

    # ---- iteration ---------------------------------------------------------------------
    def _add_stats(self, delta: Counter) -> None:
        skipped = False
        for k, v in delta.items():
            if isinstance(k, tuple):  # ("skip", reason, shard)
                _, reason, shard = k
                self.stats["records_skipped"] += v
                _bump(self.stats["skipped_by_reason"], reason, v)
                _bump(self.stats["skipped_by_shard"].setdefault(shard, {}), reason, v)
                skipped = True
            else:
                self.stats[k] += v
        if skipped:
            log.warning("records skipped so far: %d %s", self.stats["records_skipped"],
                        self.stats["skipped_by_reason"])

    def _batch_ids(self):
        if self.epochs is None:
            return itertools.count(self.start_batch)
        return range(self.start_batch, self.epochs * self.batches_per_epoch)

    def __iter__(self):
        if self.num_workers <= 0:
            for b in self._batch_ids():
                batch, delta = self.make_batch(b)
                self._add_stats(delta)
                yield batch
            return
        dl = torch.utils.data.DataLoader(_ByIndex(self), batch_size=None, sampler=_Ids(self),
                                         num_workers=self.num_workers, persistent_workers=False)
        for batch, delta in dl:
            self._add_stats(delta)
            yield batch

    def __len__(self) -> int:
        if self.epochs is None:
            raise TypeError("an endless loader has no length; see .batches_per_epoch or pass epochs=")
        return max(0, self.epochs * self.batches_per_epoch - self.start_batch)


def _bump(counts: dict, key: str, n: int) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n


class _ByIndex(torch.utils.data.Dataset):
    def __init__(self, loader: ShardLoader):
        self.loader = loader

    def __getitem__(self, b):
        return self.loader.make_batch(int(b))


class _Ids(torch.utils.data.Sampler):
    def __init__(self, loader: ShardLoader):
        self.loader = loader

    def __iter__(self):
        return iter(self.loader._batch_ids())


def make_loader(shards, *, batch_size: int, image_size: int, tokenize: Callable,
                caption_weights: Sequence[float] | None = None, with_boxes: bool = False,
                seed: int = 0, rank: int = 0, world_size: int = 1, start_batch: int = 0,
                num_workers: int = 0, min_box_size: float | None = None,
                epochs: int | None = None, group_size: int | None = None) -> ShardLoader:
    """Deterministic, resumable batches from webdataset shards.

    Args:
        shards: directory, glob, brace range, ``::``-joined list or list of tar paths.
        batch_size: per-rank batch size.
        image_size: side of the square images (and box crops) returned.
        tokenize: ``list[str] -> LongTensor (N, L)`` (e.g. ``model.tokenize``).
        caption_weights: weights over caption levels, generic -> specific; ``None`` takes the
            record's ``caption`` field.
        with_boxes: also return ``image_box``, ``text_box``, ``has_box``.
        seed: fixes record order, caption levels and boxes.
        rank, world_size: DDP sharding; every rank yields the same number of batches.
        start_batch: first batch index to yield (resume).
        num_workers: DataLoader worker processes (0 = main process).
        min_box_size: drop boxes of area <= this**2 px; ``None`` reads the generator's
            ``manifest.json`` beside the shards, else HyCoCLIP's 32.
        epochs: stop after this many epochs; ``None`` iterates forever.
        group_size: keep runs of this many consecutive records of a shard together in the order
            (see the module docstring); ``None`` reads ``manifest.json`` beside the shards, else 1.

    Returns:
        :class:`ShardLoader` with ``.stats`` and ``.batches_per_epoch``.
    """
    return ShardLoader(shards, batch_size=batch_size, image_size=image_size, tokenize=tokenize,
                       caption_weights=caption_weights, with_boxes=with_boxes, seed=seed, rank=rank,
                       world_size=world_size, start_batch=start_batch, num_workers=num_workers,
                       min_box_size=min_box_size, epochs=epochs, group_size=group_size)
