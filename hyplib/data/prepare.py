"""One entry point for the data step of the workflow: ``prepare_data(source, out_dir, **params)``.

``source`` picks a preparer from :data:`SOURCES` (the config's ``data.source``):

* ``generated``: :func:`hyplib.data.generate.generate_all` with the preset ``size`` and
  ``n_train``, ``image_size``, ``seed``, ``workers``, plus ``generator``: any other
  :class:`~hyplib.data.genconfig.GenConfig` field (the config's ``data.generator``);
* ``real``: :func:`hyplib.data.real.prepare_real` with ``root``, ``paths``, ``image_size``,
  ``seed``, ``workers``, ``verify_shards``.

Both write the same layout (``train/`` shards, ``bench/`` benchmarks, ``manifest.json``) and
return the manifest; then the index of the shards is saved beside them
(:meth:`hyplib.data.shards.ShardIndex.write_cache`), so runs do not scan the tars again; for
generated data its records are also saved decoded (:func:`hyplib.data.decoded.write_decoded`), so
runs do not decode them again. The notebook passes every parameter it has; each preparer takes
the ones it needs. Before either runs, what a previous preparation left in ``out_dir`` is removed
(:func:`hyplib.data.real.clear_prepared`), so switching sources never mixes their files.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .decoded import write_decoded
from .real import SHARD_FOLDERS, clear_prepared, prepare_real
from .shards import ShardIndex


def _generated(out_dir, *, size: str = "default", n_train: int = 50_000, image_size: int = 32, seed: int = 0,
               workers: int = 1, generator: dict | None = None, progress: bool = True, **_unused) -> dict:
    from .genconfig import GenConfig
    from .generate import generate_all

    cfg = GenConfig.preset(size, **(generator or {}), n_train=n_train, image_size=image_size, seed=seed,
                           workers=workers)
    clear_prepared(out_dir)
    return generate_all(out_dir, cfg, progress=progress)


def _real(out_dir, *, root=".", paths=None, image_size: int = 224, seed: int = 0, workers: int = 1,
          verify_shards: bool = True, progress: bool = True, **_unused) -> dict:
    return prepare_real(out_dir, root=root, paths=dict(paths or {}), image_size=image_size, seed=seed,
                        workers=workers, verify_shards=verify_shards, progress=progress)


SOURCES: dict[str, Callable[..., dict]] = {"generated": _generated, "real": _real}


def prepare_data(source: str, out_dir: str | Path, **params) -> dict:
    """Prepare the data of ``source`` under ``out_dir``; returns the manifest.

    Raises:
        ValueError: an unknown ``source`` (listing the valid ones).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; valid: {sorted(SOURCES)}")
    manifest = SOURCES[source](out_dir, **params)
    for folder in SHARD_FOLDERS.values():  # every training run reads this index instead of scanning the tars
        shards = sorted((Path(out_dir) / folder).glob("*.tar"))
        if shards:
            index = ShardIndex.write_cache(shards)
            if source == "generated":  # small and made here: decode once for every run
                write_decoded(index)
    return manifest
