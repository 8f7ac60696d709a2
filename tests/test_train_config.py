"""Run configurations, the schedule and checkpoint files: small pure units of the engine."""
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from hyplib import methods
from hyplib.models import tower_configs
from hyplib.training import checkpoint as ckpt
from hyplib.training.config import DEFAULTS, ConfigError, apply_overrides, diff_configs, parse_set, resolve_config
from hyplib.training.schedule import WarmupCosine, build_optimizer, lr_at

RUNS = Path(__file__).resolve().parents[1] / "config" / "runs"


@pytest.mark.parametrize("size", ["quick", "default", "paper"])
@pytest.mark.parametrize("name", methods.names())
def test_shipped_configs_resolve_for_every_method(size, name):
    cfg = resolve_config(RUNS / f"{size}.yaml", {"method": name})
    assert set(cfg) == set(DEFAULTS) and "per_method" not in cfg
    method = methods.get(name, **cfg["method_overrides"])
    tower_configs(cfg["model"], method.defaults["embed_dim"])  # model keys are valid


def test_paper_recipes_per_method():
    batch = {m: resolve_config(RUNS / "paper.yaml", {"method": m})["train"]["batch_size"]
             for m in methods.names()}
    assert batch["meru"] == batch["atmg"] == batch["clip"] == 2048
    assert batch["hycoclip"] == batch["phyclip"] == 768
    # an explicit override beats the per-method recipe
    cfg = resolve_config(RUNS / "paper.yaml", ["method=hycoclip", "train.batch_size=256"])
    assert cfg["train"]["batch_size"] == 256 and "grit" in cfg["data"]["shards"]


def test_overrides_forms_and_yaml_values():
    assert parse_set(["train.steps=10", "method=meru", "train.betas=[0.9, 0.95]"]) == {
        "train": {"steps": 10, "betas": [0.9, 0.95]}, "method": "meru"}
    flat = apply_overrides({"train": {"steps": 1, "lr": 1.0}}, {"train.steps": 5})
    assert flat == {"train": {"steps": 5, "lr": 1.0}}
    cfg = resolve_config({"train": {"lr": "5e-4"}})  # YAML 1.1 reads 5e-4 as a string
    assert cfg["train"]["lr"] == 5e-4
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(["train.steps"])


@pytest.mark.parametrize("bad, match", [
    ({"train": {"steps": 0}}, "train.steps"),
    ({"train": {"precision": "fp8"}}, "train.precision"),
    ({"train": {"batch_size": 1}}, "train.batch_size"),
    ({"data": {"group_size": 0}}, "data.group_size"),
    ({"data": {"shard": "x"}}, r"unknown config key 'data\.shard'.*shards"),
    ({"model": 3}, "'model' must be a mapping"),
])
def test_bad_values_are_named(bad, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(bad)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        resolve_config(tmp_path / "nope.yaml")


def test_diff_lists_changed_keys_but_not_runtime_ones():
    a = resolve_config({"method": "meru"})
    b = resolve_config({"method": "atmg", "train": {"progress": False, "lr": 1e-3},
                        "method_overrides": {"variant": "code"}})
    assert diff_configs(a, b) == ["method: 'meru' -> 'atmg'", "method_overrides.variant: <absent> -> 'code'",
                                  "train.lr: 0.0005 -> 0.001"]


def test_warmup_then_cosine():
    kw = dict(base_lr=1.0, warmup=4, total=14, min_lr=0.1)
    rates = [lr_at(s, **kw) for s in range(14)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert rates[4] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))
    assert rates[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 9)))
    assert lr_at(0, base_lr=1.0, warmup=0, total=1) == 1.0


def test_optimizer_is_adamw_with_per_group_decay():
    """Three steps of build_optimizer against AdamW written out by hand (decoupled decay)."""
    torch.manual_seed(0)
    w, b = torch.nn.Parameter(torch.randn(7, 5)), torch.nn.Parameter(torch.randn(5))
    cfg = {"lr": 1e-2, "betas": (0.9, 0.98), "eps": 1e-8, "weight_decay": 0.2}
    opt = build_optimizer([{"params": [w], "weight_decay": 0.2}, {"params": [b], "weight_decay": 0.0}],
                          cfg, torch.device("cpu"))
    ref = {"w": (w.detach().double().clone(), 0.2), "b": (b.detach().double().clone(), 0.0)}
    moments = {k: (torch.zeros_like(v), torch.zeros_like(v)) for k, (v, _) in ref.items()}
    for t in range(1, 4):
        grads = {"w": torch.randn(7, 5), "b": torch.randn(5)}
        w.grad, b.grad = grads["w"].clone(), grads["b"].clone()
        opt.step()
        for k, (p, wd) in ref.items():
            g = grads[k].double()
            m, v = moments[k]
            m.mul_(0.9).add_(0.1 * g)
            v.mul_(0.98).add_(0.02 * g * g)
            p.mul_(1 - cfg["lr"] * wd)
            p.sub_(cfg["lr"] * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.98 ** t)).sqrt() + cfg["eps"]))
    assert torch.allclose(w.detach().double(), ref["w"][0], atol=1e-6)
    assert torch.allclose(b.detach().double(), ref["b"][0], atol=1e-6)


def test_scheduler_state_restores_rate():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
    sched = WarmupCosine(opt, base_lr=2.0, warmup=2, total=10)
    for _ in range(5):
        sched.step()
    other = WarmupCosine(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0), base_lr=2.0,
                         warmup=2, total=10)
    other.load_state_dict(sched.state_dict())
    expected = lr_at(5, base_lr=2.0, warmup=2, total=10)
    assert other.optimizer.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == expected


def test_rng_state_roundtrip_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    ckpt.atomic_save({"rng": ckpt.rng_state()}, tmp_path / "s.pt")
    expect = (random.random(), np.random.randn(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.set_rng_state(ckpt.load(tmp_path / "s.pt")["rng"])
    got = (random.random(), np.random.randn(), torch.rand(3))
    assert got[:2] == expect[:2] and torch.equal(got[2], expect[2])


def test_checkpoint_listing_pruning_and_atomicity(tmp_path):
    for step in (3, 10, 7):
        ckpt.atomic_save({"step": step}, ckpt.checkpoint_path(tmp_path, step))
    (tmp_path / "step_0000011.pt.tmp").write_bytes(b"torn")  # a write killed half-way
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [3, 7, 10]
    assert ckpt.latest(tmp_path).name == "step_0000010.pt"
    ckpt.prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_0000007.pt", "step_0000010.pt"]
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        ckpt.load(tmp_path / "missing.pt")
