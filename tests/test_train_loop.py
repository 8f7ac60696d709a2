"""The training loop on random batches: exact resume, NaN stop, config refusal, logs, CLI.

The model is the real (tiny) open_clip model; batches come from a deterministic random
loader, and a wrapper method adds noise drawn from python's, numpy's and torch's global RNGs,
so the resume test also checks that every RNG stream is restored.
"""
import dataclasses
import itertools
import json
import random

import numpy as np
import pytest
import torch

from hyplib import methods, models
from hyplib.training import checkpoint as ckpt
from hyplib.training.config import ConfigError, resolve_config
from hyplib.training.distributed import resolve_device
from hyplib.training.logging import read_log
from hyplib.training.loop import Components, NonFiniteLossError, ResumeConfigError, fit

TINY = dict(image_size=16, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2,
            text_width=32, text_layers=1, text_heads=2, context_length=8, embed_dim=16)


def random_loader(uses_boxes: bool, size: int = 16, length: int = 8):
    """Loader factory: global batch ``b`` is a pure function of ``b``; each rank takes its slice."""
    def make(model, *, batch_size, rank, world_size, start_batch):
        def batches():
            for b in itertools.count(start_batch):
                g = torch.Generator().manual_seed(1000 + b)
                n = batch_size * world_size
                full = {"image": torch.randn(n, 3, size, size, generator=g),
                        "text": torch.randint(1, 400, (n, length), generator=g)}
                if uses_boxes:
                    full["image_box"] = torch.randn(n, 3, size, size, generator=g)
                    full["text_box"] = torch.randint(1, 400, (n, length), generator=g)
                yield {k: v[rank * batch_size:(rank + 1) * batch_size] for k, v in full.items()}
        return batches()
    return make


class NoisyMethod:
    """Wraps a method; perturbs the image embeddings with noise from all three global RNGs."""

    def __init__(self, inner):
        self.inner, self.name, self.uses_boxes = inner, inner.name, inner.uses_boxes

    def loss(self, emb):
        scale = 1e-3 * (1 + random.random() + float(np.random.rand()))
        noisy = emb.image + scale * torch.randn_like(emb.image)
        return self.inner.loss(dataclasses.replace(emb, image=noisy))


class NaNAt:
    """Wraps a method; at call ``at`` the term ``term`` (or only the total) becomes NaN."""

    def __init__(self, inner, at: int, term: str | None):
        self.inner, self.name, self.uses_boxes = inner, inner.name, inner.uses_boxes
        self.at, self.term, self.calls = at, term, 0

    def loss(self, emb):
        self.calls += 1
        out = self.inner.loss(emb)
        if self.calls == self.at:
            bad = torch.tensor(float("nan"))
            out["loss"] = out["loss"] + bad
            if self.term:
                out["logs"][self.term] = bad
        return out


def parts_for(name: str, wrap=None) -> Components:
    method = methods.get(name, **({} if name == "phyclip" else {"embed_dim": TINY["embed_dim"]}))
    model_cfg = {k: v for k, v in TINY.items() if not (name == "phyclip" and k == "embed_dim")}
    return Components(method=wrap(method) if wrap else method,
                      build_model=lambda: models.build_model(model_cfg, method),
                      param_groups=models.param_groups, make_loader=random_loader(method.uses_boxes))


def cfg_for(name: str = "meru", **train) -> dict:
    t = {"steps": 6, "batch_size": 8, "warmup_steps": 2, "checkpoint_every": 2, "keep_checkpoints": 2,
         "progress": False, "device": "cpu", **train}
    return resolve_config({"method": name, "model": TINY, "train": t})


@pytest.mark.slow
def test_resume_after_kill_gives_identical_weights(tmp_path):
    cfg = cfg_for("meru")
    full = fit(cfg, tmp_path / "a", parts_for("meru", NoisyMethod))
    assert full["completed"] and full["final"]
    part = fit(cfg, tmp_path / "b", parts_for("meru", NoisyMethod), stop_after=5)  # killed after step 5
    assert not part["completed"] and part["final"] is None
    assert not (tmp_path / "b" / "final.pt").exists()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "b" / "checkpoints")] == [2, 4]
    resumed = fit(cfg, tmp_path / "b", parts_for("meru", NoisyMethod))
    assert resumed["resumed_from"].endswith("step_0000004.pt")
    a, b = ckpt.load(tmp_path / "a" / "final.pt"), ckpt.load(tmp_path / "b" / "final.pt")
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    log_a, log_b = read_log(tmp_path / "a" / "log.jsonl"), read_log(tmp_path / "b" / "log.jsonl")
    assert [r["step"] for r in log_b] == [1, 2, 3, 4, 5, 6]  # step 5 of the killed job was dropped
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]
    # the newest `keep_checkpoints` are kept; full state for a further resume is there
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "b" / "checkpoints")] == [4, 6]
    state = ckpt.load(ckpt.latest(tmp_path / "b" / "checkpoints"))
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "step", "batches", "config"} <= set(state)


