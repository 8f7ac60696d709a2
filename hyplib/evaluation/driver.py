"""Run every protocol on a benchmark folder and write one metrics JSON per run.

:func:`run_all` loops over the protocol registry (:mod:`hyplib.evaluation.protocols`: each
protocol's name, the benchmarks it needs, what it writes), encodes each benchmark once
(batched, ``no_grad``, eval mode), calls the evaluators on the embeddings and returns one
flat dict ``"<protocol>/<metric>" -> float`` (plus ``time/<protocol>`` seconds). Raw arrays
for figures (distance-to-root per kind, spectra, chain radii, ...) go into the optional
``arrays`` dict. :func:`write_metrics` writes ``{"metrics", "config", "config_hash", "seed",
...}`` with the config hash the sha256 of the config's canonical JSON.

Benchmarks read (``hyplib.data.benchmarks.load_benchmark``): ``zeroshot`` (+ ``taxonomy``
for the hierarchy metrics), ``retrieval``, ``pep``, ``chains``, ``composition``,
``hierarcaps``; the retrieval protocol also scores every ``retrieval_<name>`` present (real data:
``retrieval_flickr30k``) under the prefix ``retrieval_<name>/``. A benchmark that the data
preparation listed as unavailable (``manifest.json`` beside ``bench_dir``, key ``unavailable``)
is reported as "not available for this data" with the reason, in ``report["skipped"]``.
The diagnostics use the retrieval images/captions as ``image``/``text``,
the chains' part and sub-part crops as ``box_image`` and the text chains' noun phrases as
``box_text``; the root traversal runs from hierarcaps images over all hierarcaps captions.

Arrays (``run_all(..., arrays=d)``; saved by the evaluation notebook as ``embeddings.npz``):
``radius_<kind>`` (N,) distance to root per kind (image, text, box_image, box_text),
``emb_<kind>`` (<=512, D) raw embeddings, ``curv``, ``eig_<image|text>`` (D,) covariance
spectra of the tangent features, ``factor_radius_<modality>`` (k,) (product only),
``chains_radius_<whole|part|subpart>`` (N,), ``text_chains_radius`` (N, 3),
``hierarcaps_radius`` (N, 4), ``traversal_idx`` / ``traversal_cone_idx`` (n, steps) indices
into the flattened hierarcaps captions (-1 = none), ``zeroshot_pred``, ``zeroshot_labels``.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from hyplib.evaluation import _common as C
from hyplib.evaluation import hierarchy as _hierarchy
from hyplib.evaluation import protocols as P
from hyplib.evaluation.protocols import EMB_SAMPLE, NOT_AVAILABLE  # noqa: F401 (re-exported)
from hyplib.tree import Tree

#: Protocol names, in the order ``run_all`` runs them (:data:`hyplib.evaluation.protocols.REGISTRY`).
PROTOCOLS = tuple(P.REGISTRY)
#: Benchmark files each protocol needs (diagnostics uses whatever is there).
NEEDS = {name: p.needs for name, p in P.REGISTRY.items()}


def config_hash(config: Mapping) -> str:
    """sha256 hex digest of the canonical JSON of ``config`` (sorted keys, no spaces)."""
    canonical = json.dumps(_plain(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _plain(x):
    """JSON-safe copy: numpy/torch scalars to Python, tuples to lists, NaN/inf to None."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_metrics(path, metrics: Mapping, config: Mapping, seed: int, **extra) -> Path:
    """Write ``{"metrics", "config", "config_hash", "seed", **extra}`` as JSON to ``path``.

    Non-finite metric values are written as ``null`` (strict JSON).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"metrics": _plain(dict(metrics)), "config": _plain(config), "config_hash": config_hash(config),
              "seed": int(seed), **_plain(extra)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, allow_nan=False))
    tmp.replace(path)
    return path


def load_model(checkpoint, device: str = "cpu"):
    """Rebuild a trained model from a checkpoint (``final.pt``, ``checkpoints/step_*.pt`` or a
    run directory) through :func:`hyplib.train.load_trained`.

    The checkpoint is ``{"model": state_dict, "config": cfg, ...}`` with ``cfg["method"]``
    (a registry name), ``cfg["method_overrides"]`` and ``cfg["model"]`` (the model config).

    Returns:
        ``(model, cfg)`` with the model in eval mode on ``device``.
    """
    from hyplib.train import load_trained

    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    model, _, cfg = load_trained(path, map_location="cpu")
    return model.to(device).eval(), cfg


def _unavailable(bench_dir: Path) -> dict[str, str]:
    """Benchmarks the data preparation declared unavailable (``manifest.json`` beside ``bench_dir``)."""
    path = bench_dir.parent / "manifest.json"
    if not path.is_file():
        return {}
    try:
        return {str(k): str(v) for k, v in (json.loads(path.read_text()).get("unavailable") or {}).items()}
    except (json.JSONDecodeError, AttributeError):
        return {}


def _missing_reason(s: P.Session, missing: list[str]) -> str:
    gone = {b: s.unavailable[b] for b in missing if b in s.unavailable}
    if gone:
        return f"{NOT_AVAILABLE}: " + "; ".join(f"{b} ({why})" for b, why in gone.items())
    return f"benchmark(s) {missing} not in {s.bench_dir}"


def run_all(model, bench_dir, *, protocols: Sequence[str] | None = None, method=None, tree: Tree | None = None,
            batch_size: int = 128, score: str = "method", prompt_agg: str = "auto",
            chain_direction: str = "outward", text_direction: str = "outward",
            traversal_images: int = 32, traversal_steps: int = 10, cone_filter: bool = True,
            probe_cost: float | str = 1.0, log_path=None, arrays: dict | None = None,
            report: dict | None = None) -> dict:
    """Evaluate ``model`` on every benchmark in ``bench_dir``, one protocol of
    :data:`hyplib.evaluation.protocols.REGISTRY` after the other.

    Args:
        model: a ``hyplib.models`` model (its ``.method`` is used unless ``method`` is given).
        bench_dir: folder of ``<name>.npz/.json`` benchmarks.
        protocols: subset of :data:`PROTOCOLS`; None = all whose benchmark is present
            (explicitly requested protocols whose benchmark is missing raise).
        tree: taxonomy for the hierarchy metrics (default: ``bench_dir/taxonomy``, or the
            ImageNet WordNet tree when the zero-shot classes are the 1,000 ImageNet wnids).
        score: similarity variant (``"method"``, or ``"product_inner"``/``"product_dist"``).
        prompt_agg: zero-shot prompt aggregation (see :mod:`hyplib.evaluation.zeroshot`);
            ``"auto"``: the method's ``EVAL_DEFAULTS["prompt_agg"]``.
        chain_direction, text_direction: see :mod:`hyplib.evaluation.chains`.
        traversal_images, traversal_steps, cone_filter: root traversal settings.
        probe_cost: the linear probe's inverse regularisation strength, or ``"sweep"`` for
            CLIP's per-fold search (:func:`hyplib.evaluation.probe.linear_probe`).
        log_path: a training ``log.jsonl`` for curvature/alpha trajectories (optional).
        arrays: if a dict, filled with raw numpy arrays for figures.
        report: if a dict, filled with ``{"skipped": {protocol: reason}, "method": name}``.

    Returns:
        flat ``{"<protocol>/<metric>": float, "time/<protocol>": seconds}``.
    """
    bench_dir = Path(bench_dir)
    if not bench_dir.is_dir():
        raise FileNotFoundError(f"benchmark folder not found: {bench_dir}")
    explicit = protocols is not None
    protocols = list(PROTOCOLS if protocols is None else protocols)
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; valid: {list(PROTOCOLS)}")
    method = C.resolve_method(model, method)
    s = P.Session(model=model, method=method, curv=C.resolve_curv(model), bench_dir=bench_dir, tree=tree,
                  arrays={} if arrays is None else arrays, report={} if report is None else report,
                  unavailable=_unavailable(bench_dir),
                  options={"batch_size": batch_size, "score": score, "prompt_agg": prompt_agg,
                           "chain_direction": chain_direction, "text_direction": text_direction,
                           "traversal_images": traversal_images, "traversal_steps": traversal_steps,
                           "cone_filter": cone_filter, "probe_cost": probe_cost, "log_path": log_path})
    s.report.setdefault("skipped", {})
    s.report["method"] = getattr(method, "name", str(method))
    if "hierarchy" in protocols and s.bench("zeroshot") is not None:
        t = s.default_tree()
        if t is not None:  # a class/tree mismatch fails before any encoding
            _hierarchy.leaf_index_map(s.bench("zeroshot")["class_ids"], t)
    for name in protocols:
        proto = P.REGISTRY[name]
        missing = proto.missing(s)
        why = _missing_reason(s, missing) if missing else None
        if why and explicit:
            raise FileNotFoundError(f"protocol {name!r}: {why}")
        if why is None and proto.cones and not s.space.hyperbolic:
            why = f"{method.geometry} method: no entailment cones"
        t0 = time.perf_counter()
        if why is None:
            why = proto.run(s)
            if why and explicit:
                raise FileNotFoundError(f"protocol {name!r}: {why}")
        if why:
            s.report["skipped"][name] = why
            continue
        s.metrics[f"time/{name}"] = time.perf_counter() - t0
    for name, why in s.report["skipped"].items():
        warnings.warn(f"protocol {name!r} skipped: {why}", stacklevel=2)
    return s.metrics
