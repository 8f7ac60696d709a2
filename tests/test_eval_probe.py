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


def test_sweep_picks_the_cost_with_the_best_validation_accuracy_and_refits_it(monkeypatch):
    """select_cost against a hand-run search: every grid cost and bisection step scored on the same
    stratified validation quarter; linear_probe then scores each fold with its chosen cost."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    from hyplib.evaluation import probe

    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(5), 16)
    feats = np.eye(5)[labels] * 0.6 + rng.normal(size=(80, 5))
    x_fit, x_val, y_fit, y_val = train_test_split(feats, labels, test_size=0.25, stratify=labels, random_state=0)
    tried = {}

    def acc(c):
        tried[c] = probe._classifier(c).fit(x_fit, y_fit).score(x_val, y_val)
        return tried[c]

    best = max(probe.COST_GRID, key=lambda c: (acc(c), -probe.COST_GRID.index(c)))
    best_acc, delta = tried[best], 10.0
    for _ in range(probe.BISECTION_STEPS):
        for c in (best / delta, best * delta):
            if acc(c) > best_acc:
                best, best_acc = c, tried[c]
        delta **= 0.5
    assert probe.select_cost(feats, labels) == pytest.approx(best)
    assert len(tried) == len(probe.COST_GRID) + 2 * probe.BISECTION_STEPS

    got = linear_probe(feats, labels, cost="sweep")
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(feats, labels))
    costs = [probe.select_cost(feats[tr], labels[tr]) for tr, _ in folds]
    want = [probe._classifier(c).fit(feats[tr], labels[tr]).score(feats[te], labels[te])
            for c, (tr, te) in zip(costs, folds)]
    assert got["acc"] == pytest.approx(np.mean(want)) and got["cost"] == pytest.approx(np.median(costs))
    assert "cost" not in linear_probe(feats, labels)


def test_fixed_cost_is_the_classifiers_strength_and_bad_costs_are_named():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 10)
    feats = np.eye(3)[labels] + rng.normal(scale=1.5, size=(30, 3))
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    for cost in (1e-3, 1e3):
        want = []
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(feats, labels):
            scale = StandardScaler().fit(feats[tr])
            fit = LogisticRegression(C=cost, max_iter=1000).fit(scale.transform(feats[tr]), labels[tr])
            want.append(fit.score(scale.transform(feats[te]), labels[te]))
        assert linear_probe(feats, labels, cost=cost)["acc"] == pytest.approx(np.mean(want))
    for bad in (0.0, -1.0, "grid"):
        with pytest.raises(ValueError, match="cost must be a positive number or 'sweep'"):
            linear_probe(feats, labels, cost=bad)
    with pytest.raises(ValueError, match="cost='sweep' needs 2 images of every class"):
        linear_probe(feats[:15], labels[:15] * 0 + np.arange(15) % 5, folds=2, cost="sweep")
