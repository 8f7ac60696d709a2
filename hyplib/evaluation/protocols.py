"""The evaluation protocols as a registry: each one's name, the benchmarks it needs and what it
writes; :func:`hyplib.evaluation.driver.run_all` loops over :data:`REGISTRY` in order.

A :class:`Protocol` runs on a :class:`Session`: the model, its method, space and curvature,
the benchmark folder with its loaded benchmarks, embedding caches shared by every protocol
(each benchmark is encoded once, each distinct string once), and the outputs being filled:
``metrics`` (flat ``"<prefix>/<metric>" -> float``), ``arrays`` (raw numpy arrays for
figures) and ``report["skipped"]`` (``{name: reason}``). A protocol's ``run`` either fills
them or returns a reason to skip. Geometry is the space's business
(:mod:`hyplib.methods.spaces`); a protocol that needs entailment cones says ``cones=True``.

Adding a protocol: write its evaluator module, then one :class:`Protocol` entry here (its
``run`` reads benchmarks through the session and writes under its own prefix).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
from hyplib.evaluation import probe as _probe
from hyplib.evaluation import retrieval as _retrieval
from hyplib.evaluation import zeroshot as _zeroshot
from hyplib.tree import Tree

#: How a skipped protocol's reason starts when the data lacks its benchmark (the tables read it).
NOT_AVAILABLE = "not available for this data"
#: Rows of raw embeddings per kind kept in ``arrays`` (``emb_<kind>``) for figures.
EMB_SAMPLE = 512
#: Kinds of the chains benchmark's images, general to specific.
CHAIN_KINDS = ("whole", "part", "subpart")


def taxonomy_tree(taxonomy: dict | None, zeroshot: dict | None) -> Tree | None:
    """The tree of a ``taxonomy`` benchmark; without one, for real ImageNet (zero-shot class ids
    = the 1,000 WordNet ids), ``hyplib.data.wordnet.imagenet_tree()``; else None."""
    if taxonomy is not None:
        return Tree(parent=taxonomy["parent"], names=taxonomy.get("names", {}), leaves=taxonomy.get("leaves", []))
    if zeroshot is not None and len(zeroshot.get("class_ids", [])) == 1000:
        from hyplib.data.wordnet import imagenet_tree

        wn = imagenet_tree()
        if set(map(str, zeroshot["class_ids"])) == set(wn.leaves):
            return wn
    return None


def random_reference(bench_dir) -> dict[str, float]:
    """What a uniform-random predictor scores on ``bench_dir``'s zero-shot benchmark: chance
    accuracy and the exact expected hierarchy metrics on its tree (``{}`` without the benchmark;
    no hierarchy keys without a tree). Keys as in ``run_all``'s metrics."""
    from hyplib.data.benchmarks import load_benchmark

    bench_dir = Path(bench_dir)
    if not (bench_dir / "zeroshot.json").is_file():
        return {}
    zs = load_benchmark(bench_dir, "zeroshot")
    chance = 1.0 / len(zs["classnames"])
    out = {"zeroshot/mean_per_class_acc": chance, "zeroshot/top1": chance, "probe/acc": chance}
    taxonomy = load_benchmark(bench_dir, "taxonomy") if (bench_dir / "taxonomy.json").is_file() else None
    tree = taxonomy_tree(taxonomy, zs)
    if tree is not None:
        out.update({f"hierarchy/reference/{k}": v
                    for k, v in _hierarchy.expected_random_metrics(tree, "reference").items()})
    return out


