"""Run every protocol on a benchmark folder and write one metrics JSON per run.

:func:`run_all` encodes each benchmark once (batched, ``no_grad``, eval mode), calls the
evaluators on the embeddings and returns one flat dict ``"<protocol>/<metric>" -> float``
(plus ``time/<protocol>`` seconds). Raw arrays for figures (distance-to-root per kind,
spectra, chain radii, ...) go into the optional ``arrays`` dict. :func:`write_metrics`
writes ``{"metrics", "config", "config_hash", "seed", ...}`` with the config hash the
sha256 of the config's canonical JSON.

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
from hyplib.evaluation import chains as _chains
from hyplib.evaluation import composition as _composition
from hyplib.evaluation import diagnostics as _diag
from hyplib.evaluation import hierarcaps as _hierarcaps
from hyplib.evaluation import hierarchy as _hierarchy
from hyplib.evaluation import pep as _pep
from hyplib.evaluation import retrieval as _retrieval
from hyplib.evaluation import zeroshot as _zeroshot
from hyplib.tree import Tree

#: How a skipped protocol's reason starts when the data lacks its benchmark (the tables read it).
NOT_AVAILABLE = "not available for this data"
#: Rows of raw embeddings per kind kept in ``arrays`` (``emb_<kind>``) for figures.
EMB_SAMPLE = 512

PROTOCOLS = ("zeroshot", "hierarchy", "retrieval", "pep", "chains", "composition", "hierarcaps", "diagnostics")
#: Benchmark files each protocol needs (diagnostics uses whatever is there).
NEEDS = {"zeroshot": ("zeroshot",), "hierarchy": ("zeroshot",), "retrieval": ("retrieval",), "pep": ("pep",),
         "chains": ("chains",), "composition": ("composition",), "hierarcaps": ("hierarcaps",),
         "diagnostics": ()}


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


def _load(bench_dir: Path, name: str) -> dict | None:
    from hyplib.data.benchmarks import load_benchmark

    if not (bench_dir / f"{name}.json").is_file():
        return None
    return load_benchmark(bench_dir, name)


def _unavailable(bench_dir: Path) -> dict[str, str]:
    """Benchmarks the data preparation declared unavailable (``manifest.json`` beside ``bench_dir``)."""
    path = bench_dir.parent / "manifest.json"
    if not path.is_file():
        return {}
    try:
        return {str(k): str(v) for k, v in (json.loads(path.read_text()).get("unavailable") or {}).items()}
    except (json.JSONDecodeError, AttributeError):
        return {}


def _retrieval_sets(bench_dir: Path) -> list[str]:
    """``retrieval`` and every ``retrieval_<name>`` benchmark present, ``retrieval`` first."""
    names = sorted(p.stem for p in bench_dir.glob("retrieval_*.json"))
    return (["retrieval"] if (bench_dir / "retrieval.json").is_file() else []) + names


def _prefixed(prefix: str, d: Mapping) -> dict:
    return {f"{prefix}/{k}": float(v) for k, v in d.items()}


def run_all(model, bench_dir, *, protocols: Sequence[str] | None = None, method=None, tree: Tree | None = None,
            batch_size: int = 128, score: str = "method", prompt_agg: str = "auto",
            chain_direction: str = "outward", text_direction: str = "outward",
            traversal_images: int = 32, traversal_steps: int = 10, cone_filter: bool = True,
            log_path=None, arrays: dict | None = None, report: dict | None = None) -> dict:
    """Evaluate ``model`` on every benchmark in ``bench_dir``.

    Args:
        model: a ``hyplib.models`` model (its ``.method`` is used unless ``method`` is given).
        bench_dir: folder of ``<name>.npz/.json`` benchmarks.
        protocols: subset of :data:`PROTOCOLS`; None = all whose benchmark is present
            (explicitly requested protocols whose benchmark is missing raise).
        tree: taxonomy for the hierarchy metrics (default: ``bench_dir/taxonomy``, or the
            ImageNet WordNet tree when the zero-shot classes are the 1,000 ImageNet wnids).
        score: similarity variant (``"method"``, or ``"product_inner"``/``"product_dist"``).
        prompt_agg: zero-shot prompt aggregation (see :mod:`hyplib.evaluation.zeroshot`).
        chain_direction, text_direction: see :mod:`hyplib.evaluation.chains`.
        traversal_images, traversal_steps, cone_filter: root traversal settings.
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
    curv = C.resolve_curv(model)
    arrays = {} if arrays is None else arrays
    report = {} if report is None else report
    report.setdefault("skipped", {})
    report["method"] = getattr(method, "name", str(method))
    metrics: dict[str, float] = {}
    cache: dict[str, dict | None] = {}
    unavailable = _unavailable(bench_dir)
    retrieval_sets = _retrieval_sets(bench_dir)

    def bench(name: str) -> dict | None:
        if name not in cache:
            cache[name] = _load(bench_dir, name)
        return cache[name]

    def images(name: str, key: str = "images"):
        ck = f"_emb/{name}/{key}"
        if ck not in cache:
            cache[ck] = C.encode_images(model, bench(name)[key], batch_size=batch_size)
        return cache[ck]

    text_cache: dict = {}  # string -> embedding, shared by every benchmark

    def texts(name: str, key: str, strings):
        ck = f"_emb/{name}/{key}"
        if ck not in cache:
            cache[ck] = C.encode_texts(model, strings, batch_size=2 * batch_size, cache=text_cache)
        return cache[ck]

    if "hierarchy" in protocols and bench("zeroshot") is not None:
        t = tree if tree is not None else _default_tree(bench)
        if t is not None:  # a class/tree mismatch fails before any encoding
            _hierarchy.leaf_index_map(bench("zeroshot")["class_ids"], t)

    kw = {"method": method, "curv": curv}
    for proto in protocols:
        missing = [b for b in NEEDS[proto] if bench(b) is None]
        if proto == "retrieval" and retrieval_sets:
            missing = []
        if missing:
            gone = {b: unavailable[b] for b in missing if b in unavailable}
            if gone:
                msg = f"{NOT_AVAILABLE}: " + "; ".join(f"{b} ({why})" for b, why in gone.items())
            else:
                msg = f"benchmark(s) {missing} not in {bench_dir}"
            if explicit:
                raise FileNotFoundError(f"protocol {proto!r}: {msg}")
            report["skipped"][proto] = msg
            continue
        if proto == "pep" and method.geometry == "euclidean":
            report["skipped"][proto] = "euclidean method: no entailment cones"
            continue
        t0 = time.perf_counter()
        if proto in ("zeroshot", "hierarchy"):
            b = bench("zeroshot")
            if "_zs" not in cache:
                agg = _zeroshot.resolve_prompt_agg(prompt_agg, method)
                classes = _zeroshot.class_embeddings(model, b["classnames"], b["templates"], prompt_agg=agg,
                                                     batch_size=2 * batch_size)
                cache["_zs"] = _zeroshot.zeroshot_scores({"image": images("zeroshot"), "classes": classes}, b,
                                                         score=score, **kw)
            scores, labels = cache["_zs"]
            if proto == "zeroshot":
                metrics.update(_prefixed("zeroshot", _zeroshot.accuracy_metrics(scores, labels)))
                arrays["zeroshot_pred"] = _zeroshot.predictions(scores, labels).numpy()
                arrays["zeroshot_labels"] = np.asarray(labels)
            else:
                t = tree if tree is not None else _default_tree(bench)
                if t is None:
                    msg = (f"{NOT_AVAILABLE}: taxonomy ({unavailable['taxonomy']})"
                           if "taxonomy" in unavailable else f"no taxonomy in {bench_dir} and no tree given")
                    if explicit:
                        raise FileNotFoundError(f"protocol 'hierarchy': {msg}")
                    report["skipped"][proto] = msg
                    continue
                metrics.update(_prefixed("hierarchy", _hierarchy.hierarchy_from_scores(
                    scores, labels, b["class_ids"], t)))
        elif proto == "retrieval":
            for name in retrieval_sets:
                b = bench(name)
                src = {"image": images(name), "text": texts(name, "captions", b["captions"])}
                metrics.update(_prefixed(name, _retrieval.evaluate_retrieval(src, b, score=score, **kw)))
        elif proto == "pep":
            b = bench("pep")
            src = {"image": images("pep"), "text": texts("pep", "texts", b["texts"])}
            metrics.update(_prefixed("pep", _pep.evaluate_pep(src, b, **kw)))
        elif proto == "chains":
            b = bench("chains")
            src = {k: images("chains", k) for k in ("whole", "part", "subpart") if k in b}
            if b.get("text_chains"):
                tc = [list(c) for c in b["text_chains"]]
                flat = texts("chains", "text_chains", [s for c in tc for s in c])
                src["text_chains"] = flat.reshape(len(tc), len(tc[0]), -1)
            m = _chains.evaluate_chains(src, b, direction=chain_direction, text_direction=text_direction, **kw)
            metrics.update(_prefixed("chains", m))
            for k in ("whole", "part", "subpart"):
                if k in src:
                    arrays[f"chains_radius_{k}"] = C.distance_to_root(method, src[k], curv).numpy()
            if "text_chains" in src:
                x = src["text_chains"]
                arrays["text_chains_radius"] = C.distance_to_root(
                    method, x.reshape(-1, x.shape[-1]), curv).reshape(x.shape[0], x.shape[1]).numpy()
        elif proto == "composition":
            b = bench("composition")
            src = {"image": images("composition"), "positive": texts("composition", "positives", b["positives"]),
                   "negative": texts("composition", "negatives", b["negatives"])}
            metrics.update(_prefixed("composition", _composition.evaluate_composition(src, b, score=score, **kw)))
        elif proto == "hierarcaps":
            b = bench("hierarcaps")
            caps = _hierarcaps_texts(b, texts)
            src = {"image": images("hierarcaps"), "captions": caps}
            metrics.update(_prefixed("hierarcaps", _hierarcaps.evaluate_hierarcaps(src, b, score=score, **kw)))
            arrays["hierarcaps_radius"] = C.distance_to_root(
                method, caps.reshape(-1, caps.shape[-1]), curv).reshape(caps.shape[0], caps.shape[1]).numpy()
        elif proto == "diagnostics":
            metrics.update(_diagnostics(model, method, curv, bench, images, texts, arrays, report,
                                        traversal_images=traversal_images, traversal_steps=traversal_steps,
                                        cone_filter=cone_filter, log_path=log_path))
        metrics[f"time/{proto}"] = time.perf_counter() - t0
    for proto, why in report["skipped"].items():
        warnings.warn(f"protocol {proto!r} skipped: {why}", stacklevel=2)
    return metrics


