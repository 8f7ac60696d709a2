"""``train.compile``: a method whose objective and lift run through ``torch.compile``.

On a GPU, a hyperbolic objective at batch 256 is a few hundred small elementwise kernels
(forward and backward), each launched from Python, so the step pays their launch time rather
than their arithmetic. Compiling :meth:`Method.loss` and :meth:`Method.lift` fuses them into a
few generated kernels; values agree with eager to float rounding (the fused kernels reorder
sums), so the option is a runtime setting, like ``train.accum_steps``.

Where no compiler is present (no Triton for CUDA, no C++ compiler for the CPU backend) or
compilation fails, the first call warns once, naming the error, and the method runs eagerly
from then on; an error that eager execution raises too is raised as such.
"""
from __future__ import annotations

import copy
import warnings

import torch

from hyplib import lorentz

__all__ = ["CompiledOrEager", "compile_method", "keep_hand_written_kernels_eager"]


class CompiledOrEager:
    """Calls ``torch.compile(fn)``; after the first failure, calls ``fn`` itself.

    Attributes:
        failure: the exception that disabled compilation (None while compiled calls succeed).
    """

    def __init__(self, fn, label: str, **compile_kwargs):
        self.eager, self.label = fn, label
        self.compiled = torch.compile(fn, **compile_kwargs)
        self.failure: Exception | None = None

    def __call__(self, *args, **kwargs):
        if self.failure is None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any compiler error; eager re-raises real ones
                out = self.eager(*args, **kwargs)
                self.failure = exc
                first_line = next(iter(str(exc).strip().splitlines()), "")
                warnings.warn(f"train.compile: compiling {self.label} failed ({type(exc).__name__}: "
                              f"{first_line}); running it eagerly", RuntimeWarning, stacklevel=2)
                return out
        return self.eager(*args, **kwargs)


def keep_hand_written_kernels_eager() -> None:
    """Run :func:`hyplib.lorentz.pairwise_dist`'s hand-written forward and backward outside the
    compiled graphs (a graph break around it). Inductor's CUDA code for it (PyTorch 2.11) gave
    gradients for ``x`` off by about their own size with the forward right, measured on an H200
    (``tests/test_compiled.py``); its CPU code agreed with eager. Its kernels are fused by hand."""
    if not getattr(lorentz._pairwise_dist_kernel, "_hyplib_eager", False):
        kernel = torch.compiler.disable(lorentz._PairwiseDist.apply)
        kernel._hyplib_eager = True
        lorentz._pairwise_dist_kernel = kernel


def compile_method(method):
    """A shallow copy of ``method`` whose ``loss`` and ``lift`` are :class:`CompiledOrEager`.

    Shapes are static (``dynamic=False``): a training run feeds one batch shape, and a new shape
    compiles once more. See :func:`keep_hand_written_kernels_eager` for what stays eager.
    """
    keep_hand_written_kernels_eager()
    out = copy.copy(method)
    for name in ("loss", "lift"):
        setattr(out, name, CompiledOrEager(getattr(method, name), f"{method.name}.{name}", dynamic=False))
    return out
