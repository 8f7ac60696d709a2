"""Checkpoints: atomic writes, the newest few kept, RNG states, and safe loading.

A checkpoint (``run_dir/checkpoints/step_0000100.pt``) holds everything an exact resume
needs: ``model``, ``optimizer``, ``scheduler``, ``scaler`` state dicts, ``rng`` (python, numpy,
torch, cuda), ``step`` (optimiser steps done), ``batches`` (global batches consumed from the
loader), ``world_size`` and the resolved ``config``. Only plain containers and tensors are
stored (numpy's RNG state is converted), so :func:`load` works with ``weights_only=True``.

Files are written to ``<name>.tmp`` and renamed into place, so a job killed mid-write never
leaves a truncated checkpoint under the final name.
"""
from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path

import numpy as np
import torch

__all__ = ["atomic_save", "load", "load_newest", "list_checkpoints", "latest", "prune", "checkpoint_path",
           "rng_state", "set_rng_state"]

#: What torch.load raises on a damaged file: a truncated zip, garbage bytes and a bad pickle give
#: RuntimeError, EOFError, UnpicklingError, BadZipFile, even IndexError (weights_only unpickler),
#: so any Exception while loading a file means "unreadable".
LOAD_ERRORS = (Exception,)

_NAME = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_path(ckpt_dir: str | os.PathLike, step: int) -> Path:
    """``ckpt_dir/step_<step, 7 digits>.pt``."""
    return Path(ckpt_dir) / f"step_{step:07d}.pt"


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path.tmp``, flush to disk, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by this module (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


def load_newest(ckpt_dir: str | os.PathLike, map_location="cpu",
                required=("model", "step", "config")) -> tuple[Path | None, dict | None]:
    """``(path, state)`` of the newest checkpoint in ``ckpt_dir`` that loads and holds the
    ``required`` keys; a damaged newer one is skipped with a warning naming it (it will be
    overwritten when the run reaches its step again). ``(None, None)`` when none loads."""
    for _, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            state = load(path, map_location=map_location)
            missing = [k for k in required if k not in state]
            if missing:
                raise ValueError(f"missing keys {missing}")
            return path, state
        except LOAD_ERRORS as err:
            warnings.warn(f"checkpoint {path} is unreadable ({type(err).__name__}: {str(err)[:200]}); "
                          "falling back to an older one", RuntimeWarning, stacklevel=2)
    return None, None


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of every complete checkpoint in ``ckpt_dir``, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest(ckpt_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def prune(ckpt_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints (and stale ``.tmp`` files)."""
    found = list_checkpoints(ckpt_dir)
    for _, path in found[:-keep] if keep > 0 else found:
        path.unlink(missing_ok=True)
    for tmp in Path(ckpt_dir).glob("*.tmp"):
        tmp.unlink(missing_ok=True)


def rng_state() -> dict:
    """RNG states of python, numpy, torch (CPU) and every CUDA device, as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": _py_to_plain(random.getstate()),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured (CUDA only where it was captured and is present)."""
    random.setstate(_py_from_plain(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)


def _py_to_plain(s):
    version, internal, gauss = s
    return [version, list(internal), gauss]


def _py_from_plain(s):
    version, internal, gauss = s
    return (version, tuple(internal), gauss)
