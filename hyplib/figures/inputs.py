"""From loaded runs (:func:`hyplib.figures.runs.load_runs`) and the benchmark folder to the
keyword arguments of each figure function: ``prepare(name, runs, bench_dir) -> dict``.

Arrays come from the evaluation's ``embeddings.npz`` when it holds them (``radius_<kind>``,
``eig_<modality>``, ``traversal_idx``); otherwise, and for quantities the evaluation does not
save, they are recomputed from the run's ``final.pt`` with :mod:`hyplib.figures.embed`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hyplib.data.benchmarks import load_benchmark
from hyplib.evaluation import _common as C
from hyplib.figures import embed
from hyplib.figures.runs import Run, group_by_config, load_model, method_label, select, settings

__all__ = ["prepare", "PREPARE", "CHAIN_KEYS"]

#: Chain metrics of ``metrics.json`` and their panel names in ``chain_accuracy``.
CHAIN_KEYS = {"chains/depth1_acc": "image depth 1", "chains/depth2_acc": "image depth 2",
              "chains/text_depth1_acc": "text depth 1", "chains/text_depth2_acc": "text depth 2"}
ZS_KEY = "zeroshot/mean_per_class_acc"


def _main(runs: list[Run], methods=None) -> list[Run]:
    """Runs of ``methods`` in the main study if any is tagged main, else all of them."""
    chosen = select(runs, methods=methods)
    main = select(chosen, study="main")
    return main or chosen


def _first_model(group: list[Run]):
    for run in group:
        model, method = load_model(run)
        if model is not None:
            return run, model, method
    return None, None, None


def _kind_embeddings(model, bench_dir, kinds) -> dict:
    """The diagnostics' inputs per kind (see :mod:`hyplib.evaluation.driver`)."""
    out = {}
    if {"image", "text"} & set(kinds):
        enc = embed.encode_retrieval(model, bench_dir)
        out.update({k: enc[k] for k in ("image", "text") if k in kinds})
    if {"box_image", "box_text"} & set(kinds) and (Path(bench_dir) / "chains.json").is_file():
        # Real data has no chains benchmark: the box kinds are then left out of the figure.
        ch = load_benchmark(bench_dir, "chains")
        if "box_image" in kinds:
            crops = [C.encode_images(model, ch[k]) for k in ("part", "subpart") if k in ch]
            out["box_image"] = torch.cat(crops)
        if "box_text" in kinds and ch.get("text_chains"):
            out["box_text"] = C.encode_texts(model, [c[1] for c in ch["text_chains"]])
    return out


def _radii(group: list[Run], kinds, bench_dir) -> dict[str, np.ndarray]:
    """Seeds pooled ``{kind: radii}`` from the arrays, recomputed from a checkpoint if absent."""
    out = {}
    for kind in kinds:
        found = [np.asarray(r.arrays[f"radius_{kind}"]) for r in group if f"radius_{kind}" in r.arrays]
        if found:
            out[kind] = np.concatenate(found)
    missing = [k for k in kinds if k not in out]
    if missing:
        run, model, method = _first_model(group)
        if model is not None:
            curv = C.resolve_curv(model)
            for kind, x in _kind_embeddings(model, bench_dir, missing).items():
                out[kind] = C.distance_to_root(method, x, curv).double().numpy()
    return out


def _sample_embeddings(group: list[Run], bench_dir, max_images: int = 200) -> dict | None:
    """Image and caption embeddings of the retrieval benchmark for the first run of ``group``:
    the evaluation's samples (``emb_image``, ``emb_text``, ``curv`` in its arrays) when present,
    else encoded from the first checkpoint. Keys as :func:`hyplib.figures.embed.encode_retrieval`."""
    for run in group:
        a = run.arrays
        if {"emb_image", "emb_text"} <= set(a):
            n = min(max_images, len(a["emb_image"]))
            cap_img = np.asarray(load_benchmark(bench_dir, "retrieval")["caption_image"])[:len(a["emb_text"])]
            keep = np.flatnonzero(cap_img < n)
            return {"image": torch.as_tensor(a["emb_image"][:n]),
                    "text": torch.as_tensor(a["emb_text"][keep]), "caption_image": cap_img[keep],
                    "curv": torch.as_tensor(np.asarray(a.get("curv", 1.0))), "run": run}
    run, model, _ = _first_model(group)
    if model is None:
        return None
    return {**embed.encode_retrieval(model, bench_dir, max_images=max_images), "run": run}


