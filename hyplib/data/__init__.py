"""Data: the generated image-caption world, shards, the training loader, benchmarks, readers.

Submodules are imported on first use so ``import hyplib.data`` stays light:
``make_loader`` (:mod:`.loader`), ``write_benchmark``/``load_benchmark`` (:mod:`.benchmarks`),
``generate_all`` (:mod:`.generate`), ``read_dataset``/``dataset_names`` (:mod:`.readers`),
``prepare_real``/``resolve_data_paths`` (:mod:`.real`), ``prepare_data`` (:mod:`.prepare`, dispatch
by ``data.source``), ``imagenet_tree`` (:mod:`.wordnet`).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "make_loader": "loader",
    "write_benchmark": "benchmarks",
    "load_benchmark": "benchmarks",
    "list_benchmarks": "benchmarks",
    "save_benchmark": "benchmarks",
    "generate_all": "generate",
    "GenConfig": "generate",
    "read_dataset": "readers",
    "dataset_names": "readers",
    "imagenet_tree": "wordnet",
    "prepare_real": "real",
    "resolve_data_paths": "real",
    "prepare_data": "prepare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'hyplib.data' has no attribute {name!r}")
