"""The protocol registry and the spaces the evaluators ask: what each protocol declares it
writes is what run_all writes; the spaces' evaluation geometry equals independent per-factor
computations; no evaluator branches on ``method.geometry``; ATMG's prompt rule is its own."""
import ast
import math
from pathlib import Path

import pytest
import torch
from test_eval_driver import _model, bench_dir  # noqa: F401 (bench_dir is a fixture)

from hyplib import lorentz
from hyplib import methods as M
from hyplib.evaluation import driver as DR
from hyplib.evaluation import protocols as P
from hyplib.evaluation import zeroshot as Z

EVAL = Path(__file__).resolve().parents[1] / "hyplib" / "evaluation"


def _points(n, k, d, seed=0, scale=0.7):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, k * d, generator=g, dtype=torch.float64))


# --------------------------------------------------------------------------- spaces
def test_spaces_state_k_and_d():
    assert (M.get("phyclip", k=4, d=3).space.k, M.get("phyclip", k=4, d=3).space.d) == (4, 3)
    for name in ("meru", "atmg", "clip"):
        assert M.get(name).space.k == 1
    assert M.get("clip").space.hyperbolic is False and M.get("meru").space.hyperbolic is True
    assert M.get("phyclip").space.factored and not M.get("meru").space.factored


def test_product_space_equals_a_loop_over_factors():
    k, d = 3, 4
    sp = M.get("phyclip", k=k, d=d, how="l1").space
    x, y = _points(5, k, d, 1), _points(6, k, d, 2)
    curv = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    per = [lorentz.pairwise_dist(x[:, i * d:(i + 1) * d], y[:, i * d:(i + 1) * d], curv=curv[i]) for i in range(k)]
    torch.testing.assert_close(sp.pairwise_dist(x, y, curv=curv), torch.stack(per).mean(0))
    tan = torch.cat([lorentz.logmap0(x[:, i * d:(i + 1) * d], curv=curv[i]) for i in range(k)], 1)
    torch.testing.assert_close(sp.tangent(x, curv=curv), tan)
    radii = torch.stack([lorentz.dist0(x[:, i * d:(i + 1) * d], curv=curv[i]) for i in range(k)], 1)
    torch.testing.assert_close(sp.factor_radii(x, curv=curv), radii)
    phi, omega = sp.cone_angles(x, y[:5], curv=curv)
    assert phi.shape == omega.shape == (5, k)
    i = 1
    torch.testing.assert_close(phi[:, i], lorentz.exterior_angle(x[:, i * d:(i + 1) * d], y[:5, i * d:(i + 1) * d],
                                                                 curv=curv[i]))
    inner = sum(lorentz.pairwise_inner(x[:, j * d:(j + 1) * d], y[:, j * d:(j + 1) * d], curv=curv[j])
                for j in range(k))
    torch.testing.assert_close(sp.pairwise_inner_sum(x, y, curv=curv), inner)


def test_path_to_root_runs_from_the_point_to_the_origin():
    for method, x, curv in ((M.get("meru", embed_dim=6), _points(4, 1, 6, 3), torch.tensor(0.7, dtype=torch.float64)),
                            (M.get("phyclip", k=2, d=3), _points(4, 2, 3, 4), torch.tensor([0.7, 1.3],
                                                                                            dtype=torch.float64))):
        path = method.space.path_to_root(x, curv=curv, steps=5)
        assert path.shape == (4, 5, x.shape[1])
        torch.testing.assert_close(path[:, 0], x)
        torch.testing.assert_close(path[:, -1], torch.zeros_like(x), atol=1e-12, rtol=0)
        # Evenly spaced along the geodesic: the distance to the root falls linearly.
        r = method.space.distance_to_root(path.reshape(-1, x.shape[1]), curv=curv).reshape(4, 5)
        torch.testing.assert_close(r, r[:, :1] * torch.linspace(1, 0, 5, dtype=r.dtype), atol=1e-9, rtol=1e-7)


