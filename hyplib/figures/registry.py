"""The figure registry: every module of :mod:`hyplib.figures.catalog` is one figure, found by
name, so adding a figure is adding one module (and its test).

A figure module defines:

* ``NAME`` (its module name; the file stem under ``results/figures/``) and ``CAPTION`` (what is
  drawn and how to read it, never the outcome);
* ``STUDIES`` and ``METHODS``: the workflow's runs it reads (study tags; methods, None for all);
* ``RELEASED``: ``(methods or None, data.paths key of its benchmark)`` when it suits the authors'
  released checkpoints, else None;
* ``inputs(runs, bench_dir) -> dict``: the keyword arguments of ``draw`` from loaded runs
  (:func:`hyplib.figures.runs.load_runs`): metrics, the evaluation's arrays, training logs;
* ``draw(**inputs) -> matplotlib Figure``;
* optionally ``eval_arrays(model, bench_dir) -> {key: array}``: what it needs from a checkpoint,
  computed by the evaluation (:func:`write_eval_inputs`), never by the figure itself.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyplib.figures import catalog

__all__ = ["Figure", "REGISTRY", "get", "names", "write_eval_inputs", "EVAL_INPUTS"]

#: File the evaluation writes beside ``embeddings.npz`` with every figure's checkpoint-derived arrays.
EVAL_INPUTS = "figure_inputs.npz"
_REQUIRED = ("NAME", "CAPTION", "STUDIES", "METHODS", "RELEASED", "inputs", "draw")


@dataclass(frozen=True)
class Figure:
    """One registered figure (see the module docstring for the fields' meaning)."""

    name: str
    caption: str
    studies: tuple[str, ...]
    methods: tuple[str, ...] | None
    released: tuple | None
    inputs: Callable[..., dict]
    draw: Callable
    eval_arrays: Callable | None = None

    def render(self, runs, bench_dir):
        """``draw(**inputs(runs, bench_dir))``: the Figure for loaded ``runs``."""
        return self.draw(**self.inputs(runs, bench_dir))


def _load(module_name: str) -> Figure:
    mod = importlib.import_module(f"{catalog.__name__}.{module_name}")
    missing = [a for a in _REQUIRED if not hasattr(mod, a)]
    if missing:
        raise ValueError(f"figure module {mod.__name__} lacks {missing} (see hyplib.figures.registry)")
    if mod.NAME != module_name:
        raise ValueError(f"figure module {mod.__name__}: NAME is {mod.NAME!r}, must equal the module name")
    return Figure(name=mod.NAME, caption=" ".join(mod.CAPTION.split()), studies=tuple(mod.STUDIES),
                  methods=None if mod.METHODS is None else tuple(mod.METHODS), released=mod.RELEASED,
                  inputs=mod.inputs, draw=mod.draw, eval_arrays=getattr(mod, "eval_arrays", None))


#: Figure name -> :class:`Figure`, sorted by name.
REGISTRY: dict[str, Figure] = {f.name: f for f in map(_load, sorted(
    m.name for m in pkgutil.iter_modules(catalog.__path__) if not m.name.startswith("_")))}


def names() -> list[str]:
    """Every registered figure's name."""
    return list(REGISTRY)


def get(name: str) -> Figure:
    """The registered figure ``name``; an unknown name raises, listing the valid ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown figure {name!r}; valid figures: {names()}")
    return REGISTRY[name]


def write_eval_inputs(model, bench_dir, out_path, *, log_path=None) -> Path:
    """The evaluation's one call for the figures: every figure's ``eval_arrays(model, bench_dir)``
    and the training log (``train_log``, the ``log.jsonl`` text, when ``log_path`` is a file),
    saved to ``out_path`` (``figure_inputs.npz``), so no figure opens a checkpoint or a run folder.
    Returns ``out_path``."""
    arrays: dict[str, np.ndarray] = {}
    for fig in REGISTRY.values():
        if fig.eval_arrays is None or (fig.methods is not None and model.method.name not in fig.methods):
            continue
        for key, value in fig.eval_arrays(model, bench_dir).items():
            if key in arrays:
                raise ValueError(f"figure {fig.name}: eval_arrays key {key!r} is written by another figure too")
            arrays[key] = np.asarray(value)
    if log_path is not None and Path(log_path).is_file():
        arrays["train_log"] = np.asarray(Path(log_path).read_text())
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, **arrays)
    return out_path
