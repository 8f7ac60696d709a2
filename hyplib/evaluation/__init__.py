"""Evaluation suite: every protocol of the five papers, one module each.

* :mod:`~hyplib.evaluation.zeroshot` — zero-shot classification (mean per-class acc, top-1/5)
* :mod:`~hyplib.evaluation.retrieval` — image<->text Recall@K, chunked
* :mod:`~hyplib.evaluation.hierarchy` — TIE / LCA / J / P_H / R_H on a taxonomy
* :mod:`~hyplib.evaluation.pep` — entailment pairs AUC-ROC / AP from the exterior angle
* :mod:`~hyplib.evaluation.chains` — whole/part/sub-part and text chain ordering
* :mod:`~hyplib.evaluation.composition` — SugarCrepe-style accuracy
* :mod:`~hyplib.evaluation.hierarcaps` — radius/level Kendall tau, threshold retrieval
* :mod:`~hyplib.evaluation.diagnostics` — radii, spectra, factor norms, root traversal, logs
* :mod:`~hyplib.evaluation.driver` — :func:`run_all`, :func:`write_metrics`, :func:`load_model`

Each ``evaluate_<protocol>(model_or_embeddings, benchmark, ...)`` returns a flat dict of
floats; ``run_all`` prefixes them with the protocol name.
"""
from hyplib.evaluation.chains import evaluate_chains
from hyplib.evaluation.composition import evaluate_composition
from hyplib.evaluation.driver import PROTOCOLS, config_hash, load_model, run_all, write_metrics
from hyplib.evaluation.hierarcaps import evaluate_hierarcaps
from hyplib.evaluation.hierarchy import evaluate_hierarchy, expected_random_metrics, hierarchical_metrics
from hyplib.evaluation.pep import evaluate_pep
from hyplib.evaluation.retrieval import evaluate_retrieval
from hyplib.evaluation.zeroshot import evaluate_zeroshot

__all__ = [
    "PROTOCOLS", "run_all", "load_model", "write_metrics", "config_hash", "evaluate_zeroshot", "evaluate_retrieval",
    "evaluate_hierarchy", "hierarchical_metrics", "expected_random_metrics", "evaluate_pep", "evaluate_chains",
    "evaluate_composition", "evaluate_hierarcaps",
]
