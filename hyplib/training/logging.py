"""Per-step records: ``log.jsonl`` lines, model scalars, and the progress-bar summary.

One JSON object per logged step: ``step`` (1-based count of optimiser steps done), ``loss``,
every term of the method's ``logs``, ``curv`` (float, or list for a product of factors),
``alphas`` ({name: float or list}), ``logit_scale``, ``lr``, ``samples_per_s`` (global batch
over the step's wall time), ``data_s`` (time spent waiting for the batch) and ``time`` (wall
clock seconds since the run started).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

__all__ = ["to_number", "model_scalars", "JsonlLogger", "read_log", "postfix", "terms_finite"]


def to_number(x) -> float | list:
    """A tensor/number as a float, or a list of floats for a tensor with elements > 1."""
    if isinstance(x, Tensor):
        x = x.detach().float().cpu()
        return x.item() if x.numel() == 1 else x.flatten().tolist()
    if isinstance(x, (list, tuple)):
        return [to_number(v) for v in x]
    return float(x)


def model_scalars(model) -> dict[str, Any]:
    """Curvature(s), alphas and logit scale of a hyplib model (DDP wrapper or not)."""
    model = getattr(model, "module", model)
    out: dict[str, Any] = {}
    for name in ("curv", "logit_scale"):
        value = getattr(model, name, None)
        if value is not None:
            out[name] = to_number(value)
    alphas = getattr(model, "alphas", None)
    if isinstance(alphas, Mapping):
        out["alphas"] = {str(k): to_number(v) for k, v in alphas.items()}
    return out


def _finite(v) -> bool:
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return not isinstance(v, float) or math.isfinite(v)


def _jsonable(v):
    """NaN/Inf become strings so every line stays valid JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


class JsonlLogger:
    """Appends one JSON line per record to ``path`` (only on the main process)."""

    def __init__(self, path: str | os.PathLike, *, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self._f = open(self.path, "a") if enabled else None

    def truncate_after(self, step: int) -> None:
        """Drop lines with ``step > step`` (steps a resumed run will redo)."""
        if not self.enabled:
            return
        self._f.close()
        keep = [r for r in read_log(self.path) if r.get("step", 0) <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            for r in keep:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, self.path)
        self._f = open(self.path, "a")

    def write(self, record: Mapping) -> None:
        if self.enabled:
            self._f.write(json.dumps(_jsonable(dict(record))) + "\n")
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def read_log(path: str | os.PathLike) -> list[dict]:
    """Every record of a ``log.jsonl`` (a torn last line from a killed job is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def postfix(loss: float, terms: Mapping, record: Mapping, max_terms: int = 6) -> dict[str, str]:
    """Short strings for tqdm: the loss, up to ``max_terms`` loss terms, curvature and lr."""
    out = {"loss": f"{loss:.4g}"}
    for key, value in list(terms.items())[:max_terms]:
        if key != "loss":
            out[key] = f"{value:.3g}" if isinstance(value, float) else str(value)
    curv = record.get("curv")
    if isinstance(curv, float):
        out["c"] = f"{curv:.3g}"
    elif isinstance(curv, list) and curv:
        out["c"] = f"~{sum(curv) / len(curv):.3g}"
    out["lr"] = f"{record['lr']:.2e}"
    return out


def terms_finite(terms: Mapping) -> list[str]:
    """Names of the non-finite terms in ``terms``."""
    return [k for k, v in terms.items() if not _finite(v)]