def test_lorentz_cone_mask_matches_the_half_aperture():
    sp = M.get("meru", embed_dim=3).space
    c = torch.tensor(1.0)
    text = torch.tensor([[2.0, 0.0, 0.0]])
    inside, outside = torch.tensor([[4.0, 0.01, 0.0]]), torch.tensor([[0.0, 3.0, 0.0]])
    omega = lorentz.half_aperture(text, curv=c)
    assert lorentz.exterior_angle(text, inside, curv=c) < omega < lorentz.exterior_angle(text, outside, curv=c)
    assert sp.cone_mask(text, torch.cat([inside, outside]), curv=c).tolist() == [[True], [False]]


def test_euclidean_space_has_no_cones():
    sp = M.get("clip").space
    with pytest.raises(ValueError, match="no entailment cones"):
        sp.cone_angles(torch.ones(2, 3), torch.ones(2, 3), curv=None)
    with pytest.raises(ValueError, match="no geodesics"):
        sp.path_to_root(torch.ones(2, 3), curv=None, steps=3)


def test_no_evaluator_branches_on_geometry():
    found = []
    for path in sorted(EVAL.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                for side in (node.left, *node.comparators):
                    if isinstance(side, ast.Attribute) and side.attr == "geometry":
                        found.append(f"{path.name}:{node.lineno}")
    assert found == [], "ask the method's space (hyplib.methods.spaces) instead"


# --------------------------------------------------------------------------- method defaults
def test_prompt_aggregation_is_the_methods_own():
    assert Z.resolve_prompt_agg("auto", M.get("atmg")) == "score_mean"
    assert Z.resolve_prompt_agg("auto", M.get("atmg", variant="code")) == "score_mean"
    for name in ("clip", "meru", "hycoclip", "argent", "phyclip"):
        assert Z.resolve_prompt_agg("auto", M.get(name)) == "tangent_mean"
    assert Z.resolve_prompt_agg("tangent_mean", M.get("atmg")) == "tangent_mean"

    class Odd(M.REGISTRY["meru"]):
        EVAL_DEFAULTS = {"prompt_agg": "median"}

    with pytest.raises(ValueError, match="states prompt_agg='median'"):
        Z.resolve_prompt_agg("auto", Odd())


# --------------------------------------------------------------------------- registry
def test_registry_order_and_needs():
    assert DR.PROTOCOLS == ("zeroshot", "probe", "hierarchy", "retrieval", "pep", "chains", "composition", "hierarcaps",
                            "diagnostics")
    assert DR.NEEDS == {name: p.needs for name, p in P.REGISTRY.items()}
    assert [name for name, p in P.REGISTRY.items() if p.cones] == ["pep"]


def _declared(kind: str) -> list[str]:
    out = []
    for p in P.REGISTRY.values():
        for w in p.writes:
            if kind == "arrays" and w.startswith("arrays: "):
                out += [a.strip() for a in w[len("arrays: "):].split(",")]
            elif kind == "metrics" and not w.startswith("arrays: "):
                out.append(w)
    return out


def _matches(key: str, pattern: str) -> bool:
    head, _, tail = pattern.partition("<")
    if not _:
        return key == pattern or (pattern.endswith("/") and key.startswith(pattern))
    rest = tail.partition(">")[2]
    return key.startswith(head) and (key.endswith(rest) if not rest.endswith("/") else rest in key[len(head):])


def test_what_run_all_writes_is_declared(bench_dir):  # noqa: F811 (the fixture)
    arrays = {}
    metrics = DR.run_all(_model("phyclip"), bench_dir, arrays=arrays, traversal_images=2, traversal_steps=3)
    metric_patterns, array_patterns = _declared("metrics"), _declared("arrays")
    undeclared = [k for k in metrics if not k.startswith("time/") and not any(_matches(k, p) for p in metric_patterns)]
    assert undeclared == []
    assert [k for k in arrays if not any(_matches(k, p) for p in array_patterns)] == []
    assert {k.split("/")[1] for k in metrics if k.startswith("time/")} == set(DR.PROTOCOLS)
    assert math.isfinite(metrics["pep/auc"]) and arrays["factor_radius_image"].shape == (4,)