def _taxonomy(b: dict | None) -> Tree | None:
    if b is None:
        return None
    return Tree(parent=b["parent"], names=b.get("names", {}), leaves=b.get("leaves", []))


def _default_tree(bench) -> Tree | None:
    """The ``taxonomy`` benchmark's tree; else, for real ImageNet (class ids = the 1,000
    WordNet ids, no taxonomy file), ``hyplib.data.wordnet.imagenet_tree()``."""
    t = _taxonomy(bench("taxonomy"))
    zs = bench("zeroshot")
    if t is None and zs is not None and len(zs.get("class_ids", [])) == 1000:
        from hyplib.data.wordnet import imagenet_tree

        wn = imagenet_tree()
        if set(map(str, zs["class_ids"])) == set(wn.leaves):
            return wn
    return t


def _hierarcaps_texts(b: dict, texts):
    chains = [list(c) for c in b["captions"]]
    if not chains or any(len(c) != len(chains[0]) for c in chains):
        raise ValueError("hierarcaps captions must be equal-length lists of levels")
    flat = texts("hierarcaps", "captions", [s for c in chains for s in c])
    return flat.reshape(len(chains), len(chains[0]), -1)


def _diagnostics(model, method, curv, bench, images, texts, arrays, report, *, traversal_images, traversal_steps,
                 cone_filter, log_path) -> dict:
    out: dict[str, float] = {}
    kinds = {}
    if bench("retrieval") is not None:
        kinds["image"] = images("retrieval")
        kinds["text"] = texts("retrieval", "captions", bench("retrieval")["captions"])
    ch = bench("chains")
    if ch is not None:
        kinds["box_image"] = torch.cat([images("chains", k) for k in ("part", "subpart") if k in ch])
        if ch.get("text_chains"):
            kinds["box_text"] = texts("chains", "noun_phrases", [c[1] for c in ch["text_chains"]])
    if not kinds and bench("zeroshot") is not None:
        kinds["image"] = images("zeroshot")
    radii = _diag.radii_by_kind(kinds, method, curv)
    out.update(_diag.radius_metrics(radii))
    for kind, r in radii.items():
        arrays[f"radius_{kind}"] = r
        # A sample of raw embeddings per kind for 2-D (Poincare-disk) figures.
        arrays[f"emb_{kind}"] = kinds[kind][:EMB_SAMPLE].float().numpy()
    arrays["curv"] = curv.numpy()
    for modality in ("image", "text"):
        if modality in kinds and kinds[modality].shape[0] >= 2:
            eig = _diag.eigen_spectrum(C.tangent(method, kinds[modality], curv).double().numpy())
            arrays[f"eig_{modality}"] = eig
            out.update({f"spectrum/{modality}/{k}": v for k, v in _diag.spectrum_summary(eig).items()})
            if method.geometry == "product":
                fn = _diag.factor_norms(kinds[modality], method, curv)
                arrays[f"factor_radius_{modality}"] = fn.mean(0)
                out.update({f"factors/{modality}/{k}": v for k, v in _diag.factor_summary(fn).items()})
    hc = bench("hierarcaps")
    if method.geometry != "euclidean" and hc is not None and traversal_images > 0:
        caps = _hierarcaps_texts(hc, texts)
        n, L = caps.shape[0], caps.shape[1]
        img = images("hierarcaps")[:traversal_images]
        flat = caps.reshape(n * L, -1)
        owner, level = np.repeat(np.arange(n), L), np.tile(np.arange(L), n)
        for filt in sorted({False, bool(cone_filter)}):
            idx = _diag.traverse_to_root(img, flat, method, curv, steps=traversal_steps, cone_filter=filt,
                                         text_owner=owner)
            tag = "traversal_cone" if filt else "traversal"
            arrays[f"{tag}_idx"] = idx
            out.update({f"{tag}/{k}": v for k, v in _diag.traversal_metrics(idx, owner, level).items()})
    elif method.geometry == "euclidean":
        report["skipped"]["diagnostics/traversal"] = "euclidean method"
    if log_path is not None and Path(log_path).is_file():
        out.update(_diag.trajectory_summary(_diag.read_log(log_path)))
    out["curv_mean"] = float(curv.mean())
    return {f"diagnostics/{k}": float(v) for k, v in out.items()}
