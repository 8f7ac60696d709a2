"""The main comparison table and writing every table as Markdown and CSV."""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from hyplib.figures.runs import group_by_config, seed_stats
from hyplib.paths import resolve
from hyplib.reporting.common import MAIN_METRICS, runs_and_metrics, values

__all__ = ["RANDOM_ROW", "main_comparison", "to_markdown", "claims_markdown", "write_tables"]

# --------------------------------------------------------------------------- main table
#: Label of the reference row :func:`main_comparison` adds from ``reference``.
RANDOM_ROW = "uniform random (expected)"


def main_comparison(runs, metrics: Mapping | None = None, *, study: str = "main",
                    keys: Mapping[str, tuple[str, bool]] = MAIN_METRICS,
                    reference: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Rows = method labels of ``study``; columns ``seeds`` and ``<name> mean``/``<name> std``.

    ``reference``: metrics of a uniform-random predictor
    (:func:`hyplib.evaluation.protocols.random_reference`), added as a last row
    (:data:`RANDOM_ROW`, 0 seeds, no std) so every method reads against chance."""
    runs = runs_and_metrics(runs, metrics, None)
    rows = []
    for label, group in group_by_config([r for r in runs if study in r.study]).items():
        row = {"method": label, "seeds": len(group)}
        for key, (name, _) in keys.items():
            mean, std, _n = seed_stats(values(group, key))
            row[f"{name} mean"], row[f"{name} std"] = mean, std
        rows.append(row)
    if reference:
        row = {"method": RANDOM_ROW, "seeds": 0}
        for key, (name, _) in keys.items():
            row[f"{name} mean"], row[f"{name} std"] = float(reference.get(key, math.nan)), math.nan
        rows.append(row)
    cols = ["method", "seeds"] + [f"{n} {s}" for n, _ in keys.values() for s in ("mean", "std")]
    return pd.DataFrame(rows, columns=cols).set_index("method")


def to_markdown(table: pd.DataFrame, keys: Mapping[str, tuple[str, bool]] = MAIN_METRICS) -> str:
    """Markdown of :func:`main_comparison`: ``mean ± std`` cells, arrows for the better direction."""
    out = pd.DataFrame(index=table.index)
    out["seeds"] = table["seeds"]
    for name, higher in keys.values():
        mean, std = table[f"{name} mean"], table[f"{name} std"]
        cells = ["–" if not math.isfinite(m) else f"{m:.3f}" + (f" ± {s:.3f}" if math.isfinite(s) else "")
                 for m, s in zip(mean, std)]
        out[f"{name} {'↑' if higher else '↓'}"] = cells
    return out.to_markdown()


def claims_markdown(claims: pd.DataFrame) -> str:
    """Markdown of the claims table; ``|`` inside cells (``|d|``, ``|x|``) escaped so rows stay rows."""
    return claims.map(lambda v: v.replace("|", "\\|") if isinstance(v, str) else v).to_markdown(index=False)


def write_tables(out_dir, main: pd.DataFrame | None = None, claims: pd.DataFrame | None = None) -> list[Path]:
    """Write ``main_comparison.md/.csv`` and ``claims.md/.csv`` under ``out_dir``; returns the paths."""
    out = resolve(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if main is not None:
        main.to_csv(out / "main_comparison.csv", float_format="%.6g")
        (out / "main_comparison.md").write_text(
            "Main comparison (main study): mean ± sample std over seeds; fractions in [0, 1]; "
            "↑ higher is better, ↓ lower is better.\n\n" + to_markdown(main) + "\n")
        written += [out / "main_comparison.csv", out / "main_comparison.md"]
    if claims is not None:
        claims.to_csv(out / "claims.csv", index=False)
        (out / "claims.md").write_text("Claims of docs/METHODS.md section 5, measured on these runs.\n\n"
                                       + claims_markdown(claims) + "\n")
        written += [out / "claims.csv", out / "claims.md"]
    return written
