"""Evaluate the authors' released checkpoints: the catalog, the plan, one evaluation, the table.

``snakemake --configfile config/released.yaml`` (rules in ``workflow/rules/released.smk``):

1. the ``released.data`` section (the ``data.paths`` keys of the real-data path, README "Real
   data", without training shards) is read into ``results/released/data/bench`` by
   :func:`hyplib.data.real.prepare_real`;
2. every checkpoint given under ``released.checkpoints`` is loaded by
   :func:`hyplib.released.load_released` with its catalog method and evaluated by
   :func:`hyplib.evaluation.run_all` on every protocol its data allows
   (``results/released/eval/<name>/{metrics.json, embeddings.npz}``);
3. :func:`write_table` puts the papers' headline numbers (docs/METHODS.md section 7) beside the
   measured ones in ``results/tables/released.md`` (and ``.csv``); a checkpoint left out is a
   row marked "not given";
4. the figures that make sense for trained models and the given data
   (:func:`hyplib.workflow.released_figures`) are drawn by the usual figure notebooks into
   ``results/released/figures/``.

Measured columns: ImageNet = ``zeroshot/mean_per_class_acc`` (MERU's protocol), COCO R@5 =
``retrieval/{t2i,i2t}_R@5``, TIE / LCA / J = ``hierarchy/reference/*`` (HyCoCLIP's code), all in
the papers' units (percent for accuracies and recalls).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from hyplib.paths import resolve

__all__ = ["CATALOG", "COLUMNS", "plan_released", "evaluate_released", "write_table",
           "OUT_DIR"]

OUT_DIR = "results/released"

#: Released file -> where it comes from and what its paper reports (docs/METHODS.md section 7).
#: ``file``: the name the authors publish it under; ``approx``: the paper copy was garbled.
CATALOG: dict[str, dict] = {
    "meru_vit_s": {"method": "meru", "vit": "S", "paper": "MERU", "data": "RedCaps 12M", "file": "meru_vit_s.pth",
                   "published": {"imagenet": 34.4, "coco_t2i_R@5": 30.5, "coco_i2t_R@5": 39.0}},
    "meru_vit_b": {"method": "meru", "vit": "B", "paper": "MERU", "data": "RedCaps 12M", "file": "meru_vit_b.pth",
                   "published": {"imagenet": 37.5}},
    "meru_vit_l": {"method": "meru", "vit": "L", "paper": "MERU", "data": "RedCaps 12M", "file": "meru_vit_l.pth",
                   "published": {"imagenet": 38.8}, "approx": True},
    "clip_vit_s": {"method": "clip", "vit": "S", "paper": "MERU", "data": "RedCaps 12M", "file": "clip_vit_s.pth",
                   "published": {"coco_t2i_R@5": 29.9, "coco_i2t_R@5": 37.5}},
    "clip_vit_b": {"method": "clip", "vit": "B", "paper": "MERU", "data": "RedCaps 12M", "file": "clip_vit_b.pth",
                   "published": {}},
    "clip_vit_l": {"method": "clip", "vit": "L", "paper": "MERU", "data": "RedCaps 12M", "file": "clip_vit_l.pth",
                   "published": {}},
    "grit_clip_vit_s": {"method": "clip", "vit": "S", "paper": "HyCoCLIP", "data": "GRIT 20.5M",
                        "file": "clip_vit_s.pth (avik-pal/hycoclip)",
                        "published": {"imagenet": 36.7, "coco_t2i_R@5": 53.7, "coco_i2t_R@5": 69.3,
                                      "TIE": 4.02, "LCA": 2.39, "J": 0.76}},
    "grit_clip_vit_b": {"method": "clip", "vit": "B", "paper": "HyCoCLIP", "data": "GRIT 20.5M",
                        "file": "clip_vit_b.pth (avik-pal/hycoclip)",
                        "published": {"imagenet": 40.6, "TIE": 3.60, "LCA": 2.21, "J": 0.79}},
    "grit_meru_vit_s": {"method": "meru", "vit": "S", "paper": "HyCoCLIP", "data": "GRIT 20.5M",
                        "file": "meru_vit_s.pth (avik-pal/hycoclip)",
                        "published": {"imagenet": 35.4, "coco_t2i_R@5": 53.6, "coco_i2t_R@5": 68.8,
                                      "TIE": 4.08, "LCA": 2.39, "J": 0.76}},
    "grit_meru_vit_b": {"method": "meru", "vit": "B", "paper": "HyCoCLIP", "data": "GRIT 20.5M",
                        "file": "meru_vit_b.pth (avik-pal/hycoclip)",
                        "published": {"imagenet": 40.1, "TIE": 3.63, "LCA": 2.22, "J": 0.78}},
    "hycoclip_vit_s": {"method": "hycoclip", "vit": "S", "paper": "HyCoCLIP", "data": "GRIT 20.5M",
                       "file": "hycoclip_vit_s.pth",
                       "published": {"imagenet": 41.7, "coco_t2i_R@5": 55.2, "coco_i2t_R@5": 69.5,
                                     "TIE": 3.55, "LCA": 2.17, "J": 0.79}},
    "hycoclip_vit_b": {"method": "hycoclip", "vit": "B", "paper": "HyCoCLIP", "data": "GRIT 20.5M",
                       "file": "hycoclip_vit_b.pth",
                       "published": {"imagenet": 45.8, "TIE": 3.17, "LCA": 2.05, "J": 0.81}},
    "atmg_vit_s": {"method": "atmg", "vit": "S", "paper": "ATMG", "data": "RedCaps 8M subset", "file": "atmg_vit_s.pth",
                   "published": {"imagenet": 29.7, "coco_t2i_R@5": 23.7, "coco_i2t_R@5": 32.6}},
    "atmg_vit_b": {"method": "atmg", "vit": "B", "paper": "ATMG", "data": "RedCaps 8M subset", "file": "atmg_vit_b.pth",
                   "published": {}},
    "phyclip_vit_b": {"method": "phyclip", "vit": "B", "paper": "PHyCLIP", "data": "GRIT", "file": "phyclip_vit_b.pth",
                      "published": {"imagenet": 44.31, "coco_t2i_R@5": 58.03, "coco_i2t_R@5": 70.94,
                                    "TIE": 3.294, "J": 0.8059}, "approx": True},
}

#: Table column -> (metrics.json key, factor to the papers' unit, decimals).
COLUMNS = {
    "imagenet": ("zeroshot/mean_per_class_acc", 100.0, 1),
    "coco_t2i_R@5": ("retrieval/t2i_R@5", 100.0, 1),
    "coco_i2t_R@5": ("retrieval/i2t_R@5", 100.0, 1),
    "TIE": ("hierarchy/reference/TIE", 1.0, 2),
    "LCA": ("hierarchy/reference/LCA", 1.0, 2),
    "J": ("hierarchy/reference/J", 1.0, 3),
}
_HEADERS = {"imagenet": "ImageNet", "coco_t2i_R@5": "COCO t->i R@5", "coco_i2t_R@5": "COCO i->t R@5",
            "TIE": "TIE", "LCA": "LCA", "J": "J"}

def plan_released(section: Mapping | None, out_dir: str = OUT_DIR) -> list[dict]:
    """Every catalog entry with its checkpoint (or None: not given), in catalog order.

    Args:
        section: the config's ``released`` mapping: ``root`` (folder relative checkpoint paths
            are taken under) and ``checkpoints`` (catalog name -> path or null).

    Returns:
        dicts ``{name, method, variant, seed, study, overrides, train_dir, eval_dir, checkpoint,
        given}``: run specs the figure notebooks accept, plus the checkpoint path.

    Raises:
        ValueError: a name not in :data:`CATALOG`, or a given path that is not a file (the
            config key and the resolved path named).
    """
    section = dict(section or {})
    given = {k: v for k, v in dict(section.get("checkpoints") or {}).items() if v not in (None, "")}
    unknown = sorted(set(given) - set(CATALOG))
    if unknown:
        raise ValueError(f"config key released.checkpoints.{unknown[0]}: unknown checkpoint; valid: {list(CATALOG)}")
    root = resolve(str(section.get("root", ".")))
    out = []
    for name, entry in CATALOG.items():
        path = None
        if name in given:
            path = root / str(given[name])
            if not path.is_file():
                raise ValueError(f"config key released.checkpoints.{name}: file {path} "
                                 f"{'is not a file' if path.exists() else 'does not exist'} "
                                 f"(the authors publish it as {entry['file']})")
        out.append({"name": name, "method": entry["method"], "variant": f"ViT-{entry['vit']}, {entry['paper']}",
                    "seed": 0, "study": ["main"], "overrides": {}, "train_dir": "",
                    "eval_dir": f"{out_dir}/eval/{name}", "checkpoint": None if path is None else str(path),
                    "given": path is not None})
    return out


def evaluate_released(name: str, checkpoint, bench_dir, out_json, out_npz, *, method: str | None = None,
                      device: str = "cpu", protocols=None, batch_size: int = 128) -> dict:
    """Load one released checkpoint and run every protocol whose benchmark is in ``bench_dir``.

    Writes ``out_json`` (:func:`hyplib.evaluation.write_metrics`: metrics, the checkpoint's
    ``released_info`` as config, skipped protocols) and ``out_npz`` (the figures' arrays).
    Returns the metrics.
    """
    import numpy as np

    from hyplib.evaluation import run_all, write_metrics
    from hyplib.released import load_released

    method = method or CATALOG.get(name, {}).get("method")
    model = load_released(checkpoint, method=method, map_location=device)
    arrays, report = {}, {}
    metrics = run_all(model, bench_dir, protocols=protocols, arrays=arrays, report=report, batch_size=batch_size)
    info = model.released_info
    config = {"method": info["method"], "released": name, "sizes": info["sizes"], "geometry": info["geometry"]}
    write_metrics(out_json, metrics, config, 0, method=info["method"], checkpoint=str(checkpoint),
                  skipped=report["skipped"], released_info=info)
    arrays["method"] = np.array(info["method"])
    arrays["geometry"] = np.array(info["geometry"])
    Path(out_npz).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_npz, **arrays)
    return metrics


def _fmt(value, factor: float, decimals: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{float(value) * factor:.{decimals}f}"


def table_rows(planned: list[dict]) -> list[dict]:
    """One row per catalog entry: published and measured values (strings), status."""
    import json

    rows = []
    for run in planned:
        entry = CATALOG[run["name"]]
        metrics, skipped = {}, {}
        if run["given"]:
            path = Path(run["eval_dir"]) / "metrics.json"
            if path.is_file():
                record = json.loads(path.read_text())
                metrics, skipped = record.get("metrics", {}), record.get("skipped", {})
        status = "not given" if not run["given"] else ("evaluated" if metrics else "no metrics.json")
        row = {"checkpoint": run["name"], "model": f"{run['method']} ViT-{entry['vit']}",
               "paper, data": f"{entry['paper']}, {entry['data']}", "status": status}
        for col, (key, factor, decimals) in COLUMNS.items():
            pub = entry["published"].get(col)
            row[f"{col} published"] = "-" if pub is None else (f"{pub:g}" + (" (?)" if entry.get("approx") else ""))
            row[f"{col} measured"] = _fmt(metrics.get(key), factor, decimals) if metrics else "-"
        row["skipped"] = "; ".join(sorted(skipped)) if skipped else ""
        rows.append(row)
    return rows


def write_table(planned: list[dict], out_md, out_csv=None) -> Path:
    """``results/tables/released.md``: published beside measured, every catalog entry a row."""
    import pandas as pd

    rows = table_rows(planned)
    frame = pd.DataFrame(rows)
    cols = ["checkpoint", "model", "paper, data", "status"]
    for col in COLUMNS:
        cols += [f"{col} published", f"{col} measured"]
    cols.append("skipped")
    frame = frame[cols]
    out_md = Path(out_md)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    header = ["checkpoint", "model", "paper, data", "status"] + [f"{_HEADERS[c]} pub. / meas." for c in COLUMNS] + \
        ["protocols skipped"]
    lines = ["# Released checkpoints: published vs measured", "",
             "Published: docs/METHODS.md section 7 ((?) = read from a garbled copy, approximate). Measured: this "
             "project's evaluation suite on the data in the config (ImageNet: mean per-class accuracy, %; "
             "COCO: R@5, %; TIE / LCA / J: HyCoCLIP's reference mode). '-': not reported / not measured.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["checkpoint"], r["model"], r["paper, data"], r["status"]]
        cells += [f"{r[f'{c} published']} / {r[f'{c} measured']}" for c in COLUMNS]
        cells.append(r["skipped"])
        lines.append("| " + " | ".join(cells) + " |")
    out_md.write_text("\n".join(lines) + "\n")
    if out_csv is not None:
        frame.to_csv(out_csv, index=False)
    return out_md
