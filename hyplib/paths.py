"""Repository-root-relative paths, so notebooks and scripts run from any working directory.

Papermill executes a notebook with its own directory (or wherever it was started) as the
working directory, and Snakemake passes paths relative to the repository root. Every
relative path a notebook receives goes through :func:`resolve`.

The root is, in order: the ``HYPLIB_ROOT`` environment variable; the checkout that holds this
package (editable install); the first ancestor of the working directory holding a
``Snakefile`` or ``pyproject.toml``; the working directory itself.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repo_root", "results_dir", "resolve"]

_MARKERS = ("Snakefile", "pyproject.toml")


def _is_root(path: Path) -> bool:
    return any((path / m).is_file() for m in _MARKERS)


def repo_root() -> Path:
    """Absolute path of the repository root (see the module docstring for the search order)."""
    env = os.environ.get("HYPLIB_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    checkout = Path(__file__).resolve().parent.parent
    if _is_root(checkout) and (checkout / "hyplib").is_dir():
        return checkout
    cwd = Path.cwd().resolve()
    for path in (cwd, *cwd.parents):
        if _is_root(path):
            return path
    return cwd


def results_dir() -> Path:
    """``<repo root>/results``, where every output of the workflow lives."""
    return repo_root() / "results"


def resolve(path: str | os.PathLike) -> Path:
    """An absolute path: absolute ``path`` unchanged, relative ones taken from the repo root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else repo_root() / path
