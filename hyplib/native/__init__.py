"""C kernels that the CPU paths use when a C compiler is present, built on first use.

A kernel is a plain C file beside this module (no PyTorch headers: it compiles in about a
second; shared helpers are in ``fastmath.h``), built once per machine into a cache directory and
loaded with :mod:`ctypes`. Callers pass contiguous CPU tensors' data pointers and keep a PyTorch
fallback for when :func:`usable` returns None: no compiler, a failed build, ``HYPLIB_NATIVE=0``
in the environment, or inside :func:`turned_off` (benchmarks and tests time and check the
fallback beside the kernel). Work is split into row ranges (:func:`row_ranges`) run on
``torch.get_num_threads()`` Python threads (:func:`run_rows`), one per
:data:`MIN_ENTRIES_PER_THREAD` entries at most (:func:`threads_for`); ctypes releases the GIL
during each call.

Build: ``$CC`` (default ``cc``) with ``-O3 -march=native -ffast-math``: the kernels' loops then
vectorise (``sqrtf`` inline, reductions reordered). A kernel calls no libm function (its ``log``
is its own), so nothing beyond libc is linked. On an x86 CPU with AVX-512 the build adds
``-mprefer-vector-width=512`` (:func:`vector_flags`): GCC otherwise vectorises the elementwise
loops in 256 bits. On an AVX-512 Xeon the full width took 21-25% off PHyCLIP's objective and up
to 11% off the others' (both builds timed round-robin in one process, 2 threads). The link step
omits ``-ffast-math``: a shared library linked with it would set flush-to-zero for the whole
process when loaded. The cache key covers the source and the headers, the compiler's version,
the flags and the CPU's feature flags (a shared home directory on a cluster must not hand one
node's ``-march=native`` build to another); the cache is ``$HYPLIB_NATIVE_CACHE``, else
``$XDG_CACHE_HOME/hyplib/native`` (``~/.cache/...``).
Concurrent builds (two workflow jobs) write to temporary names and rename atomically.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["Kernel", "load", "usable", "turned_off", "unavailable_reason", "cache_dir", "data_ptr", "row_ranges",
           "run_rows", "threads_for", "MIN_ENTRIES_PER_THREAD", "COMPILE_FLAGS", "vector_flags"]

SOURCE_DIR = Path(__file__).resolve().parent
COMPILE_FLAGS = ("-O3", "-march=native", "-ffast-math", "-fPIC", "-std=c11")
LINK_LIBS = ("-lm",)

_loaded: dict[str, ctypes.CDLL | None] = {}
_reasons: dict[str, str] = {}
_off: Counter = Counter()                                   # kernel name (None: all) -> open turned_off blocks
_pool: tuple[int, int, ThreadPoolExecutor] | None = None     # (process id, workers, pool)


def cache_dir() -> Path:
    """Where built kernels are kept (see the module docstring)."""
    if os.environ.get("HYPLIB_NATIVE_CACHE"):
        return Path(os.environ["HYPLIB_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hyplib" / "native"


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def vector_flags(cpu_flags: str | None = None, machine: str | None = None) -> tuple[str, ...]:
    """Flags added to COMPILE_FLAGS for this CPU: ``-mprefer-vector-width=512`` on x86 with
    AVX-512 (``avx512f`` among ``cpu_flags``, by default this machine's), none elsewhere."""
    cpu_flags = _cpu_flags() if cpu_flags is None else cpu_flags
    machine = platform.machine() if machine is None else machine
    if machine in ("x86_64", "AMD64") and "avx512f" in cpu_flags.split():
        return ("-mprefer-vector-width=512",)
    return ()


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def _build(name: str, extra_flags: tuple[str, ...] = ()) -> Path:
    """Build (or find in the cache) ``<name>.c`` with COMPILE_FLAGS, :func:`vector_flags` and then
    ``extra_flags`` (the tests add ``-mno-avx512f`` to cover the 256-bit code on an AVX-512 machine)."""
    source = SOURCE_DIR / f"{name}.c"
    flags = (*COMPILE_FLAGS, *vector_flags(), *extra_flags)
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        raise RuntimeError(f"no C compiler found (CC={os.environ.get('CC', 'cc')!r})")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    headers = [h.read_text() for h in sorted(SOURCE_DIR.glob("*.h"))]
    key = hashlib.sha256("\n".join([source.read_text(), *headers, version, *flags, *LINK_LIBS,
                                    platform.machine(), _cpu_flags()]).encode()).hexdigest()[:16]
    target = cache_dir() / f"{name}-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        obj, lib = Path(tmp) / f"{name}.o", Path(tmp) / f"{name}.so"
        _run([cc, *flags, "-c", str(source), "-o", str(obj)])
        _run([cc, "-shared", "-o", str(lib), str(obj), *LINK_LIBS])
        os.replace(lib, target)
    return target


def load(name: str) -> ctypes.CDLL | None:
    """The built kernel library ``name`` (``hyplib/native/<name>.c``), or None when it cannot be
    built or loaded; :func:`unavailable_reason` then says why. Tried once per process."""
    if name not in _loaded:
        lib = None
        if os.environ.get("HYPLIB_NATIVE", "1") == "0":
            _reasons[name] = "disabled by HYPLIB_NATIVE=0"
        else:
            try:
                lib = ctypes.CDLL(str(_build(name)))
            except (OSError, RuntimeError) as exc:
                _reasons[name] = f"{type(exc).__name__}: {exc}"
        _loaded[name] = lib
    return _loaded[name]


def unavailable_reason(name: str) -> str | None:
    """Why :func:`load` returned None for ``name`` (None if it loaded or was not tried)."""
    return _reasons.get(name)


@contextlib.contextmanager
def turned_off(name: str | None = None):
    """Within this block :func:`usable` returns None for kernel ``name`` (every kernel when None),
    so callers take their PyTorch path."""
    _off[name] += 1
    try:
        yield
    finally:
        _off[name] -= 1


def usable(name: str) -> ctypes.CDLL | None:
    """:func:`load` ``name``, except inside :func:`turned_off` for it, where it is None."""
    return None if _off[name] or _off[None] else load(name)


class Kernel:
    """The kernel ``hyplib/native/<name>.c`` and its functions' ctypes argument types
    (``{function: [types]}``; every function returns void)."""

    def __init__(self, name: str, signatures: dict[str, list]):
        self.name, self.signatures = name, signatures

    def declare(self, lib: ctypes.CDLL | None) -> ctypes.CDLL | None:
        """``lib`` (a build of this kernel, or None) with its functions' argument types declared."""
        if lib is not None and not getattr(lib, "_hyplib_typed", False):
            for function, argtypes in self.signatures.items():
                getattr(lib, function).argtypes = argtypes
                getattr(lib, function).restype = None
            lib._hyplib_typed = True
        return lib

    def library(self) -> ctypes.CDLL | None:
        """The loaded kernel (built on the first call), or None where :func:`usable` is None."""
        return self.declare(usable(self.name))

    def variant(self, *extra_flags: str) -> ctypes.CDLL:
        """A separate build of this kernel with ``extra_flags`` added, loaded and declared, for
        tests and benchmarks that set it beside the default build; raises where it cannot be built."""
        return self.declare(ctypes.CDLL(str(_build(self.name, extra_flags))))

    def available(self) -> bool:
        """Whether the kernel is built and loaded, and not :meth:`turned_off`."""
        return self.library() is not None

    def turned_off(self):
        """Within this block :meth:`available` is False, so callers take their PyTorch path."""
        return turned_off(self.name)

    def unavailable_reason(self) -> str | None:
        """Why :meth:`available` is False (None when it is True or was not asked)."""
        return unavailable_reason(self.name)


def data_ptr(t: Tensor | None, index: int | None = None) -> int | None:
    """The address of ``t`` (or of ``t[index]``) for a kernel's argument; None (NULL) for None."""
    if t is None:
        return None
    return (t if index is None else t[index]).data_ptr()


#: Fewest elementwise entries worth a thread of their own. Below it, handing rows to the thread
#: pool (and competing with PyTorch's spinning OpenMP workers for the same cores) cost more than
#: the split saved. On 2 threads with every kernel in one range, MERU's, HyCoCLIP's, ATMG's and
#: ARGENT's objectives took 11-20% less time at batch 64 (a (64, 64) matrix is 4096 entries) and
#: 3-10% less at batch 512 (2**18); PHyCLIP's 64 factors at batch 512 took 28% more.
MIN_ENTRIES_PER_THREAD = 1 << 18


def threads_for(entries: int) -> int:
    """Threads for a kernel call over ``entries`` elementwise entries: ``torch.get_num_threads()``,
    but at most one per :data:`MIN_ENTRIES_PER_THREAD` (at least one)."""
    import torch

    return max(1, min(torch.get_num_threads(), entries // MIN_ENTRIES_PER_THREAD))


def row_ranges(rows: int, threads: int, align: int = 1) -> list[tuple[int, int]]:
    """Contiguous ``(lo, hi)`` ranges covering ``rows``, at most one per thread, each starting at
    a multiple of ``align`` (a kernel's tile)."""
    tiles = -(-rows // align)
    parts = max(1, min(threads, tiles))
    bounds = [min(rows, align * (tiles * p // parts)) for p in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def run_rows(call, ranges: list[tuple[int, int]]) -> None:
    """``call(index, lo, hi)`` for each range, on worker threads when there are several."""
    global _pool
    if len(ranges) == 1:
        call(0, *ranges[0])
        return
    # A forked child inherits the pool object but not its threads: make a new one there.
    if _pool is None or _pool[0] != os.getpid() or _pool[1] < len(ranges):
        _pool = (os.getpid(), len(ranges), ThreadPoolExecutor(len(ranges), thread_name_prefix="hyplib-native"))
    for future in [_pool[2].submit(call, n, lo, hi) for n, (lo, hi) in enumerate(ranges)]:
        future.result()
