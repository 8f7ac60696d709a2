"""The linear probe: hand-built separable and label-free features, and its place in run_all."""
import numpy as np
import pytest

from hyplib.evaluation.probe import linear_probe


def test_separable_features_are_read_perfectly_and_noise_is_near_chance():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 10)
    onehot = np.eye(6)[labels] * 5.0 + rng.normal(scale=0.1, size=(60, 6))
    got = linear_probe(onehot, labels)
    assert got["acc"] == 1.0 and got["chance"] == pytest.approx(1 / 6)
    noise = linear_probe(rng.normal(size=(60, 6)), labels)
    assert noise["acc"] < 0.45  # 1/6 expected; far from the separable case


def test_bad_shapes_and_thin_classes_are_named():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        linear_probe(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="class 1 has 2 images, fewer than folds=5"):
        linear_probe(np.zeros((12, 2)), np.array([0] * 10 + [1] * 2))


def test_threads_cap_the_blas_pool_during_the_fits_only(monkeypatch):
    """threads=1: every fit runs with one BLAS thread, the pool is restored after, and the
    scores are those of the uncapped probe."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    seen, fit = [], LogisticRegression.fit

    def spy(self, *args, **kwargs):
        seen.append(blas_threads())
        return fit(self, *args, **kwargs)

    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 10)
    feats = np.eye(4)[labels] + rng.normal(scale=0.8, size=(40, 4))
    before = blas_threads()
    free = linear_probe(feats, labels)
    monkeypatch.setattr(LogisticRegression, "fit", spy)
    capped = linear_probe(feats, labels, threads=1)
    assert seen == [{1}] * 5 and blas_threads() == before
    assert capped == free


def test_small_fits_take_one_blas_thread_large_ones_the_default():
    from hyplib.evaluation.probe import SMALL_FIT_ENTRIES
    from hyplib.evaluation.probe import blas_threads as threads_for

    assert threads_for(600 * 512) == 1 and threads_for(SMALL_FIT_ENTRIES - 1) == 1
    assert threads_for(SMALL_FIT_ENTRIES) is None and threads_for(50_000 * 512) is None
