"""Diagnostics: radii per kind, spectra, per-factor norms, root traversal, log trajectories."""
import json

import numpy as np
import pytest
import torch

from hyplib import lorentz
from hyplib import methods as M
from hyplib.evaluation import diagnostics as DG


def _radial(direction, r, curv=1.0):
    u = torch.nn.functional.normalize(torch.as_tensor(direction, dtype=torch.float64), dim=-1)
    r = torch.as_tensor(r, dtype=torch.float64)
    return (torch.sinh(np.sqrt(curv) * r) / np.sqrt(curv)).unsqueeze(-1) * u


def test_radius_summary_and_kinds():
    s = DG.radius_summary(np.arange(101.0))
    assert s["mean"] == 50 and s["median"] == 50 and s["p05"] == 5 and s["p95"] == 95 and s["max"] == 100
    method = M.get("meru")
    d = torch.randn(4, 3, dtype=torch.float64)
    radii = DG.radii_by_kind({"image": _radial(d, [2.0] * 4), "text": _radial(d, [0.5] * 4)}, method,
                             torch.tensor(1.0))
    np.testing.assert_allclose(radii["image"], 2.0, rtol=1e-10)
    out = DG.radius_metrics(radii)
    assert out["radius/text_minus_image"] == pytest.approx(-1.5)
    assert out["radius/image/mean"] == pytest.approx(2.0)


def test_eigen_spectrum_matches_numpy_and_effective_rank():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4)) * np.array([3.0, 2.0, 1.0, 0.0])
    eig = DG.eigen_spectrum(x)
    np.testing.assert_allclose(eig, np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1], atol=1e-10)
    s = DG.spectrum_summary(np.array([1.0, 1.0, 0.0, 0.0]))
    assert s["effective_rank"] == pytest.approx(2.0) and s["top1_share"] == 0.5 and s["dims90"] == 2
    assert DG.spectrum_summary(np.array([4.0, 0, 0]))["effective_rank"] == pytest.approx(1.0)


def test_factor_norms():
    method = M.get("phyclip", k=3, d=2)
    x = torch.zeros(2, 6, dtype=torch.float64)
    x[:, 0] = np.sinh(1.0)  # factor 0 at distance 1 (c=1); factor 2 at distance asinh(2*sqrt(2))/sqrt(2) for c=2
    x[:, 4] = 2.0
    fn = DG.factor_norms(x, method, torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64))
    np.testing.assert_allclose(fn[0], [1.0, 0.0, np.arcsinh(2 * np.sqrt(2)) / np.sqrt(2)], atol=1e-7)
    s = DG.factor_summary(fn)
    assert s["active"] == pytest.approx(2 / 3)


def test_traversal_steps_and_cone_filter():
    method = M.get("meru")
    curv = torch.tensor(1.0, dtype=torch.float64)
    u = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    image = _radial(u, [4.0])
    steps = 5  # path radii 4, 3, 2, 1, 0
    texts = torch.cat([_radial(u.expand(4, 3), [3.0, 2.0, 1.0, 0.3]),  # on the path
                       _radial(-u, [0.05])])                             # near the root, opposite side
    idx = DG.traverse_to_root(image, texts, method, curv, steps=steps)
    np.testing.assert_array_equal(idx[0], [0, 0, 1, 2, 4])
    # The opposite text's cone (a half-space pointing away) does not contain the image.
    idx_f = DG.traverse_to_root(image, texts, method, curv, steps=steps, cone_filter=True)
    np.testing.assert_array_equal(idx_f[0], [0, 0, 1, 2, 3])
    m = DG.traversal_metrics(idx_f, text_owner=np.array([0, 0, 0, 0, 1]), text_level=np.array([3, 2, 1, 0, 0]))
    assert m["distinct"] == 4 and m["own"] == 1.0 and m["found"] == 1.0
    # closer to the image -> more specific; retrieved levels 3,3,2,1,0 (one tie): tau-b 9/sqrt(90)
    assert m["level_tau"] == pytest.approx(9 / np.sqrt(90))
    with pytest.raises(ValueError, match="euclidean"):
        DG.traverse_to_root(image, texts, M.get("clip"), curv)


def test_traversal_product_matches_per_factor_lorentz():
    method = M.get("phyclip", k=2, d=3, how="l1")
    curv = torch.tensor([1.0, 0.5], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    image, texts = torch.randn(3, 6, generator=g, dtype=torch.float64), torch.randn(20, 6, generator=g,
                                                                                    dtype=torch.float64)
    idx = DG.traverse_to_root(image, texts, method, curv, steps=4)
    p0 = lorentz.geodesic(image[:, :3], torch.zeros(3, 3, dtype=torch.float64), curv=1.0, steps=4)
    p1 = lorentz.geodesic(image[:, 3:], torch.zeros(3, 3, dtype=torch.float64), curv=0.5, steps=4)
    d = 0.5 * (lorentz.pairwise_dist(p0, texts[:, :3], curv=1.0) + lorentz.pairwise_dist(p1, texts[:, 3:], curv=0.5))
    np.testing.assert_array_equal(idx, d.argmin(-1).numpy())
    mask = DG.cone_mask(texts, image, method, curv)
    assert mask.shape == (3, 20)


def test_read_log_and_trajectories(tmp_path):
    path = tmp_path / "log.jsonl"
    recs = [{"step": 1, "loss": 2.0, "curv": 1.0, "alphas": {"image": 0.1, "text": 0.2}, "logit_scale": 14.3},
            {"step": 2, "loss": 1.5, "curv": 0.6, "alphas": {"image": 0.2, "text": 0.1}, "logit_scale": 15.0},
            {"step": 3, "loss": 1.4, "curv": 0.8, "alphas": {"image": 0.3, "text": 0.05}, "logit_scale": 16.0}]
    path.write_text("\n".join(json.dumps(r) for r in recs) + '\n{"step": 4, "lo')  # torn last line
    df = DG.read_log(path)
    assert len(df) == 3 and "alphas_image" in df.columns
    out = DG.trajectory_summary(df)
    assert out["traj/curv/first"] == 1.0 and out["traj/curv/last"] == 0.8 and out["traj/curv/min"] == 0.6
    assert out["traj/alphas_text/last"] == 0.05 and out["traj/logit_scale/max"] == 16.0
    prod = tmp_path / "prod.jsonl"
    prod.write_text(json.dumps({"step": 1, "curv": [1.0, 2.0], "alphas": {"image": [0.1, 0.2]}}))
    out = DG.trajectory_summary(DG.read_log(prod))
    assert out["traj/curv_1/last"] == 2.0 and out["traj/alphas_image_0/first"] == 0.1
    with pytest.raises(FileNotFoundError):
        DG.read_log(tmp_path / "missing.jsonl")
