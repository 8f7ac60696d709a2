"""Linear probe: how much of the benchmark's classes a linear classifier reads off the image
tower, whatever the text tower learnt.

The features are the image tower's own outputs (``model.image_features``, before any lift to
the method's space), standardised per dimension; the classifier is a multinomial logistic
regression, scored by stratified k-fold cross-validation on the zero-shot benchmark's images
and labels. Chance is ``1 / C`` for ``C`` balanced classes. Zero-shot accuracy needs the text
tower to name the classes as well; the probe isolates what the image tower learnt.

Its regularisation is fixed (``cost=1.0``, scikit-learn's default inverse strength) unless
``cost="sweep"``: then each fold chooses it as CLIP's linear-probe protocol does (and MERU's
evaluation, which follows CLIP): the fold's training images are split into a training and a
validation part (a stratified quarter), every cost of :data:`COST_GRID` is scored on the
validation part, then :data:`BISECTION_STEPS` steps try the costs a factor ``10, 10**(1/2),
10**(1/4), ...`` either side of the best so far, and the best cost is refitted on the fold's
whole training part. Two differences from those papers remain: their features come from the
image encoder before its projection (ours after it), unstandardised, and they score a fixed
test split rather than folds.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

__all__ = ["SMALL_FIT_ENTRIES", "COST_GRID", "BISECTION_STEPS", "VALIDATION_SHARE", "blas_threads", "linear_probe",
           "select_cost"]

#: Feature matrices with fewer entries than this are fitted with one BLAS thread.
SMALL_FIT_ENTRIES = 2 ** 22
#: The first pass of ``cost="sweep"``: inverse regularisation strengths, as in CLIP's protocol.
COST_GRID = (1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e6)
#: The second pass: steps of the log-space search around the first pass's best cost.
BISECTION_STEPS = 4
#: Share of a fold's training images that ``cost="sweep"`` holds out to choose the cost.
VALIDATION_SHARE = 0.25


def blas_threads(n_entries: int) -> int | None:
    """BLAS threads for a logistic-regression fit on ``n_entries`` feature values: 1 for a small
    matrix, None (the library's default, a thread per core) for a large one.

    On small matrices OpenBLAS's threads cost more than they save: on this project's 2-core
    machine one probe fit on the default benchmark (600 x 512) took 2.6 s with 2 threads and
    0.3 s with 1, with the machine otherwise idle; a script's probe in the test suite took 33 s
    and 4 s. A large benchmark (ImageNet's 50,000 x 512 and up) keeps the threads."""
    return 1 if n_entries < SMALL_FIT_ENTRIES else None


def _classifier(cost: float):
    """Per-dimension standardisation, then multinomial logistic regression with inverse strength ``cost``."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=cost, max_iter=1000))


def select_cost(x, y, *, seed: int = 0) -> float:
    """The cost CLIP's protocol picks on ``x`` (N, D), ``y`` (N,): validation accuracy on a
    stratified :data:`VALIDATION_SHARE` of the images, over :data:`COST_GRID` and then
    :data:`BISECTION_STEPS` bisection steps (factor 10, then its square root each step). Ties
    keep the cost found first.

    Raises:
        ValueError: a class with fewer than 2 images, or fewer validation images than classes.
    """
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2 or int(VALIDATION_SHARE * len(y)) < len(classes):
        raise ValueError(f"cost='sweep' needs 2 images of every class and at least {len(classes)} validation "
                         f"images in each fold's training part; got {counts.min()} of class "
                         f"{classes[counts.argmin()].item()!r} among {len(y)}")
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=VALIDATION_SHARE, stratify=y, random_state=seed)

    def score(cost: float) -> float:
        return _classifier(cost).fit(x_fit, y_fit).score(x_val, y_val)

    best_cost, best = None, -1.0
    for cost in COST_GRID:
        acc = score(cost)
        if acc > best:
            best_cost, best = cost, acc
    delta = 10.0
    for _ in range(BISECTION_STEPS):
        for cost in (best_cost / delta, best_cost * delta):
            acc = score(cost)
            if acc > best:
                best_cost, best = cost, acc
        delta = delta ** 0.5
    return float(best_cost)


def linear_probe(features, labels, *, folds: int = 5, seed: int = 0, threads: int | None = None,
                 cost: float | str = 1.0) -> dict:
    """Cross-validated accuracy of a linear classifier on ``features`` (N, D) for ``labels`` (N,).

    ``threads`` caps the BLAS threads of the fits; None: :func:`blas_threads` for this size.
    ``cost``: the classifier's inverse regularisation strength, or ``"sweep"`` to choose it in
    each fold with :func:`select_cost` (16 fits per fold instead of 1).

    Returns ``{"acc": mean accuracy over the folds, "acc_std": its spread over folds, "chance":
    1 / number of classes}``, and with ``cost="sweep"`` also ``"cost"``: the median of the
    folds' chosen costs.

    Raises:
        ValueError: shapes that do not match, a class with fewer images than ``folds``, a
            ``cost`` that is neither positive nor ``"sweep"``.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"features must be (N, D) and labels (N,), got {x.shape} and {y.shape}")
    sweep = isinstance(cost, str)
    if (sweep and cost != "sweep") or (not sweep and not cost > 0):
        raise ValueError(f"cost must be a positive number or 'sweep', got {cost!r}")
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < folds:
        raise ValueError(f"class {classes[counts.argmin()].item()!r} has {counts.min()} images, "
                         f"fewer than folds={folds}")
    scores, chosen = [], []
    with threadpool_limits(limits=blas_threads(x.size) if threads is None else threads, user_api="blas"):
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
            fold_cost = select_cost(x[train], y[train], seed=seed) if sweep else float(cost)
            chosen.append(fold_cost)
            scores.append(_classifier(fold_cost).fit(x[train], y[train]).score(x[test], y[test]))
    scores = np.asarray(scores)
    out = {"acc": float(scores.mean()), "acc_std": float(scores.std(ddof=1)), "chance": 1.0 / len(classes)}
    if sweep:
        out["cost"] = float(np.median(chosen))
    return out
