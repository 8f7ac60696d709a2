"""The training loop: set-up, exact resume, the step loop, checkpoints, the final model.

:func:`fit` is method-agnostic: it receives a :class:`Components` (a method object, a model
factory, ``param_groups`` and a loader factory) and never asks which method it trains.
``hyplib.train.train`` builds the real components from the registry; tests pass stand-ins.

Resume: if ``run_dir/checkpoints`` holds a checkpoint, the run continues from the newest
one. Its saved configuration must equal the new one (apart from :data:`RUNTIME_KEYS`), the
loader restarts at ``start_batch = batches consumed``, and the RNG states are restored last,
right before the first step, so the continuation repeats the uninterrupted run exactly.

Preemption: while :func:`fit` runs, SIGTERM and SIGUSR1 (what SLURM sends before it preempts,
requeues or times out a job) set a flag; at the end of the step in progress every rank agrees,
a checkpoint of that step is written, the log is flushed and :class:`Preempted` is raised (the
CLI exits with :attr:`Preempted.EXIT_CODE`). The rerun resumes from that checkpoint, so no
step, log line or data position is lost.
"""
from __future__ import annotations

import itertools
import json
import math
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .compiled import compile_method, compile_towers
from .config import ConfigError, diff_configs, dump_yaml
from .distributed import DistInfo, all_true, barrier, broadcast_object, setup, unused_parameters, wrap_ddp
from .logging import JsonlLogger, model_scalars, postfix, terms_finite, to_number
from .schedule import WarmupCosine, build_optimizer
from .step import StepRunner, to_device

__all__ = ["Components", "fit", "NonFiniteLossError", "ResumeConfigError", "Preempted", "seed_everything"]

#: Signals that make a run checkpoint and stop (SLURM: preemption, requeue, ``--signal``, time-out).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or Inf; the message names the step, the term and the last checkpoint."""


class ResumeConfigError(ConfigError):
    """A run directory's checkpoint was made with a different configuration."""


class Preempted(RuntimeError):
    """A stop signal arrived: the step reached is checkpointed; rerun the same command to resume."""

    EXIT_CODE = 143  # 128 + SIGTERM, what a job killed by SIGTERM reports


class _StopFlag:
    """Records a stop signal while installed (main thread only; elsewhere it never fires)."""

    def __init__(self):
        self.signum, self._old = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        print(f"received {signal.Signals(signum).name}: checkpointing after this step", file=sys.stderr,
              flush=True)

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class Components:
    """What :func:`fit` trains, built by the caller.

    Attributes:
        method: object with ``name`` and ``loss(emb)``.
        build_model: ``() -> nn.Module``; called after seeding, on CPU.
        param_groups: ``(model, weight_decay) -> list[dict]`` optimiser groups.
        make_loader: ``(model, *, batch_size, rank, world_size, start_batch) -> iterable``
            of batch dicts (``batch_size`` per process; deterministic given ``start_batch``).
    """

    method: Any
    build_model: Callable[[], torch.nn.Module]
    param_groups: Callable[[torch.nn.Module, float], list]
    make_loader: Callable[..., Iterable[dict]]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (every CUDA device). All ranks use the same seed, so a
    method's own randomness, applied to the gathered global batch, agrees across ranks."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit(cfg: dict, run_dir: str | Path, parts: Components, *, stop_after: int | None = None) -> dict:
    """Train ``parts`` under the resolved config ``cfg`` in ``run_dir``; see the module docstring.

    Args:
        stop_after: stop after this many steps of *this* invocation without a final checkpoint
            (simulates a killed job; the next call resumes from the last periodic checkpoint).

    Returns:
        A summary dict: ``steps_done``, ``completed``, ``final_loss``, ``final_logs``,
        ``resumed_from``, ``wall_s``, ``samples_per_s``, ``final``, ``run_dir``.
    """
    created = not (dist.is_available() and dist.is_initialized())
    info = setup(cfg["train"]["device"])
    try:
        return _fit(cfg, Path(run_dir), parts, info, stop_after)
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def _find_resume(cfg: dict, run_dir: Path, info: DistInfo) -> tuple[Path | None, dict | None]:
    """The newest loadable checkpoint (a damaged newer one is skipped with a warning) and its state."""
    found = ckpt.load_newest(run_dir / "checkpoints") if info.is_main else (None, None)
    path = broadcast_object(found[0])
    if path is None:
        return None, None
    state = found[1] if info.is_main else ckpt.load(path, map_location="cpu")
    diff = diff_configs(state["config"], cfg)
    if diff:
        raise ResumeConfigError(
            f"{run_dir} holds a checkpoint ({path.name}) made with a different configuration; "
            f"refusing to resume. Keys that differ (saved -> new):\n  " + "\n  ".join(diff)
            + "\nUse a new run directory, or the saved configuration (run_dir/config.yaml). From the "
            "workflow: `make quick` and `make reproduce` write the same run names under results/, so "
            "run `make clean-results` between them, or give one config its own results_dir.")
    finished = state["step"] >= cfg["train"]["steps"] and (run_dir / "final.pt").is_file()
    if state["world_size"] != info.world_size and not finished:  # a finished run is only read
        raise ResumeConfigError(
            f"{path} was written by {state['world_size']} process(es) but this run has "
            f"{info.world_size}; resume with the same number of processes")
    return path, state


