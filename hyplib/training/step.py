"""One optimisation step, the same for every method and every device.

``model(batch) -> Embeddings`` under autocast, all-gather of the per-sample embeddings,
``method.loss(emb) -> {"loss", "logs"}``, backward (through a GradScaler for fp16), optional
global-norm clipping, the optimiser step, then ``clamp_parameters_`` on the model. The loop
checks the loss between :meth:`StepRunner.forward` and :meth:`StepRunner.backward_step`,
so a NaN never reaches the weights. The benchmark and the DDP test call this class too.

Accumulation (``accum_steps = n > 1``) splits each process's batch into ``n`` chunks without
shrinking the contrastive batch: the chunks' embeddings are computed without a graph and joined,
the loss (with the all-gathered global batch as negatives) is taken on these detached copies,
its backward gives the gradient of every embedding, and each chunk is then encoded again with
a graph and back-propagated with its slice of those gradients (gradient caching, Gao et al.
2021). Parameters get the gradient of the whole batch at the memory of one chunk's graph, for
one extra forward pass. It needs a deterministic forward (no dropout), which the towers have.
"""
from __future__ import annotations

import contextlib
import dataclasses

import torch
from torch import Tensor

from .distributed import gather_embeddings

__all__ = ["StepRunner", "autocast_dtype", "to_device"]

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: full float32).

    fp16 needs CUDA (its GradScaler is CUDA's); bf16 runs on CUDA and CPU.
    """
    if precision not in _DTYPES:
        raise ValueError(f"train.precision = {precision!r}: expected one of {tuple(_DTYPES)}")
    if precision == "fp16" and device.type != "cuda":
        raise RuntimeError(f"train.precision = 'fp16' needs CUDA (device is {device}); use fp32 or bf16")
    return _DTYPES[precision]


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a batch to ``device`` (asynchronously from pinned memory)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


class StepRunner:
    """Runs forward/loss and backward/update for ``model`` (plain or DDP-wrapped) and ``method``.

    Args:
        model: module whose ``forward(batch)`` returns an ``Embeddings``.
        method: object with ``loss(emb) -> {"loss": Tensor, "logs": {name: Tensor}}``.
        optimizer: the optimiser over the model's parameters (None: forward/backward only).
        device: where the batch and model live.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        grad_clip: max global gradient norm, or None.
        gather: all-gather embeddings across processes (no effect in one process).
        accum_steps: chunks each batch is encoded in (see the module docstring).
    """

    def __init__(self, model, method, optimizer=None, *, device: torch.device, precision: str = "fp32",
                 grad_clip: float | None = None, gather: bool = True, accum_steps: int = 1):
        self.model, self.method, self.optimizer = model, method, optimizer
        self.accum_steps, self._cache = int(accum_steps), None
        self.device = device
        self.dtype = autocast_dtype(precision, device)
        self.grad_clip = grad_clip
        self.gather = gather
        self.scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")

    @property
    def module(self):
        """The model without its DDP wrapper."""
        return getattr(self.model, "module", self.model)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def forward(self, batch: dict) -> tuple[Tensor, dict]:
        """Loss and its logged terms for one (local) batch; embeddings gathered across ranks."""
        if self.accum_steps > 1:
            return self._forward_cached(batch)
        with self.autocast():
            emb = self.model(batch)
            if self.gather:
                emb = gather_embeddings(emb)
            out = self.method.loss(emb)
        return out["loss"], dict(out.get("logs", {}))

    def _chunks(self, batch: dict) -> list[dict]:
        n = next(v.shape[0] for v in batch.values() if isinstance(v, Tensor))
        if n % self.accum_steps:
            raise ValueError(f"train.accum_steps = {self.accum_steps} does not divide the per-process "
                             f"batch of {n}")
        size = n // self.accum_steps
        return [{k: v[i * size:(i + 1) * size] if isinstance(v, Tensor) and v.shape[:1] == (n,) else v
                 for k, v in batch.items()} for i in range(self.accum_steps)]

    def _forward_cached(self, batch: dict) -> tuple[Tensor, dict]:
        """The loss on detached embeddings of all chunks (encoded without a graph)."""
        chunks = self._chunks(batch)
        with torch.no_grad(), self.autocast():
            parts = [self.model(c) for c in chunks]
        leaves = {}
        for f in dataclasses.fields(parts[0]):
            values = [getattr(p, f.name) for p in parts]
            if not isinstance(values[0], Tensor):
                continue
            joined = torch.cat(values) if values[0].ndim >= 2 else values[0]  # per-sample or shared
            leaves[f.name] = joined.detach().requires_grad_(True)
        emb = dataclasses.replace(parts[0], **leaves)
        with self.autocast():
            out = self.method.loss(gather_embeddings(emb) if self.gather else emb)
        self._cache = (chunks, leaves)
        return out["loss"], dict(out.get("logs", {}))

    def backward(self, loss: Tensor) -> None:
        """Gradients of ``loss`` on the parameters (scaled for fp16), chunk by chunk when caching."""
        self.scaler.scale(loss).backward()
        if self._cache is None:
            return
        (chunks, leaves), self._cache = self._cache, None
        size = chunks[0][next(k for k, v in chunks[0].items() if isinstance(v, Tensor))].shape[0]
        last = len(chunks) - 1
        for i, chunk in enumerate(chunks):
            # DDP reduces once, on the last chunk; the others accumulate locally
            sync = i == last or not hasattr(self.model, "no_sync")
            with contextlib.nullcontext() if sync else self.model.no_sync():
                with self.autocast():
                    emb = self.model(chunk)
                outs, grads = [], []
                for name, leaf in leaves.items():
                    if leaf.grad is None:
                        continue
                    if leaf.ndim >= 2:
                        outs.append(getattr(emb, name))
                        grads.append(leaf.grad[i * size:(i + 1) * size])
                    elif i == last:  # a shared scalar (curvature, logit scale): its gradient once
                        outs.append(getattr(emb, name))
                        grads.append(leaf.grad)
                torch.autograd.backward(outs, grads)

    def backward_step(self, loss: Tensor) -> Tensor | None:
        """Backward, clip, optimiser step and clamps; returns the pre-clip grad norm if clipping."""
        self.backward(loss)
        grad_norm = None
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.module.clamp_parameters_()
        return grad_norm