def distance_to_root(runs, bench_dir) -> dict:
    radii, units = {}, {}
    for label, group in group_by_config(_main(runs, ["meru", "clip"])).items():
        if group[0].method == "clip":
            enc = _sample_embeddings(group, bench_dir, max_images=10**9)
            if enc is not None:
                r_i, r_t = embed.sphere_root_distance(enc["image"], enc["text"])
                radii[label], units[label] = {"image": r_i, "text": r_t}, "angle to embedding centroid (rad)"
                continue
            units[label] = "|x| (unit vectors)"
        radii[label] = _radii(group, ("image", "text"), bench_dir)
    return {"radii": radii, "units": units}


def norms_by_kind(runs, bench_dir) -> dict:
    kinds = ("image", "text", "box_image", "box_text")
    return {"radii": {label: _radii(group, kinds, bench_dir)
                      for label, group in group_by_config(_main(runs, ["hycoclip"])).items()}}


def curvature_robustness(runs, bench_dir) -> dict:
    rows = []
    for run in select(runs, methods=["meru", "atmg"]):
        cfg = settings(run)
        rows.append({"label": method_label(run.method), "curv": float(cfg.get("curv_init", float("nan"))),
                     "seed": run.seed, "acc": run.metric(ZS_KEY),
                     "learnable": bool(cfg.get("learn_curv", True))})
    return {"table": pd.DataFrame(rows, columns=["label", "curv", "seed", "acc", "learnable"])}


def eigen_spectra(runs, bench_dir) -> dict:
    from hyplib.evaluation.diagnostics import eigen_spectrum

    spectra = {}
    for label, group in group_by_config(_main(runs)).items():
        by_mod = {m: [np.asarray(r.arrays[f"eig_{m}"]) for r in group if f"eig_{m}" in r.arrays]
                  for m in ("image", "text")}
        if not any(by_mod.values()):
            run, model, method = _first_model(group)
            if model is not None:
                enc = embed.encode_retrieval(model, bench_dir)
                curv = C.resolve_curv(model)
                by_mod = {m: [eigen_spectrum(C.tangent(method, enc[m], curv).double().numpy())]
                          for m in ("image", "text")}
        spectra[label] = by_mod
    return {"spectra": spectra}


def chain_accuracy(runs, bench_dir) -> dict:
    groups = group_by_config(_main(runs))
    rows = [{"label": label, "seed": run.seed, "chain": name, "acc": run.metric(key)}
            for key, name in CHAIN_KEYS.items() for label, group in groups.items() for run in group
            if math.isfinite(run.metric(key))]
    return {"table": pd.DataFrame(rows, columns=["label", "seed", "chain", "acc"])}


def _text_norm_ratio(run: Run) -> np.ndarray | None:
    if "radius_text" not in run.arrays:
        return None
    c = run.metric("diagnostics/curv_mean")
    c = c if math.isfinite(c) and c > 0 else float(settings(run).get("curv_init", 1.0))
    K = float(settings(run).get("min_radius", 0.1))
    # |x| = sinh(sqrt(c) r)/sqrt(c) and the boundary is 2K/sqrt(c): the ratio does not depend on c otherwise.
    return np.sinh(math.sqrt(c) * np.asarray(run.arrays["radius_text"], dtype=np.float64)) / (2.0 * K)


def cone_collapse(runs, bench_dir) -> dict:
    chosen = _main(runs, ["meru", "hycoclip", "argent"])
    norms, logs = {}, []
    for label, group in group_by_config(chosen).items():
        ratios = [x for x in (_text_norm_ratio(r) for r in group) if x is not None]
        if ratios:
            norms[label] = np.concatenate(ratios)
        logs += [{"label": label, "seed": r.seed, "log": r.log} for r in group if r.log is not None]
    weights, wlabel = None, "ARGENT"
    for label, group in group_by_config(select(chosen, methods=["argent"])).items():
        run, model, method = _first_model(group)
        if model is not None:
            weights, wlabel = embed.pep_pair_weights(model, method, bench_dir), f"{label} seed {run.seed}"
            break
    return {"parent_norms": norms, "entail_logs": logs, "weights": weights, "weights_label": wlabel}