@dataclass
class Session:
    """What one :func:`~hyplib.evaluation.driver.run_all` call shares between its protocols."""

    model: object
    method: object
    curv: torch.Tensor
    bench_dir: Path
    options: dict
    tree: Tree | None = None
    metrics: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)
    text_cache: dict = field(default_factory=dict)  # string -> embedding, shared by every benchmark
    unavailable: dict = field(default_factory=dict)

    @property
    def space(self):
        return C.space(self.method)

    @property
    def kw(self) -> dict:
        return {"method": self.method, "curv": self.curv}

    def bench(self, name: str) -> dict | None:
        """The benchmark ``name`` (loaded once), or None when the folder lacks it."""
        if name not in self.cache:
            from hyplib.data.benchmarks import load_benchmark

            path = self.bench_dir / f"{name}.json"
            self.cache[name] = load_benchmark(self.bench_dir, name) if path.is_file() else None
        return self.cache[name]

    def images(self, name: str, key: str = "images"):
        """Embeddings of benchmark ``name``'s images under ``key`` (encoded once)."""
        ck = f"_emb/{name}/{key}"
        if ck not in self.cache:
            self.cache[ck] = C.encode_images(self.model, self.bench(name)[key], batch_size=self.options["batch_size"])
        return self.cache[ck]

    def texts(self, name: str, key: str, strings):
        """Embeddings of ``strings``, cached as benchmark ``name``'s ``key``."""
        ck = f"_emb/{name}/{key}"
        if ck not in self.cache:
            self.cache[ck] = C.encode_texts(self.model, strings, batch_size=2 * self.options["batch_size"],
                                            cache=self.text_cache)
        return self.cache[ck]

    def retrieval_sets(self) -> list[str]:
        """``retrieval`` and every ``retrieval_<name>`` benchmark present, ``retrieval`` first."""
        names = sorted(p.stem for p in self.bench_dir.glob("retrieval_*.json"))
        return (["retrieval"] if (self.bench_dir / "retrieval.json").is_file() else []) + names

    def default_tree(self) -> Tree | None:
        """The tree given to ``run_all``, else the ``taxonomy`` benchmark's; else, for real
        ImageNet (class ids = the 1,000 WordNet ids, no taxonomy file),
        ``hyplib.data.wordnet.imagenet_tree()``."""
        if self.tree is not None:
            return self.tree
        return taxonomy_tree(self.bench("taxonomy"), self.bench("zeroshot"))

    def hierarcaps_captions(self):
        """(n, L, D) embeddings of the hierarcaps caption chains (n images, L levels)."""
        chains = [list(c) for c in self.bench("hierarcaps")["captions"]]
        if not chains or any(len(c) != len(chains[0]) for c in chains):
            raise ValueError("hierarcaps captions must be equal-length lists of levels")
        flat = self.texts("hierarcaps", "captions", [s for c in chains for s in c])
        return flat.reshape(len(chains), len(chains[0]), -1)

    def radius(self, x):
        """Distance to the root of (..., D) embeddings, shape (...), as numpy."""
        return C.distance_to_root(self.method, x.reshape(-1, x.shape[-1]), self.curv).reshape(x.shape[:-1]).numpy()

    def add(self, prefix: str, values: dict) -> None:
        self.metrics.update({f"{prefix}/{k}": float(v) for k, v in values.items()})


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol.

    Attributes:
        name: the protocol's name (``run_all(protocols=[...])``, ``time/<name>``, skip reasons).
        needs: benchmark files it reads (``<bench_dir>/<name>.json/.npz``); missing ones skip it.
        writes: metric prefixes (``<prefix>/...``) and array keys (``arrays[...]``; ``<...>``
            stands for a kind) it fills, as documentation the tests check.
        run: ``run(session) -> None`` fills the outputs, or returns a skip reason (str).
        cones: needs entailment cones (a hyperbolic space); skipped otherwise.
    """

    name: str
    needs: tuple[str, ...]
    writes: tuple[str, ...]
    run: Callable[[Session], str | None]
    cones: bool = False

    def missing(self, s: Session) -> list[str]:
        """The benchmarks of :attr:`needs` that ``s``'s folder lacks."""
        if self.name == "retrieval" and s.retrieval_sets():
            return []  # any retrieval_<name> set is enough
        return [b for b in self.needs if s.bench(b) is None]


# --------------------------------------------------------------------------- protocols
def _zeroshot_scores(s: Session):
    """(N, C) scores and (N,) labels of the zero-shot benchmark, computed once for zeroshot
    and hierarchy; the prompt aggregation is the method's own unless given
    (:func:`hyplib.evaluation.zeroshot.resolve_prompt_agg`)."""
    if "_zs" not in s.cache:
        b = s.bench("zeroshot")
        agg = _zeroshot.resolve_prompt_agg(s.options["prompt_agg"], s.method)
        classes = _zeroshot.class_embeddings(s.model, b["classnames"], b["templates"], prompt_agg=agg,
                                             batch_size=2 * s.options["batch_size"])
        s.cache["_zs"] = _zeroshot.zeroshot_scores({"image": s.images("zeroshot"), "classes": classes}, b,
                                                   score=s.options["score"], **s.kw)
    return s.cache["_zs"]


