"""``train.compile`` and ``train.compile_towers``: parts of a step run through ``torch.compile``.

``train.compile`` compiles the method's objective and lift; ``train.compile_towers`` the image
and text towers' forward passes (and, through AOTAutograd, their backward).

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
from hyplib.native import lorentz_dist, paired_angle, pairwise_angle, product_dist
from hyplib.training.config import COMPILABLE_TOWERS

__all__ = ["CompiledOrEager", "compile_method", "compile_towers", "keep_hand_written_kernels_eager"]


class CompiledOrEager:
    """Calls ``torch.compile(fn)``; after the first failure, calls ``fn`` itself.

    Attributes:
        failure: the exception that disabled compilation (None while compiled calls succeed).
    """

    def __init__(self, fn, label: str, key: str = "train.compile", **compile_kwargs):
        self.eager, self.label, self.key = fn, label, key
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
                warnings.warn(f"{self.key}: compiling {self.label} failed ({type(exc).__name__}: "
                              f"{first_line}); running it eagerly", RuntimeWarning, stacklevel=2)
                return out
        return self.eager(*args, **kwargs)


def keep_hand_written_kernels_eager() -> None:
    """Run :func:`hyplib.lorentz.pairwise_dist`'s hand-written forward and backward outside the
    compiled graphs (a graph break around it). Inductor's CUDA code for it (PyTorch 2.11) gave
    gradients for ``x`` off by about their own size with the forward right, measured on an H200
    (``tests/test_compiled.py``); its CPU code agreed with eager. Its kernels are fused by hand.

    The C kernels' entry points (:mod:`hyplib.native`: ctypes calls, which dynamo cannot trace)
    run outside the graphs too, and are built and loaded here, before any tracing, so that no
    graph traces a build."""
    if not getattr(lorentz._pairwise_dist_kernel, "_hyplib_eager", False):
        kernel = torch.compiler.disable(lorentz._PairwiseDist.apply)
        kernel._hyplib_eager = True
        lorentz._pairwise_dist_kernel = kernel
    for module, name in ((pairwise_angle, "angles"), (paired_angle, "sums"), (paired_angle, "combine"),
                         (product_dist, "pairwise_product_dist_l1")):
        entry = getattr(module, name)
        if not getattr(entry, "_hyplib_eager", False):
            entry = torch.compiler.disable(entry)
            entry._hyplib_eager = True
            setattr(module, name, entry)
    for module in (lorentz_dist, paired_angle, pairwise_angle, product_dist):
        module.available()


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


#: ``train.compile_towers`` entries -> the model attribute that holds the tower.
TOWERS = dict(zip(COMPILABLE_TOWERS, ("visual", "text"), strict=True))


def compile_towers(model, towers) -> None:
    """Route the forward of each tower named in ``towers`` (``"image"``, ``"text"``) through
    :class:`CompiledOrEager`, in place.

    On the CPU the default image tower (open_clip's ModifiedResNet) is convolutions and matmuls
    joined by many small elementwise passes (batch norm, ReLU, average pooling); inductor fuses
    those around oneDNN's convolutions. With the image tower compiled, the default run's training
    loops took 16% less time on this project's 2-core machine (docs/recipe_study.md, section 7;
    per method, ``benchmarks/train_step.py --compile-towers image``). Compiling the 64-wide text
    tower as well made a CLIP step slower.

    Only ``forward`` is replaced, as an instance attribute: the parameters, their names and
    ``state_dict`` stay the module's own, so checkpoints, resumption and evaluation do not know a
    run was compiled. Shapes are static: a run compiles once per batch shape (``B``, or ``2B`` for
    the box methods' joint pass of images and crops), and inductor's on-disk cache makes the next
    run's compilation a few seconds (about a minute cold on 2 cores).
    """
    unknown = sorted(set(towers) - set(TOWERS))
    if unknown:
        raise ValueError(f"train.compile_towers: unknown tower(s) {unknown}; valid: {sorted(TOWERS)}")
    for name in towers:
        tower = getattr(model, TOWERS[name])
        if not isinstance(tower.forward, CompiledOrEager):
            tower.forward = CompiledOrEager(tower.forward, f"the {name} tower", key="train.compile_towers",
                                            dynamic=False)
