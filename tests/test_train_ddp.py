"""Two and four CPU processes (gloo) against one: same gradients for the same global batch, with
and without accumulation in chunks, and the whole loop (DDP, gathered negatives, rank-0
checkpoints) ends at the single-process weights."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from test_train_loop import TINY, cfg_for, parts_for, random_loader

from hyplib import methods, models
from hyplib.training import checkpoint as ckpt
from hyplib.training.distributed import DistInfo, setup, wrap_ddp
from hyplib.training.logging import read_log
from hyplib.training.loop import fit
from hyplib.training.step import StepRunner

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(rank: int, port: int, world: int = WORLD) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world))


def _method(name):
    return methods.get(name, embed_dim=TINY["embed_dim"])


def _grads(name: str, batch: dict, ddp: bool, accum: int = 1) -> dict:
    method = _method(name)
    torch.manual_seed(0)
    model = models.build_model(TINY, method)
    wrapped = wrap_ddp(model, DistInfo(), unused=[]) if ddp else model
    runner = StepRunner(wrapped, method, device=torch.device("cpu"), accum_steps=accum)
    loss, _ = runner.forward(batch)
    runner.backward(loss)
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


NAMES = ("meru", "hycoclip")  # a plain and a box method; both gather negatives across ranks


def _grad_worker(rank: int, port: int, batches: dict, out: str, world: int, accum: int) -> None:
    _env(rank, port, world)
    setup("cpu")
    for name, batch in batches.items():
        b = next(iter(batch.values())).shape[0] // world
        local = {k: v[rank * b:(rank + 1) * b] for k, v in batch.items()}
        torch.save(_grads(name, local, ddp=True, accum=accum), f"{out}/{name}{rank}.pt")
    torch.distributed.destroy_process_group()


def _global_batch(name: str) -> dict:
    loader = random_loader(_method(name).uses_boxes, size=TINY["image_size"], length=TINY["context_length"])
    return next(iter(loader(None, batch_size=8, rank=0, world_size=1, start_batch=0)))


def test_accumulated_gradients_match_one_pass():
    """Chunks of 2 (accum_steps 4) against the whole batch of 8 in one pass, every method: the
    cached-embedding backward gives the same gradient on every parameter, shared scalars too."""
    for name in methods.names():
        method = methods.get(name, **({} if name == "phyclip" else {"embed_dim": TINY["embed_dim"]}))
        loader = random_loader(method.uses_boxes, size=TINY["image_size"], length=TINY["context_length"])
        batch = next(iter(loader(None, batch_size=8, rank=0, world_size=1, start_batch=0)))
        model_cfg = {k: v for k, v in TINY.items() if not (name == "phyclip" and k == "embed_dim")}
        grads = []
        for accum in (1, 4):
            torch.manual_seed(0)
            model = models.build_model(model_cfg, method)
            runner = StepRunner(model, method, device=torch.device("cpu"), accum_steps=accum)
            loss, _ = runner.forward(batch)
            runner.backward(loss)
            grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
        assert set(grads[0]) == set(grads[1]) and "log_logit_scale" in grads[0]
        for key, g in grads[0].items():  # per tensor, relative to its norm: summation order differs
            assert (grads[1][key] - g).norm() <= 1e-4 * g.norm() + 1e-8, (name, key)


@pytest.mark.slow
@pytest.mark.parametrize("world,accum", [(2, 1), (4, 1), (2, 2)])
def test_ddp_gradients_match_single_process(tmp_path, world, accum):
    """``world`` processes (each ``accum`` chunks) against one process on the same global batch."""
    batches = {name: _global_batch(name) for name in NAMES}
    mp.spawn(_grad_worker, args=(_free_port(), batches, str(tmp_path), world, accum), nprocs=world, join=True)
    for name, batch in batches.items():
        single = _grads(name, batch, ddp=False)
        # curvature, alphas and logit scale are shared scalars: their gradients must match too
        assert {"log_curv", "log_logit_scale", "log_alpha_image"} <= set(single)
        for rank in range(world):
            dist = torch.load(tmp_path / f"{name}{rank}.pt")
            assert set(dist) == set(single)
            for key, g in single.items():
                if (world, accum) == (2, 1):
                    where = f"{name} {key} rank {rank}"
                    torch.testing.assert_close(dist[key], g, rtol=1e-5, atol=1e-7,
                                               msg=lambda m, where=where: f"{where}: {m}")
                else:  # other summation orders: relative to the tensor's norm (a lost term is O(1))
                    assert (dist[key] - g).norm() <= 1e-4 * g.norm() + 1e-8, (name, key, rank)


def _fit_worker(rank: int, port: int, run_dir: str) -> None:
    _env(rank, port)
    fit(cfg_for("meru", steps=3, checkpoint_every=2), run_dir, parts_for("meru"))


@pytest.mark.slow
def test_ddp_fit_matches_single_process(tmp_path):
    fit(cfg_for("meru", steps=3, checkpoint_every=2), tmp_path / "one", parts_for("meru"))
    mp.spawn(_fit_worker, args=(_free_port(), str(tmp_path / "two")), nprocs=WORLD, join=True)
    one, two = ckpt.load(tmp_path / "one" / "final.pt"), ckpt.load(tmp_path / "two" / "final.pt")
    log_one, log_two = read_log(tmp_path / "one" / "log.jsonl"), read_log(tmp_path / "two" / "log.jsonl")
    assert len(log_two) == 3  # rank 0 alone writes the log
    for a, b in zip(log_one, log_two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["curv"] == pytest.approx(a["curv"], rel=1e-5)
    # Adam turns float noise in near-zero gradients (e.g. attention key biases) into steps of
    # up to lr, so weights agree to a few lr; the gradient test above is the exact check.
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=0, atol=2e-3,
                                   msg=lambda m, key=key: f"{key}: {m}")
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "two" / "checkpoints")] == [2, 3]


@pytest.mark.slow
def test_cli_under_torchrun(tmp_path):
    """``torchrun --nproc_per_node 2 -m hyplib.train`` on generated shards (gloo on CPU)."""
    import subprocess
    import sys

    from hyplib.data.genconfig import GenConfig
    from hyplib.data.generate import generate_all

    generate_all(tmp_path / "data", GenConfig.preset("quick", n_train=128, shard_size=128), progress=False,
                 benchmarks=())
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "hyplib.train", "--config", str(root / "config/runs/quick.yaml"), "--run-dir",
           str(tmp_path / "run"), "--set", "method=meru", f"data.shards={tmp_path / 'data' / 'train'}",
           "train.steps=2", "train.progress=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    final = ckpt.load(tmp_path / "run" / "final.pt")
    assert final["step"] == 2 and ckpt.load(ckpt.latest(tmp_path / "run" / "checkpoints"))["world_size"] == 2
    assert '"completed": true' in out.stdout