def _run_zeroshot(s: Session) -> None:
    scores, labels = _zeroshot_scores(s)
    s.add("zeroshot", _zeroshot.accuracy_metrics(scores, labels))
    s.arrays["zeroshot_pred"] = _zeroshot.predictions(scores, labels).numpy()
    s.arrays["zeroshot_labels"] = np.asarray(labels)


def _run_probe(s: Session) -> str | None:
    b = s.bench("zeroshot")
    # Five folds, fewer on a small benchmark: every fold needs an image of every class.
    folds = min(5, int(np.unique(np.asarray(b["labels"]), return_counts=True)[1].min()))
    if folds < 2:
        return "the linear probe needs at least 2 zero-shot images per class"
    feats = C.image_features(s.model, b["images"], batch_size=s.options["batch_size"])
    s.add("probe", _probe.linear_probe(feats.numpy(), b["labels"], folds=folds, cost=s.options["probe_cost"]))


def _run_hierarchy(s: Session) -> str | None:
    scores, labels = _zeroshot_scores(s)
    t = s.default_tree()
    if t is None:
        if "taxonomy" in s.unavailable:
            return f"{NOT_AVAILABLE}: taxonomy ({s.unavailable['taxonomy']})"
        return f"no taxonomy in {s.bench_dir} and no tree given"
    s.add("hierarchy", _hierarchy.hierarchy_from_scores(scores, labels, s.bench("zeroshot")["class_ids"], t))
    return None


def _run_retrieval(s: Session) -> None:
    for name in s.retrieval_sets():
        b = s.bench(name)
        src = {"image": s.images(name), "text": s.texts(name, "captions", b["captions"])}
        s.add(name, _retrieval.evaluate_retrieval(src, b, score=s.options["score"], **s.kw))


def _run_pep(s: Session) -> None:
    b = s.bench("pep")
    src = {"image": s.images("pep"), "text": s.texts("pep", "texts", b["texts"])}
    s.add("pep", _pep.evaluate_pep(src, b, **s.kw))


def _run_chains(s: Session) -> None:
    b = s.bench("chains")
    src = {k: s.images("chains", k) for k in CHAIN_KINDS if k in b}
    if b.get("text_chains"):
        tc = [list(c) for c in b["text_chains"]]
        flat = s.texts("chains", "text_chains", [x for c in tc for x in c])
        src["text_chains"] = flat.reshape(len(tc), len(tc[0]), -1)
    s.add("chains", _chains.evaluate_chains(src, b, direction=s.options["chain_direction"],
                                            text_direction=s.options["text_direction"], **s.kw))
    for k in CHAIN_KINDS:
        if k in src:
            s.arrays[f"chains_radius_{k}"] = s.radius(src[k])
    if "text_chains" in src:
        s.arrays["text_chains_radius"] = s.radius(src["text_chains"])


def _run_composition(s: Session) -> None:
    b = s.bench("composition")
    src = {"image": s.images("composition"), "positive": s.texts("composition", "positives", b["positives"]),
           "negative": s.texts("composition", "negatives", b["negatives"])}
    s.add("composition", _composition.evaluate_composition(src, b, score=s.options["score"], **s.kw))


def _run_hierarcaps(s: Session) -> None:
    b = s.bench("hierarcaps")
    caps = s.hierarcaps_captions()
    src = {"image": s.images("hierarcaps"), "captions": caps}
    s.add("hierarcaps", _hierarcaps.evaluate_hierarcaps(src, b, score=s.options["score"], **s.kw))
    s.arrays["hierarcaps_radius"] = s.radius(caps)


def _diagnostic_kinds(s: Session) -> dict:
    """Embeddings per input kind: retrieval images/captions as ``image``/``text``, the chains'
    part and sub-part crops as ``box_image``, the text chains' noun phrases as ``box_text``;
    the zero-shot images when nothing else is there."""
    kinds = {}
    if s.bench("retrieval") is not None:
        kinds["image"] = s.images("retrieval")
        kinds["text"] = s.texts("retrieval", "captions", s.bench("retrieval")["captions"])
    ch = s.bench("chains")
    if ch is not None:
        kinds["box_image"] = torch.cat([s.images("chains", k) for k in CHAIN_KINDS[1:] if k in ch])
        if ch.get("text_chains"):
            kinds["box_text"] = s.texts("chains", "noun_phrases", [c[1] for c in ch["text_chains"]])
    if not kinds and s.bench("zeroshot") is not None:
        kinds["image"] = s.images("zeroshot")
    return kinds