def _nonfinite_message(step: int, loss: float, terms: dict, last_good: Path | None) -> str:
    bad = terms_finite(terms)
    where = (", ".join(f"{k}={terms[k]}" for k in bad) if bad
             else f"total loss={loss} (all logged terms finite)")
    good = str(last_good) if last_good else "none (no checkpoint written yet)"
    return (f"non-finite loss at step {step}: offending term(s): {where}. "
            f"Last good checkpoint: {good}. Terms at this step: {terms}")


def _write_final(run_dir: Path, module, cfg: dict, step: int, summary: dict, loader, info: DistInfo) -> Path:
    stats = getattr(loader, "stats", None)
    if info.enabled:
        gathered = [None] * info.world_size
        dist.all_gather_object(gathered, stats)
        stats = {"per_rank": gathered}
    if not info.is_main:
        return run_dir / "final.pt"
    if stats is not None:
        with open(run_dir / "data_stats.json", "w") as f:
            json.dump(stats, f, indent=1, default=str)
    state = {"model": module.state_dict(), "config": cfg, "step": step, "method": cfg["method"],
             "summary": summary}
    return ckpt.atomic_save(state, run_dir / "final.pt")


def _fit(cfg: dict, run_dir: Path, parts: Components, info: DistInfo, stop_after: int | None) -> dict:
    t_cfg = cfg["train"]
    if t_cfg["threads"]:
        torch.set_num_threads(int(t_cfg["threads"]))
    total, global_batch = t_cfg["steps"], t_cfg["batch_size"]
    if global_batch % info.world_size:
        raise ConfigError(f"train.batch_size = {global_batch} does not split over "
                          f"{info.world_size} processes")
    if (global_batch // info.world_size) % t_cfg["accum_steps"]:
        raise ConfigError(f"train.accum_steps = {t_cfg['accum_steps']} does not divide the per-process batch "
                          f"of {global_batch // info.world_size} (train.batch_size = {global_batch} over "
                          f"{info.world_size} processes)")
    resume_path, state = _find_resume(cfg, run_dir, info)
    if state is not None and state["step"] >= total and (run_dir / "final.pt").is_file():
        try:
            done = ckpt.load(run_dir / "final.pt")["summary"]  # finished before: nothing to train
            return {**done, "resumed_from": str(resume_path), "final": str(run_dir / "final.pt")}
        except ckpt.LOAD_ERRORS as err:
            warnings.warn(f"{run_dir / 'final.pt'} is unreadable ({type(err).__name__}); rebuilding it "
                          f"from {resume_path}", RuntimeWarning, stacklevel=2)
    if info.is_main:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        dump_yaml(cfg, run_dir / "config.yaml")

    run = _Run(cfg, run_dir, parts, info, state)
    end = total if stop_after is None else min(total, run.start + int(stop_after))
    logger = JsonlLogger(run_dir / "log.jsonl", enabled=info.is_main)
    logger.truncate_after(run.start)  # a fresh run starts an empty log; a resumed one drops redone steps
    bar = tqdm(total=total, initial=run.start, desc=f"train {getattr(parts.method, 'name', '')}",
               disable=not (info.is_main and t_cfg["progress"]), dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 30.0)  # batch logs: a line per 30 s
    last_good, record = resume_path, {"loss": run.last_loss}  # a call with no step left keeps the saved loss
    if t_cfg["compile_towers"] and info.is_main and run.start < end:
        bar.write(f"train.compile_towers: the first step compiles the {' and '.join(t_cfg['compile_towers'])} "
                  f"tower(s) (about a minute on 2 cores; seconds when inductor's cache has them)", file=sys.stderr)
    with _StopFlag() as stop:
        try:
            for step in range(run.start, end):
                record = run.step(step, last_good)
                stopping = not all_true(stop.signum is None, info.device)  # every rank stops together
                if record["step"] % t_cfg["log_every"] == 0 or record["step"] == end:
                    logger.write(record)
                bar.update(1)
                bar.set_postfix(postfix(record["loss"], run.terms, record), refresh=False)
                if record["step"] % t_cfg["checkpoint_every"] == 0 or record["step"] == total or stopping:
                    last_good = run.save(record["step"], record)
                if stopping and record["step"] < total:
                    raise Preempted(f"stopped by a signal after step {record['step']} of {total}; "
                                    f"checkpoint {last_good}; rerun to resume")
        finally:
            bar.close()
            logger.close()
    wall = time.perf_counter() - run.t_start
    summary = {"run_dir": str(run_dir), "method": cfg["method"], "steps_done": end, "completed": end == total,
               "final_loss": record["loss"], "final_logs": run.terms,
               "resumed_from": str(resume_path) if resume_path else None, "wall_s": wall,
               "samples_per_s": (end - run.start) * global_batch / wall if wall > 0 else None,
               "last_checkpoint": str(last_good) if last_good else None, "final": None}
    if end == total:
        summary["final"] = str(_write_final(run_dir, run.module, cfg, end, summary, run.loader, info))
    barrier()
    return summary


class _Run:
    """The live state of one training run: model, optimiser, schedule, batches, step runner.

    Built in the order that makes resume exact: seed, model, optimiser, restored states,
    loader at ``start_batch``, DDP, and the RNG streams restored last.
    """

    def __init__(self, cfg: dict, run_dir: Path, parts: Components, info: DistInfo, state: dict | None):
        t_cfg = cfg["train"]
        self.cfg, self.run_dir, self.info = cfg, run_dir, info
        self.global_batch = t_cfg["batch_size"]
        seed_everything(cfg["seed"])
        self.module = parts.build_model().to(info.device).train()
        self.method = parts.method
        if t_cfg["compile"]:
            self.method = compile_method(parts.method)
            self.module.method = self.method  # the model lifts with the compiled method too
        if t_cfg["compile_towers"]:
            compile_towers(self.module, t_cfg["compile_towers"])
        self.optimizer = build_optimizer(parts.param_groups(self.module, t_cfg["weight_decay"]), t_cfg,
                                         info.device)
        self.sched = WarmupCosine(self.optimizer, base_lr=t_cfg["lr"], warmup=t_cfg["warmup_steps"],
                                  total=t_cfg["steps"], min_lr=t_cfg["min_lr"])
        self.start = 0
        if state is not None:
            self.module.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            self.start = int(state["step"])
        self.loader = parts.make_loader(self.module, batch_size=self.global_batch // info.world_size,
                                        rank=info.rank, world_size=info.world_size, start_batch=self.start)
        loader_states = (state or {}).get("loader")
        if loader_states and hasattr(self.loader, "load_state_dict") and len(loader_states) > info.rank:
            self.loader.load_state_dict(loader_states[info.rank])  # counts continue across the resume
        self.batches = iter(self.loader)
        model = self.module
        if info.enabled:
            first = next(self.batches)
            self.batches = itertools.chain([first], self.batches)
            unused = unused_parameters(self.module, parts.method, to_device(first, info.device))
            model = wrap_ddp(self.module, info, unused)
        self.runner = StepRunner(model, self.method, self.optimizer, device=info.device,
                                 precision=t_cfg["precision"], grad_clip=t_cfg["grad_clip"],
                                 gather=t_cfg["gather"], accum_steps=t_cfg["accum_steps"])
        self.terms: dict = dict(state.get("terms", {})) if state is not None else {}
        self.last_loss = float(state.get("loss", float("nan"))) if state is not None else float("nan")
        if state is not None:
            self.runner.scaler.load_state_dict(state["scaler"])
            ckpt.set_rng_state(state["rng"])  # last, so nothing above consumes the restored streams
        self.t_start = time.perf_counter()

    def _next_batch(self, step: int) -> dict:
        try:
            return next(self.batches)
        except StopIteration:
            raise RuntimeError(f"the loader ran out at step {step + 1}; it must yield at least "
                               f"train.steps = {self.cfg['train']['steps']} batches") from None

    def step(self, step: int, last_good: Path | None) -> dict:
        """Run optimiser step ``step + 1``; returns its ``log.jsonl`` record.

        Raises:
            NonFiniteLossError: before the update, if the loss or a logged term is NaN/Inf.
        """
        t0 = time.perf_counter()
        batch = self._next_batch(step)
        t_data = time.perf_counter() - t0
        loss, logs = self.runner.forward(to_device(batch, self.info.device))
        loss_v, self.terms = to_number(loss), {k: to_number(v) for k, v in logs.items()}
        if not all_true(math.isfinite(loss_v) and not terms_finite(self.terms), self.info.device):
            raise NonFiniteLossError(_nonfinite_message(step + 1, loss_v, self.terms, last_good))
        lr = self.sched.current_lr()
        grad_norm = self.runner.backward_step(loss)
        self.sched.step()
        dt = time.perf_counter() - t0
        record = {"step": step + 1, **self.terms, "loss": loss_v, **model_scalars(self.module), "lr": lr,
                  "samples_per_s": self.global_batch / dt, "data_s": t_data,
                  "time": time.perf_counter() - self.t_start}
        if grad_norm is not None:
            record["grad_norm"] = to_number(grad_norm)
        return record

    def save(self, step: int, record: dict) -> Path:
        """Write ``checkpoints/step_<step>.pt`` (rank 0) and keep the newest few.

        Besides the training state it holds the step's ``loss`` and ``terms`` (the summary of a
        run rebuilt from it) and every rank's loader state (``loader``, a list by rank: counts of
        read and skipped records continue across a resume)."""
        path = ckpt.checkpoint_path(self.run_dir / "checkpoints", step)
        loader_state = self.loader.state_dict() if hasattr(self.loader, "state_dict") else None
        if self.info.enabled:
            gathered = [None] * self.info.world_size
            dist.all_gather_object(gathered, loader_state)
            loader_state = gathered
        else:
            loader_state = [loader_state]
        if self.info.is_main:
            state = {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "scheduler": self.sched.state_dict(), "scaler": self.runner.scaler.state_dict(),
                     "rng": ckpt.rng_state(), "step": step, "batches": step,
                     "world_size": self.info.world_size, "config": self.cfg,
                     "loss": float(record["loss"]), "terms": dict(self.terms),
                     "loader": loader_state if all(s is not None for s in loader_state) else None}
            ckpt.atomic_save(state, path)
            ckpt.prune(self.run_dir / "checkpoints", self.cfg["train"]["keep_checkpoints"])
        return path