def test_log_records_every_term_and_scalar(tmp_path):
    fit(cfg_for("phyclip", steps=2, checkpoint_every=5), tmp_path, parts_for("phyclip"))
    log = read_log(tmp_path / "log.jsonl")
    assert [r["step"] for r in log] == [1, 2]
    rec = log[-1]
    method = methods.get("phyclip")
    assert isinstance(rec["curv"], list) and len(rec["curv"]) == method.defaults["k"]
    assert set(rec["alphas"]) == {"image", "text"}
    for key in ("loss", "logit_scale", "lr", "samples_per_s", "data_s", "time"):
        assert isinstance(rec[key], float), key
    assert (tmp_path / "config.yaml").is_file()
    final = ckpt.load(tmp_path / "final.pt")
    assert final["config"]["method"] == "phyclip" and final["step"] == 2
    assert {"method_overrides", "model"} <= set(final["config"])


@pytest.mark.parametrize("term", ["entailment", None])
def test_nan_loss_names_step_term_and_checkpoint(tmp_path, term):
    with pytest.raises(NonFiniteLossError) as info:
        fit(cfg_for("meru"), tmp_path, parts_for("meru", lambda m: NaNAt(m, at=3, term=term)))
    msg = str(info.value)
    assert "step 3" in msg
    assert (term or "total loss") in msg
    assert "step_0000002.pt" in msg
    # the NaN never reached the weights: the last good checkpoint is intact and finite
    state = ckpt.load(tmp_path / "checkpoints" / "step_0000002.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_nan_before_any_checkpoint_says_none(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"step 1\b.*none \(no checkpoint"):
        fit(cfg_for("clip"), tmp_path, parts_for("clip", lambda m: NaNAt(m, at=1, term="contrastive")))


def test_resume_with_different_config_refuses_listing_keys(tmp_path):
    fit(cfg_for("meru"), tmp_path, parts_for("meru"), stop_after=2)
    changed = cfg_for("meru", lr=1e-3, grad_clip=1.0)
    with pytest.raises(ResumeConfigError) as info:
        fit(changed, tmp_path, parts_for("meru"))
    msg = str(info.value)
    assert "train.lr: 0.0005 -> 0.001" in msg and "train.grad_clip: None -> 1.0" in msg
    assert "train.steps" not in msg
    assert "make clean-results" in msg and "results_dir" in msg  # the workflow's usual cause, named
    # keys that cannot change the weights may differ
    out = fit(cfg_for("meru", progress=True, log_every=3), tmp_path, parts_for("meru"))
    assert out["completed"] and out["resumed_from"].endswith("step_0000002.pt")


def test_completed_run_rerun_is_a_no_op(tmp_path):
    first = fit(cfg_for("clip", steps=2), tmp_path, parts_for("clip"))
    again = fit(cfg_for("clip", steps=2), tmp_path, parts_for("clip"))
    assert again["completed"] and again["steps_done"] == 2 and again["final"] == first["final"]
    assert again["final_loss"] == pytest.approx(first["final_loss"])
    assert len(read_log(tmp_path / "log.jsonl")) == 2


def test_grad_clip_logs_norm_and_bf16_on_cpu_runs(tmp_path):
    fit(cfg_for("meru", steps=2, grad_clip=0.5, precision="bf16"), tmp_path, parts_for("meru"))
    rec = read_log(tmp_path / "log.jsonl")[-1]
    assert rec["grad_norm"] > 0 and np.isfinite(rec["loss"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_request_without_gpu_fails_clearly(tmp_path):
    with pytest.raises(RuntimeError, match="no CUDA device is available.*train.device=cpu"):
        resolve_device("cuda")
    with pytest.raises(RuntimeError, match="fp16.*needs CUDA"):
        fit(cfg_for("clip", precision="fp16"), tmp_path, parts_for("clip"))


def test_unknown_config_key_is_named():
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.stepz'.*steps"):
        resolve_config({"train": {"stepz": 3}})
    with pytest.raises(ConfigError, match=r"unknown config key 'optimizer'"):
        resolve_config({"optimizer": {}})


def test_cli_main_trains_and_reports_errors(tmp_path, monkeypatch, capsys):
    import hyplib.train as entry

    monkeypatch.setattr(entry, "build_components", lambda cfg: parts_for(cfg["method"]))
    (tmp_path / "c.yaml").write_text(json.dumps({"model": TINY, "train": {"steps": 2, "batch_size": 4}}))
    rc = entry.main(["--config", str(tmp_path / "c.yaml"), "--run-dir", str(tmp_path / "run"),
                     "--set", "method=atmg", "train.progress=false", "--set", "train.device=cpu"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["completed"] is True
    assert ckpt.load(tmp_path / "run" / "final.pt")["config"]["method"] == "atmg"
    rc = entry.main(["--config", str(tmp_path / "c.yaml"), "--run-dir", str(tmp_path / "run2"),
                     "--set", "train.warmup=3"])
    assert rc == 2 and "train.warmup" in capsys.readouterr().err