def _traversals(s: Session) -> dict:
    """Root traversal from the first hierarcaps images over all hierarcaps captions, without and
    (``cone_filter``) with MERU's cone filter."""
    caps = s.hierarcaps_captions()
    n, L = caps.shape[0], caps.shape[1]
    img = s.images("hierarcaps")[:s.options["traversal_images"]]
    flat = caps.reshape(n * L, -1)
    owner, level = np.repeat(np.arange(n), L), np.tile(np.arange(L), n)
    out = {}
    for filt in sorted({False, bool(s.options["cone_filter"])}):
        idx = _diag.traverse_to_root(img, flat, s.method, s.curv, steps=s.options["traversal_steps"],
                                     cone_filter=filt, text_owner=owner)
        tag = "traversal_cone" if filt else "traversal"
        s.arrays[f"{tag}_idx"] = idx
        out.update({f"{tag}/{k}": v for k, v in _diag.traversal_metrics(idx, owner, level).items()})
    return out


def _run_diagnostics(s: Session) -> None:
    out: dict[str, float] = {}
    kinds = _diagnostic_kinds(s)
    radii = _diag.radii_by_kind(kinds, s.method, s.curv)
    out.update(_diag.radius_metrics(radii))
    for kind, r in radii.items():
        s.arrays[f"radius_{kind}"] = r
        # A sample of raw embeddings per kind for 2-D (Poincare-disk) figures.
        s.arrays[f"emb_{kind}"] = kinds[kind][:EMB_SAMPLE].float().numpy()
    s.arrays["curv"] = s.curv.numpy()
    for modality in ("image", "text"):
        if modality in kinds and kinds[modality].shape[0] >= 2:
            eig = _diag.eigen_spectrum(C.tangent(s.method, kinds[modality], s.curv).double().numpy())
            s.arrays[f"eig_{modality}"] = eig
            out.update({f"spectrum/{modality}/{k}": v for k, v in _diag.spectrum_summary(eig).items()})
            if s.space.factored:
                fn = _diag.factor_norms(kinds[modality], s.method, s.curv)
                s.arrays[f"factor_radius_{modality}"] = fn.mean(0)
                out.update({f"factors/{modality}/{k}": v for k, v in _diag.factor_summary(fn).items()})
    if not s.space.hyperbolic:
        s.report["skipped"]["diagnostics/traversal"] = f"{s.method.geometry} method"
    elif s.bench("hierarcaps") is not None and s.options["traversal_images"] > 0:
        out.update(_traversals(s))
    log_path = s.options.get("log_path")
    if log_path is not None and Path(log_path).is_file():
        out.update(_diag.trajectory_summary(_diag.read_log(log_path)))
    out["curv_mean"] = float(s.curv.mean())
    s.add("diagnostics", out)


#: Every protocol, in the order ``run_all`` runs them.
REGISTRY: dict[str, Protocol] = {p.name: p for p in (
    Protocol("zeroshot", ("zeroshot",), ("zeroshot/", "arrays: zeroshot_pred, zeroshot_labels"), _run_zeroshot),
    Protocol("probe", ("zeroshot",), ("probe/",), _run_probe),
    Protocol("hierarchy", ("zeroshot",), ("hierarchy/reference/", "hierarchy/corrected/"), _run_hierarchy),
    Protocol("retrieval", ("retrieval",), ("retrieval/", "retrieval_<name>/"), _run_retrieval),
    Protocol("pep", ("pep",), ("pep/",), _run_pep, cones=True),
    Protocol("chains", ("chains",), ("chains/", "arrays: chains_radius_<kind>, text_chains_radius"), _run_chains),
    Protocol("composition", ("composition",), ("composition/",), _run_composition),
    Protocol("hierarcaps", ("hierarcaps",), ("hierarcaps/", "arrays: hierarcaps_radius"), _run_hierarcaps),
    Protocol("diagnostics", (), ("diagnostics/", "arrays: radius_<kind>, emb_<kind>, curv, eig_<modality>, "
                                 "factor_radius_<modality>, traversal_idx, traversal_cone_idx"), _run_diagnostics),
)}
