"""Linear probe: how much of the benchmark's classes a linear classifier reads off the image
tower, whatever the text tower learnt.

The features are the image tower's own outputs (``model.image_features``, before any lift to
the method's space), standardised per dimension; the classifier is a multinomial logistic
regression, scored by stratified k-fold cross-validation on the zero-shot benchmark's images
and labels. Chance is ``1 / C`` for ``C`` balanced classes. Zero-shot accuracy needs the text
tower to name the classes as well; the probe isolates what the image tower learnt.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

__all__ = ["SMALL_FIT_ENTRIES", "blas_threads", "linear_probe"]

#: Feature matrices with fewer entries than this are fitted with one BLAS thread.
SMALL_FIT_ENTRIES = 2 ** 22


def blas_threads(n_entries: int) -> int | None:
    """BLAS threads for a logistic-regression fit on ``n_entries`` feature values: 1 for a small
    matrix, None (the library's default, a thread per core) for a large one.

    On small matrices OpenBLAS's threads cost more than they save: on this project's 2-core
    machine one probe fit on the default benchmark (600 x 512) took 2.6 s with 2 threads and
    0.3 s with 1, with the machine otherwise idle; a script's probe in the test suite took 33 s
    and 4 s. A large benchmark (ImageNet's 50,000 x 512 and up) keeps the threads."""
    return 1 if n_entries < SMALL_FIT_ENTRIES else None


def linear_probe(features, labels, *, folds: int = 5, seed: int = 0, threads: int | None = None) -> dict:
    """Cross-validated accuracy of a linear classifier on ``features`` (N, D) for ``labels`` (N,).

    ``threads`` caps the BLAS threads of the fits; None: :func:`blas_threads` for this size.

    Returns ``{"acc": mean accuracy over the folds, "acc_std": its spread over folds, "chance":
    1 / number of classes}``.

    Raises:
        ValueError: shapes that do not match, or a class with fewer images than ``folds``.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"features must be (N, D) and labels (N,), got {x.shape} and {y.shape}")
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < folds:
        raise ValueError(f"class {classes[counts.argmin()].item()!r} has {counts.min()} images, "
                         f"fewer than folds={folds}")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    with threadpool_limits(limits=blas_threads(x.size) if threads is None else threads, user_api="blas"):
        scores = cross_val_score(clf, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return {"acc": float(scores.mean()), "acc_std": float(scores.std(ddof=1)), "chance": 1.0 / len(classes)}
