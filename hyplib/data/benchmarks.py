"""Benchmarks on disk: one ``.npz`` of arrays plus one ``.json`` of metadata per benchmark.

Format (docs/INTERFACES.md, "Benchmarks on disk"): ``write_benchmark(dir, name, arrays, meta)``
writes ``dir/name.npz`` and ``dir/name.json``; ``load_benchmark(dir, name)`` returns one dict
with both merged. Images are ``uint8`` arrays ``(N, H, W, 3)``; indices are ``int64``.

Known names and their required keys (arrays | meta) are in :data:`SCHEMA`; a known name written
without one of its keys is refused, so an evaluator never finds a half-written benchmark.
Unknown names are allowed (user extensions) and only checked for key clashes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SCHEMA: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "zeroshot": (("images", "labels"), ("classnames", "class_ids", "templates")),
    "taxonomy": ((), ("parent", "names", "leaves")),
    "retrieval": (("images", "caption_image"), ("captions",)),
    "pep": (("images", "pairs", "labels"), ("texts", "pair_types")),
    "chains": (("whole", "part", "subpart"), ("text_chains",)),
    "composition": (("images",), ("positives", "negatives", "subsets", "heldout")),
    "hierarcaps": (("images",), ("captions",)),
}


def _check(name: str, arrays: dict, meta: dict) -> None:
    clash = sorted(set(arrays) & set(meta))
    if clash:
        raise ValueError(f"benchmark {name!r}: keys in both arrays and meta: {clash}")
    if name in SCHEMA:
        need_a, need_m = SCHEMA[name]
        missing = [k for k in need_a if k not in arrays] + [k for k in need_m if k not in meta]
        if missing:
            raise ValueError(f"benchmark {name!r} lacks required keys {missing}")
    for key, arr in arrays.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"benchmark {name!r}: array {key!r} is {type(arr).__name__}, not np.ndarray")
        if key in ("images", "whole", "part", "subpart") and (arr.dtype != np.uint8 or arr.ndim != 4):
            raise ValueError(f"benchmark {name!r}: {key!r} must be uint8 (N,H,W,3), got {arr.dtype} {arr.shape}")


def write_benchmark(dir: str | Path, name: str, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``dir/name.npz`` (arrays) and ``dir/name.json`` (meta); returns the json path.

    Args:
        dir: output folder (created).
        name: benchmark name, e.g. ``"zeroshot"`` (see :data:`SCHEMA`).
        arrays: numpy arrays; images uint8 ``(N,H,W,3)``, indices int64.
        meta: JSON-serialisable metadata (lists, strings, numbers, bools).
    """
    _check(name, arrays, meta)
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / f"{name}.npz", **arrays)
    path = out / f"{name}.json"
    path.write_text(json.dumps(meta, indent=None, sort_keys=True))
    return path


def load_benchmark(dir: str | Path, name: str) -> dict:
    """Load a benchmark written by :func:`write_benchmark` into one dict (arrays + meta).
    A relative ``dir`` is taken from the repository root (:func:`hyplib.paths.resolve`), so a
    notebook running in ``notebooks/`` reads what the workflow wrote."""
    from hyplib.paths import resolve

    base = resolve(dir)
    meta_path, arr_path = base / f"{name}.json", base / f"{name}.npz"
    if not meta_path.is_file():
        have = sorted(p.stem for p in base.glob("*.json")) if base.is_dir() else []
        raise FileNotFoundError(f"benchmark {name!r} not found: {meta_path} (found in {base}: {have})")
    out = dict(json.loads(meta_path.read_text()))
    if arr_path.is_file():
        with np.load(arr_path, allow_pickle=False) as npz:
            for key in npz.files:
                out[key] = npz[key]
    elif name in SCHEMA and SCHEMA[name][0]:
        raise FileNotFoundError(f"benchmark {name!r}: array file missing: {arr_path}")
    return out


def save_benchmark(dir: str | Path, name: str, bench: dict) -> Path:
    """Write a merged dict (as :func:`load_benchmark` returns): ndarrays to npz, the rest to json."""
    arrays = {k: v for k, v in bench.items() if isinstance(v, np.ndarray)}
    return write_benchmark(dir, name, arrays, {k: v for k, v in bench.items() if k not in arrays})


def list_benchmarks(dir: str | Path) -> list[str]:
    """Names of the benchmarks present in ``dir`` (those with a ``.json``; relative to the repo root)."""
    from hyplib.paths import resolve

    return sorted(p.stem for p in resolve(dir).glob("*.json") if p.stem != "manifest")


def caption_duplicates(captions, caption_image) -> dict:
    """How often a retrieval set repeats a caption's exact text.

    Args:
        captions: (M,) caption strings.
        caption_image: (M,) index of each caption's image.

    Returns:
        ``{"captions", "distinct", "repeated", "shared_across_images", "largest_group"}``:
        the number of captions, of distinct texts, of captions whose text occurs more than
        once, of captions whose text is also a caption of *another* image (these can never
        all be retrieved at rank 1: the evaluation counts a tie with another image's identical
        caption as a miss), and the most captions sharing one text.
    """
    texts = [str(c) for c in captions]
    owners = np.asarray(caption_image).tolist()
    if len(owners) != len(texts):
        raise ValueError(f"{len(texts)} captions but {len(owners)} caption_image entries")
    count: dict[str, int] = {}
    images: dict[str, set] = {}
    for t, i in zip(texts, owners):
        count[t] = count.get(t, 0) + 1
        images.setdefault(t, set()).add(i)
    return {"captions": len(texts), "distinct": len(count),
            "repeated": sum(n for n in count.values() if n > 1),
            "shared_across_images": sum(count[t] for t in count if len(images[t]) > 1),
            "largest_group": max(count.values(), default=0)}


def duplicate_caption_counts(dir: str | Path) -> dict[str, dict]:
    """:func:`caption_duplicates` of every retrieval benchmark (``retrieval``, ``retrieval_<name>``)
    in ``dir``, read without loading the images; for ``manifest.json``."""
    out = {}
    for name in list_benchmarks(dir):
        if name != "retrieval" and not name.startswith("retrieval_"):
            continue
        meta = json.loads((Path(dir) / f"{name}.json").read_text())
        with np.load(Path(dir) / f"{name}.npz", allow_pickle=False) as npz:
            owner = npz["caption_image"]
        out[name] = caption_duplicates(meta["captions"], owner)
    return out
