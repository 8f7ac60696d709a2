"""One optimisation step, the same for every method and every device.

``model(batch) -> Embeddings`` under autocast, all-gather of the per-sample embeddings,
``method.loss(emb) -> {"loss", "logs"}``, backward (through a GradScaler for fp16), optional
global-norm clipping, the optimiser step, then ``clamp_parameters_`` on the model. The loop
checks the loss between :meth:`StepRunner.forward` and :meth:`StepRunner.backward_step`,
so a NaN never reaches the weights. The benchmark and the DDP test call this class too.
"""
from __future__ import annotations

import contextlib

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
    """

    def __init__(self, model, method, optimizer=None, *, device: torch.device, precision: str = "fp32",
                 grad_clip: float | None = None, gather: bool = True):
        self.model, self.method, self.optimizer = model, method, optimizer
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
        with self.autocast():
            emb = self.model(batch)
            if self.gather:
                emb = gather_embeddings(emb)
            out = self.method.loss(emb)
        return out["loss"], dict(out.get("logs", {}))

    def backward_step(self, loss: Tensor) -> Tensor | None:
        """Backward, clip, optimiser step and clamps; returns the pre-clip grad norm if clipping."""
        self.scaler.scale(loss).backward()
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
