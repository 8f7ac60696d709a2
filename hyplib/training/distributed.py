"""Processes and devices: torchrun set-up, device choice, and all-gather with gradients.

Under ``torchrun`` (``WORLD_SIZE > 1`` in the environment) :func:`setup` joins the process
group through ``env://`` with NCCL on CUDA and gloo on CPU. Under ``srun`` with one task per
GPU (``SLURM_NTASKS > 1``, no ``WORLD_SIZE``: the workflow's multi-GPU launch),
:func:`slurm_env` derives the same variables from SLURM's: rank = ``SLURM_PROCID``, local rank
= ``SLURM_LOCALID``, the rendezvous host is the first node of the step and its port is fixed
by the job id, so every task of every node meets at the same address without a launcher.
Without either everything runs in one process and the collectives below are identities.

Contrastive negatives come from the whole global batch: :func:`gather_embeddings` all-gathers
every per-sample field of an ``Embeddings``. Every rank then computes the same global loss;
the backward of :class:`_GatherWithGrad` sums the gradient each rank sends to a slice, so
after DDP averages over ranks every parameter (towers, curvatures, alphas, logit scale)
receives exactly the gradient of a single process on the same global batch.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["DistInfo", "setup", "slurm_env", "first_host", "cleanup", "resolve_device", "gather_with_grad",
           "gather_embeddings", "all_true", "barrier", "broadcast_object", "unused_parameters", "wrap_ddp"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(request: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU fails saying so.

    Under torchrun on CUDA each process takes ``cuda:<LOCAL_RANK>``.
    """
    request = str(request).lower()
    if request == "auto":
        request = "cuda" if torch.cuda.is_available() else "cpu"
    if request == "cpu":
        return torch.device("cpu")
    if not request.startswith("cuda"):
        raise ValueError(f"train.device = {request!r}: expected auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        build = torch.version.cuda or "none (CPU-only build)"
        raise RuntimeError(
            f"train.device = {request!r} but no CUDA device is available "
            f"(torch {torch.__version__}, CUDA build {build}); set train.device=cpu or auto")
    if request == "cuda":  # modulo: srun binding one GPU per task shows each process only cuda:0
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    index = int(request.split(":", 1)[1])
    if index >= torch.cuda.device_count():
        raise RuntimeError(f"train.device = {request!r} but only {torch.cuda.device_count()} CUDA "
                           f"device(s) are visible")
    return torch.device("cuda", index)


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``gpu[03-05,09],cpu1`` -> ``gpu03``."""
    nodelist = nodelist.strip()
    comma, bracket = nodelist.find(","), nodelist.find("[")
    if bracket < 0 or 0 <= comma < bracket:  # the first entry has no range
        return nodelist.split(",")[0]
    prefix, ranges = nodelist[:bracket], nodelist[bracket + 1:nodelist.index("]")]
    return prefix + ranges.split(",")[0].split("-")[0]


def slurm_env(environ=None) -> dict[str, str]:
    """torchrun's variables for a process started by ``srun`` (empty when torchrun's are set or
    the step has one task): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` (first node
    of the step) and ``MASTER_PORT`` (20000 + job id mod 20000, unless already set)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" in env or int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1"))) <= 1:
        return {}
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodes:
        raise RuntimeError("SLURM_NTASKS > 1 but no SLURM_STEP_NODELIST/SLURM_JOB_NODELIST: cannot find "
                           "the rendezvous host")
    return {"RANK": env["SLURM_PROCID"], "WORLD_SIZE": env.get("SLURM_NTASKS", env.get("SLURM_NPROCS")),
            "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
            "MASTER_ADDR": env.get("MASTER_ADDR") or first_host(nodes),
            "MASTER_PORT": env.get("MASTER_PORT") or str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000)}


def setup(device_request: str = "auto") -> DistInfo:
    """Join the torchrun (or srun) process group if there is one, and pick this process's device."""
    os.environ.update(slurm_env())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_request, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                                device_id=device if device.type == "cuda" else None)
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=device)


def cleanup(info: DistInfo, *, created: bool) -> None:
    """Leave the process group if :func:`setup` created it."""
    if created and dist.is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward returns this rank's slice of the summed gradients."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        world = dist.get_world_size()
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        parts[ctx.rank] = x  # the local slice keeps its exact values
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        # Sum over ranks: every rank's (identical) global loss sends gradient to every slice.
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather_with_grad(x: Tensor) -> Tensor:
    """``(B, ...)`` per rank -> ``(world*B, ...)`` in rank order; identity in one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def gather_embeddings(emb):
    """All-gather the per-sample fields (tensors with a batch dimension, ndim >= 2) of ``emb``.

    ``curv`` (() or (k,)) and ``logit_scale`` (()) are shared parameters and stay as they are.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return emb
    updates = {f.name: gather_with_grad(v) for f in dataclasses.fields(emb)
               if isinstance(v := getattr(emb, f.name), Tensor) and v.ndim >= 2}
    return dataclasses.replace(emb, **updates)


def unused_parameters(module: torch.nn.Module, method, batch: dict, n: int = 2) -> list[str]:
    """Trainable parameters the loss does not reach, found on the first ``n`` samples of ``batch``.

    Runs one small forward/backward outside DDP with :func:`torch.autograd.grad` (no ``.grad``
    is touched) and restores every RNG stream afterwards, so the run is unchanged.
    """
    from .checkpoint import rng_state, set_rng_state

    named = [(k, p) for k, p in module.named_parameters() if p.requires_grad]
    small = {k: v[:n] if isinstance(v, Tensor) else v for k, v in batch.items()}
    saved = rng_state()
    try:
        loss = method.loss(module(small))["loss"]
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    finally:
        set_rng_state(saved)
    return [k for (k, _), g in zip(named, grads) if g is None]


def wrap_ddp(module: torch.nn.Module, info: DistInfo, unused: list[str]):
    """DDP around ``module``; ``find_unused_parameters`` only when some parameter gets no gradient.

    (``static_graph=True`` would avoid the probe, but with the collective inside
    :class:`_GatherWithGrad`'s backward it produced wrong gradients in our two-process test.)
    """
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=[info.device.index] if info.device.type == "cuda" else None,
        find_unused_parameters=bool(unused))


def all_true(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` holds on every rank (so all ranks stop together)."""
    if not dist.is_initialized():
        return flag
    t = torch.tensor([0 if flag else 1], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return int(t.item()) == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (identity in one process)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