def phyclip_factor_norms(runs, bench_dir) -> dict:
    norms = {}
    for label, group in group_by_config(select(runs, methods=["phyclip"])).items():
        run, model, method = _first_model(group)
        if model is not None:
            norms[label] = embed.prompt_factor_norms(model, method, bench_dir)
    return {"norms": norms}


def _pick_cones(text2: np.ndarray, caption_image: np.ndarray, n: int, curv: float) -> list[int]:
    r = np.arcsinh(math.sqrt(curv) * np.linalg.norm(text2, axis=1))
    order = np.argsort(r)
    picks, used = [], set()
    for q in np.linspace(0.1, 0.9, n):
        for j in order[int(q * (len(order) - 1)):]:
            if int(caption_image[j]) not in used:
                picks.append(int(j))
                used.add(int(caption_image[j]))
                break
    return picks


def poincare_embeddings(runs, bench_dir, *, n_cones: int = 3, max_images: int = 150) -> dict:
    points = {}
    for label, group in group_by_config(_main(runs, ["meru", "hycoclip", "atmg", "argent"])).items():
        enc = _sample_embeddings(group, bench_dir, max_images=max_images)
        if enc is None or enc["curv"].numel() != 1 or settings(enc["run"]).get("k") is not None:
            continue  # lorentz methods only (one curvature)
        c = float(enc["curv"])
        img2, txt2 = embed.h2_projection(enc["image"], enc["text"], curv=c)
        cones = _pick_cones(txt2, enc["caption_image"], n_cones, c)
        points[label] = {"image": img2, "text": txt2, "curv": c, "cones": cones,
                         "pairs": [(j, int(enc["caption_image"][j])) for j in cones]}
    return {"points": points}


def traversals(runs, bench_dir, *, n_images: int = 3) -> dict:
    hc = load_benchmark(bench_dir, "hierarcaps")
    chains = [list(c) for c in hc["captions"]]
    paths = {}
    hyperbolic = ["meru", "hycoclip", "argent", "atmg", "phyclip"]
    for label, group in group_by_config(_main(runs, hyperbolic)).items():
        found = [r.arrays["traversal_idx"] for r in group if "traversal_idx" in r.arrays]
        if found:
            paths[label] = np.asarray(found[0])[:n_images]
            continue
        run, model, method = _first_model(group)
        if model is not None:
            paths[label] = embed.traversal_paths(model, method, bench_dir, n_images=n_images)
    return {"captions": [s for c in chains for s in c], "paths": paths,
            "levels": np.tile(np.arange(len(chains[0])), len(chains)) if chains else None,
            "thumbnails": np.asarray(hc["images"][:n_images]), "n_images": n_images}


def trajectories(runs, bench_dir) -> dict:
    logs = []
    for group in group_by_config(select(runs, methods=["meru", "atmg", "phyclip"]) or runs).values():
        for r in group:
            if r.log is not None:
                logs.append({"label": method_label(r.method), "seed": r.seed,
                             "fixed": not settings(r).get("learn_curv", True), "log": r.log})
    return {"logs": logs}


#: Figure name -> its input preparation.
PREPARE: dict[str, Callable] = {f.__name__: f for f in (
    distance_to_root, norms_by_kind, curvature_robustness, eigen_spectra, chain_accuracy, cone_collapse,
    phyclip_factor_norms, poincare_embeddings, traversals, trajectories)}


def prepare(name: str, runs: list[Run], bench_dir) -> dict:
    """Keyword arguments of figure ``name`` from loaded ``runs`` and ``bench_dir``."""
    if name not in PREPARE:
        raise ValueError(f"unknown figure {name!r}; valid: {sorted(PREPARE)}")
    return PREPARE[name](runs, bench_dir)
