"""Preemption: SIGTERM/SIGUSR1 checkpoint the step reached and stop; the rerun resumes with its
whole log and data position, ending at the uninterrupted run's weights. Also the early,
named errors for a device or precision this machine cannot give."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_train_loop import TINY, NoisyMethod, cfg_for, parts_for

from hyplib.train import check_device, main
from hyplib.training import checkpoint as ckpt
from hyplib.training.config import ConfigError, resolve_config
from hyplib.training.logging import read_log
from hyplib.training.loop import Components, Preempted, fit

ROOT = Path(__file__).resolve().parents[1]
TIMING = {"samples_per_s", "data_s", "time"}  # wall-clock fields of a log record


def _signal_at(parts: Components, batch: int, signum: int) -> Components:
    """``parts`` whose loader sends ``signum`` to this process while it makes batch ``batch``
    (that is, during step ``batch + 1``), as SLURM would at an arbitrary moment."""
    inner = parts.make_loader

    def make(model, **kw):
        for b, item in enumerate(inner(model, **kw), start=kw["start_batch"]):
            if b == batch:
                os.kill(os.getpid(), signum)
            yield item
    return Components(parts.method, parts.build_model, parts.param_groups, make)


def _same_run(a: Path, b: Path) -> None:
    fa, fb = ckpt.load(a / "final.pt"), ckpt.load(b / "final.pt")
    for key, value in fa["model"].items():
        assert torch.equal(value, fb["model"][key]), key
    la, lb = read_log(a / "log.jsonl"), read_log(b / "log.jsonl")
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in la] == \
           [{k: v for k, v in r.items() if k not in TIMING} for r in lb]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_checkpoints_the_step_reached_and_the_rerun_resumes_exactly(tmp_path, signum):
    cfg = cfg_for("meru", steps=6, checkpoint_every=100, log_every=1)  # no periodic checkpoint before 6
    fit(cfg, tmp_path / "whole", parts_for("meru", NoisyMethod))
    with pytest.raises(Preempted, match="after step 4 of 6"):
        fit(cfg, tmp_path / "cut", _signal_at(parts_for("meru", NoisyMethod), batch=3, signum=signum))
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "cut" / "checkpoints")] == [4]
    assert [r["step"] for r in read_log(tmp_path / "cut" / "log.jsonl")] == [1, 2, 3, 4]
    assert not (tmp_path / "cut" / "final.pt").exists()
    assert signal.getsignal(signum) == signal.SIG_DFL  # the handlers are gone after fit
    resumed = fit(cfg, tmp_path / "cut", parts_for("meru", NoisyMethod))
    assert resumed["completed"] and resumed["resumed_from"].endswith("step_0000004.pt")
    _same_run(tmp_path / "whole", tmp_path / "cut")


def test_signal_on_a_logged_step_keeps_log_every(tmp_path):
    """With log_every = 2 the signal's checkpoint (step 3) falls between logged steps: the resumed
    log still holds exactly the uninterrupted run's lines."""
    cfg = cfg_for("clip", steps=6, checkpoint_every=100, log_every=2)
    fit(cfg, tmp_path / "whole", parts_for("clip"))
    with pytest.raises(Preempted):
        fit(cfg, tmp_path / "cut", _signal_at(parts_for("clip"), batch=2, signum=signal.SIGTERM))
    fit(cfg, tmp_path / "cut", parts_for("clip"))
    _same_run(tmp_path / "whole", tmp_path / "cut")
    assert [r["step"] for r in read_log(tmp_path / "cut" / "log.jsonl")] == [2, 4, 6]


@pytest.mark.slow
def test_sigterm_to_the_cli_process_then_rerun(tmp_path):
    """A real process on generated shards: SIGTERM mid-run -> exit 143 with a checkpoint of the
    step reached; the same command again resumes there (signalled again a few steps later), its
    log complete from step 1 with no step lost or repeated."""
    from hyplib.data.genconfig import GenConfig
    from hyplib.data.generate import generate_all

    generate_all(tmp_path / "data", GenConfig.preset("quick", n_train=64, shard_size=64), progress=False,
                 benchmarks=())
    cmd = [sys.executable, "-m", "hyplib.train", "--config", str(ROOT / "config/runs/quick.yaml"),
           "--run-dir", str(tmp_path / "run"), "--set", "method=clip", f"data.shards={tmp_path / 'data' / 'train'}",
           "train.steps=400", "train.batch_size=8", "train.checkpoint_every=1000", "train.log_every=1",
           "train.progress=false", "train.device=cpu", "data.num_workers=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = tmp_path / "run" / "log.jsonl"
    deadline = time.time() + 240
    while len(read_log(log)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == Preempted.EXIT_CODE, err[-2000:]
    assert "received SIGTERM" in err and "preempted: stopped by a signal after step" in err
    (step, path), = ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [r["step"] for r in read_log(log)] == list(range(1, step + 1))
    proc2 = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    while len(read_log(log)) < step + 2 and proc2.poll() is None:
        time.sleep(0.2)
    proc2.send_signal(signal.SIGUSR1)
    _, err2 = proc2.communicate(timeout=120)
    assert proc2.returncode == Preempted.EXIT_CODE, err2[-2000:]
    steps = [r["step"] for r in read_log(log)]
    assert steps == list(range(1, steps[-1] + 1)) and steps[-1] > step  # resumed, nothing lost or repeated
    assert ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")[-1][0] == steps[-1]


def test_cuda_without_gpu_and_fp16_on_cpu_fail_before_the_model(monkeypatch, tmp_path, capsys):
    import hyplib.train as entry

    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"'train\.device' = 'cuda' but no CUDA device is visible"):
            check_device(resolve_config({"model": TINY, "train": {"device": "cuda"}}))
    with pytest.raises(ConfigError, match=r"'train\.precision' = 'fp16' needs CUDA"):
        check_device(resolve_config({"model": TINY, "train": {"device": "cpu", "precision": "fp16"}}))
    check_device(resolve_config({"model": TINY, "train": {"device": "cpu", "precision": "bf16"}}))

    def no_build(cfg):
        raise AssertionError("the model was built before the device check")
    monkeypatch.setattr(entry, "build_components", no_build)
    (tmp_path / "c.yaml").write_text(json.dumps({"model": TINY, "train": {"steps": 2, "batch_size": 4}}))
    rc = main(["--config", str(tmp_path / "c.yaml"), "--run-dir", str(tmp_path / "run"),
               "--set", "train.device=cpu", "train.precision=fp16"])
    assert rc == 2 and "train.precision" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
