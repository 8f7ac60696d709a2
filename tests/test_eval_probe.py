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
