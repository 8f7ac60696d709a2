"""Trained runs as the figures and tables see them: loading, labels, selection, seed statistics.

A run arrives as the workflow's plain dict (``notebooks/fig_*.ipynb``'s ``runs`` parameter)::

    {"name", "method", "variant", "seed", "study": [tags], "overrides": {...},
     "train_dir", "eval_dir"}

:func:`load_runs` turns each into a :class:`Run` holding what the run left on disk:
``eval_dir/metrics.json`` (the flat ``"<protocol>/<metric>"`` dict of
:func:`hyplib.evaluation.run_all`, under the record's ``"metrics"`` key), every
``eval_dir/*.npz`` (the evaluation's arrays, e.g. ``radius_text``, ``eig_image``,
``traversal_idx``, and the figures' ``figure_inputs.npz``) and the training log (the copy in
``figure_inputs.npz``, else ``train_dir/log.jsonl``; a DataFrame via
:func:`hyplib.evaluation.diagnostics.read_log`). Missing files are not errors: a figure draws
what exists and says what is missing.

``variant`` is the workflow's tag of the overrides (``base`` = the paper defaults, ``c0.5``,
``k1``, ``linf``, ...), not ATMG's ``variant`` option (that one sits in ``overrides``).
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hyplib.paths import resolve

__all__ = ["METHOD_ORDER", "METHOD_LABELS", "Run", "load_runs", "as_runs", "method_label", "select",
           "group_by_config", "seed_stats", "settings"]

#: Registry order: rows of tables and bars of figures follow it.
METHOD_ORDER = ("clip", "meru", "hycoclip", "atmg", "argent", "phyclip")
METHOD_LABELS = {"clip": "CLIP", "meru": "MERU", "hycoclip": "HyCoCLIP", "atmg": "ATMG", "argent": "ARGENT",
                 "phyclip": "PHyCLIP"}


def method_label(method: str, variant: str | None = None) -> str:
    """Display name: ``"MERU"``, or ``"MERU (c0.5)"`` for a non-base variant."""
    name = METHOD_LABELS.get(method, method)
    return name if variant in (None, "", "base") else f"{name} ({variant})"


@dataclass
class Run:
    """One trained run and what it left on disk (see the module docstring)."""

    name: str
    method: str
    variant: str | None = "base"
    seed: int = 0
    study: list[str] = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    train_dir: Path | None = None
    eval_dir: Path | None = None
    metrics: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    log: pd.DataFrame | None = None

    @property
    def label(self) -> str:
        """:func:`method_label` of this run (seeds share a label)."""
        return method_label(self.method, self.variant)

    def metric(self, key: str) -> float:
        """``metrics[key]`` as a float; NaN when absent or null."""
        v = self.metrics.get(key)
        return float("nan") if v is None else float(v)


def _read_metrics(eval_dir: Path | None) -> tuple[dict, dict]:
    if eval_dir is None or not (eval_dir / "metrics.json").is_file():
        return {}, {}
    record = json.loads((eval_dir / "metrics.json").read_text())
    flat = record.get("metrics", record) if isinstance(record, Mapping) else {}
    return {k: v for k, v in flat.items() if isinstance(v, (int, float)) or v is None}, record


def _read_arrays(eval_dir: Path | None) -> dict:
    out: dict = {}
    if eval_dir is None or not eval_dir.is_dir():
        return out
    for path in sorted(eval_dir.glob("*.npz")):
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                out.setdefault(key, npz[key])
    return out


def _read_log(eval_dir: Path | None, train_dir: Path | None) -> pd.DataFrame | None:
    """The training log the evaluation kept (``train_log`` in ``figure_inputs.npz``), else
    ``train_dir/log.jsonl``; None if neither exists."""
    from hyplib.evaluation.diagnostics import parse_log, read_log
    from hyplib.figures.registry import EVAL_INPUTS

    if eval_dir is not None and (eval_dir / EVAL_INPUTS).is_file():
        with np.load(eval_dir / EVAL_INPUTS, allow_pickle=False) as npz:
            if "train_log" in npz.files:
                return parse_log(str(npz["train_log"]))
    if train_dir is None or not (train_dir / "log.jsonl").is_file():
        return None
    return read_log(train_dir / "log.jsonl")


def _path(p) -> Path | None:
    return None if p in (None, "") else resolve(p)


def as_runs(runs: Iterable) -> list[Run]:
    """Run specs (dicts) or :class:`Run` objects -> :class:`Run` objects, **without** reading files."""
    out = []
    for r in runs:
        if isinstance(r, Run):
            out.append(r)
            continue
        out.append(Run(name=str(r["name"]), method=str(r["method"]), variant=r.get("variant", "base"),
                       seed=int(r.get("seed", 0)), study=list(r.get("study", [])),
                       overrides=dict(r.get("overrides") or {}), train_dir=_path(r.get("train_dir")),
                       eval_dir=_path(r.get("eval_dir"))))
    return out


def load_runs(runs: Iterable, *, arrays: bool = True, logs: bool = True) -> list[Run]:
    """Read every run's metrics, arrays and training log; warns once listing runs without metrics."""
    out = as_runs(runs)
    missing = []
    for run in out:
        run.metrics, run.record = _read_metrics(run.eval_dir)
        if not run.metrics:
            missing.append(run.name)
        if arrays:
            run.arrays = _read_arrays(run.eval_dir)
        if logs:
            run.log = _read_log(run.eval_dir, run.train_dir)
    if missing:
        warnings.warn(f"no metrics.json for run(s) {missing}", stacklevel=2)
    return out


def select(runs: Iterable[Run], *, study: str | None = None, methods: Iterable[str] | None = None,
           variant: str | None = None) -> list[Run]:
    """Runs in ``study`` (any if None), of ``methods`` (any if None) and ``variant`` (any if None)."""
    methods = None if methods is None else set(methods)
    return [r for r in runs if (study is None or study in r.study)
            and (methods is None or r.method in methods) and (variant is None or r.variant == variant)]


def group_by_config(runs: Iterable[Run]) -> dict[str, list[Run]]:
    """``{label: [runs over seeds]}`` in registry order of the methods, then variant."""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    ordered = sorted(runs, key=lambda r: (order.get(r.method, len(order)), r.method,
                                          r.variant not in (None, "", "base"), str(r.variant), r.seed))
    groups: dict[str, list[Run]] = {}
    for r in ordered:
        groups.setdefault(r.label, []).append(r)
    return groups


def seed_stats(values: Iterable[float]) -> tuple[float, float, int]:
    """``(mean, std, n)`` over the finite values; ``std`` is the sample std (ddof=1), NaN for n < 2."""
    v = np.asarray([float(x) for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if n > 1 else float("nan"), n


def settings(run: Run) -> dict:
    """The run's effective method configuration: paper defaults, then the overrides the
    evaluation recorded (``metrics.json``'s ``config.method_overrides``), then ``run.overrides``.

    Keys the registry does not know (e.g. a workflow-only ``use_boxes``) are kept as given.
    """
    from hyplib import methods

    over = dict((run.record.get("config") or {}).get("method_overrides") or {})
    over.update(run.overrides)
    try:
        return dict(methods.get(run.method, **over).defaults)
    except ValueError:
        known = {}
        try:
            base = methods.get(run.method).defaults
            known = {k: v for k, v in over.items() if k in base or k == "curv_clamp"}
            cfg = dict(methods.get(run.method, **known).defaults)
        except ValueError:
            cfg = {}
        cfg.update({k: v for k, v in over.items() if k not in known})
        return cfg


def finite(x) -> bool:
    """True for a real finite number."""
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
