"""The C kernel of PHyCLIP's l1 product distance (hyplib/native) against the PyTorch reference.

References are float64 :func:`hyplib.product.pairwise_dist` (autograd through acosh); the kernel
runs in float32, so values are compared to float32 rounding (relative 2e-6 of the largest value)
and gradients by their relative error in norm. Without a C compiler the kernel cannot be built:
those tests skip with that reason, and the fallback tests still run.
"""
from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

import pytest
import torch

from hyplib import native, product
from hyplib.lorentz import eps_for
from hyplib.methods import fused
from hyplib.native import product_dist as npd

needs_kernel = pytest.mark.skipif(not npd.available(), reason=f"C kernel unavailable: {npd.unavailable_reason()}")


def _points(b1, b2, k, d, seed=0, coincident=0):
    g = torch.Generator().manual_seed(seed)
    x = 0.6 * torch.randn(b1, k, d, generator=g, dtype=torch.float64)
    y = 0.6 * torch.randn(b2, k, d, generator=g, dtype=torch.float64)
    y[:coincident] = x[:coincident]
    c = 0.4 + 2.0 * torch.rand(k, generator=g, dtype=torch.float64)
    return x, y, c, torch.randn(b1, b2, generator=g, dtype=torch.float64)


def _reference(x, y, c, weights):
    leaves = [t.clone().requires_grad_() for t in (x, y, c)]
    out = product.pairwise_dist(*leaves[:2], curv=leaves[2], how="l1")
    return out.detach(), torch.autograd.grad((out * weights).sum(), leaves)


def _kernel(x, y, c, weights, curv_grad=True):
    leaves = [t.float().requires_grad_(i < 2 or curv_grad) for i, t in enumerate((x, y, c))]
    xf, yf = (t.transpose(0, 1).contiguous() for t in leaves[:2])
    out = npd.pairwise_product_dist_l1(xf, yf, leaves[2])
    wanted = leaves if curv_grad else leaves[:2]
    return out.detach(), torch.autograd.grad((out * weights.float()).sum(), wanted)


def _relative(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


@needs_kernel
@pytest.mark.parametrize("b1, b2, k, d", [
    (37, 53, 3, 8),       # rows not a whole tile, columns not whole vectors
    (16, 264, 2, 4),      # a second column tile of 8
    (17, 24, 2, 8),       # one whole 16-wide vector and a tail of 8 columns
    (5, 300, 2, 16),
    (20, 40, 3, 3),       # a dimension without a specialised loop
])
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_matches_float64_reference(b1, b2, k, d, threads, kernel_threads):
    kernel_threads(threads)
    _assert_kernel_matches_reference(b1, b2, k, d)


def _assert_kernel_matches_reference(b1, b2, k, d):
    x, y, c, weights = _points(b1, b2, k, d)
    ref, ref_grads = _reference(x, y, c, weights)
    out, grads = _kernel(x, y, c, weights)
    assert (out.double() - ref).abs().max() <= 2e-6 * ref.abs().max()
    for name, got, want in zip("xyc", grads, ref_grads):
        assert _relative(got, want) < 2e-5, name


@needs_kernel
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or "avx512f" not in native._cpu_flags(),
                    reason="covers the 256-bit build on an AVX-512 x86 machine")
def test_kernel_built_without_avx512_matches_float64_reference(monkeypatch):
    """The kernel's 8-lane contractions (what an AVX2-only machine builds) on this machine."""
    lib = npd._KERNEL.variant("-mno-avx512f")
    monkeypatch.setattr(npd, "_library", lambda: lib)
    for b1, b2, k, d in [(37, 53, 3, 8), (17, 24, 2, 8), (20, 40, 3, 3)]:
        _assert_kernel_matches_reference(b1, b2, k, d)


@needs_kernel
def test_coincident_points_sit_on_the_floor_and_pass_no_gradient_through_a():
    """Coincident pairs at the root with curvatures 1/4 and 4 (so that a = c x_t y_t = 1 exactly in
    float32): a is floored at 1 + eps, the distance is acosh(1 + eps) / sqrt(c) per factor (as
    in the float32 reference, whose clamp does the same), and only the 1/sqrt(c) factor passes a
    gradient. Only the diagonal (coincident) pairs are weighted."""
    x, y, _, _ = _points(4, 4, 2, 8, seed=1)
    x[1:3], y[1:3] = 0.0, 0.0
    c = torch.tensor([0.25, 4.0], dtype=torch.float64)
    weights = torch.diag(torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64))
    ref, ref_grads = _reference(x.float(), y.float(), c.float(), weights.float())
    out, grads = _kernel(x, y, c, weights)
    floor = torch.acosh(torch.tensor(1.0 + eps_for(torch.float32), dtype=torch.float64))
    expected = (floor / c.sqrt()).mean()
    torch.testing.assert_close(out.diagonal()[1:3].double(), expected.expand(2), rtol=1e-4, atol=0)  # a^2 - 1 rounds
    torch.testing.assert_close(out.diagonal()[1:3], ref.diagonal()[1:3], rtol=1e-6, atol=0)
    assert grads[0].abs().max() == 0 and grads[1].abs().max() == 0
    torch.testing.assert_close(grads[2], ref_grads[2], rtol=1e-5, atol=0)


@needs_kernel
def test_fixed_curvature_returns_no_curvature_gradient():
    x, y, c, weights = _points(20, 24, 2, 8)
    ref, ref_grads = _reference(x, y, c, weights)
    out, grads = _kernel(x, y, c, weights, curv_grad=False)
    assert len(grads) == 2
    for got, want in zip(grads, ref_grads[:2]):
        assert _relative(got, want) < 2e-5


@needs_kernel
def test_a_second_backward_gives_the_same_gradients():
    x, y, c, weights = _points(18, 9, 2, 8)
    leaves = [t.float().requires_grad_() for t in (x, y, c)]
    out = npd.pairwise_product_dist_l1(*(t.transpose(0, 1).contiguous() for t in leaves[:2]), leaves[2])
    loss = (out * weights.float()).sum()
    first = torch.autograd.grad(loss, leaves, retain_graph=True)
    second = torch.autograd.grad(loss, leaves)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@needs_kernel
def test_fused_entry_point_uses_the_kernel_for_float32_l1_only():
    x, y, c, _ = _points(6, 7, 3, 8)
    x32, y32, c32 = x.float(), y.float(), c.float()
    calls = []
    original = npd.pairwise_product_dist_l1
    try:
        npd.pairwise_product_dist_l1 = lambda *a, **kw: calls.append(1) or original(*a, **kw)
        native_out = fused.pairwise_product_dist(x32, y32, curv=c32)
        assert calls == [1]
        fused.pairwise_product_dist(x, y, curv=c)                       # float64: PyTorch path
        fused.pairwise_product_dist(x32, y32, curv=c32, how="l2")       # l2: PyTorch path
        torch_out = fused.pairwise_product_dist(x32, y32, curv=c32, native=False)
        with npd.turned_off():
            assert not npd.available()
            fused.pairwise_product_dist(x32, y32, curv=c32)
        assert calls == [1]
    finally:
        npd.pairwise_product_dist_l1 = original
    torch.testing.assert_close(native_out, torch_out, atol=2e-6, rtol=2e-6)
    with pytest.raises(ValueError, match="native=True needs how='l1', float32"):
        fused.pairwise_product_dist(x, y, curv=c, native=True)


@needs_kernel
def test_phyclip_loss_agrees_with_the_pytorch_path():
    from hyplib import methods
    from hyplib.methods import Embeddings

    method = methods.get("phyclip", k=4, d=8)
    g = torch.Generator().manual_seed(5)
    feats = [0.3 * torch.randn(12, 32, generator=g) for _ in range(4)]
    emb = Embeddings(feats[0], feats[1], torch.tensor([0.7, 1.0, 1.3, 2.0]), torch.tensor(5.0), *feats[2:])
    with_kernel = method.loss(emb)["loss"]
    with npd.turned_off():
        without = method.loss(emb)["loss"]
    torch.testing.assert_close(with_kernel, without, atol=1e-5, rtol=1e-5)


def test_unavailable_without_a_compiler_or_when_disabled(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_reasons", {})
    monkeypatch.setenv("HYPLIB_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler-hyplib")
    assert native.load("product_dist") is None
    assert "no C compiler found" in native.unavailable_reason("product_dist")
    assert "no-such-compiler-hyplib" in native.unavailable_reason("product_dist")
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setenv("HYPLIB_NATIVE", "0")
    assert native.load("product_dist") is None
    assert native.unavailable_reason("product_dist") == "disabled by HYPLIB_NATIVE=0"


def test_a_failed_build_is_reported_with_the_compiler_error(monkeypatch, tmp_path):
    (tmp_path / "broken.c").write_text("int f(void) { return undefined_name; }\n")
    monkeypatch.setattr(native, "SOURCE_DIR", tmp_path)
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_reasons", {})
    monkeypatch.setenv("HYPLIB_NATIVE_CACHE", str(tmp_path / "cache"))
    if native.shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler: the build cannot even start")
    assert native.load("broken") is None
    reason = native.unavailable_reason("broken")
    assert reason.startswith("RuntimeError") and "undefined_name" in reason


@needs_kernel
def test_build_is_cached_reused_and_keyed_by_the_source(monkeypatch, tmp_path):
    """A tiny kernel (the real one takes ~4 s to build): one build, then the cached file; an edit
    to the source builds a new one beside it; no temporary files are left."""
    source_dir, cache = tmp_path / "src", tmp_path / "cache"
    source_dir.mkdir()
    (source_dir / "tiny.c").write_text("int twice(int v) { return 2 * v; }\n")
    monkeypatch.setattr(native, "SOURCE_DIR", source_dir)
    monkeypatch.setenv("HYPLIB_NATIVE_CACHE", str(cache))
    first = native._build("tiny")
    stamp = first.stat().st_mtime_ns
    assert native._build("tiny") == first and first.stat().st_mtime_ns == stamp
    assert first.name.startswith("tiny-") and list(cache.iterdir()) == [first]
    (source_dir / "tiny.c").write_text("int twice(int v) { return v + v; }\n")
    second = native._build("tiny")
    assert second != first and sorted(cache.iterdir()) == sorted([first, second])
    monkeypatch.setattr(native, "_loaded", {})
    assert native.load("tiny").twice(21) == 42


def test_full_vector_width_only_on_x86_with_avx512():
    avx512 = "flags\t\t: fpu sse2 avx2 fma avx512f avx512dq"
    assert native.vector_flags(avx512, "x86_64") == ("-mprefer-vector-width=512",)
    assert native.vector_flags("flags\t\t: fpu sse2 avx2 fma avx512_vnni", "x86_64") == ()  # not avx512f
    assert native.vector_flags("flags\t\t: fpu sse2 avx2 fma", "x86_64") == ()
    assert native.vector_flags("Features\t: fp asimd sve", "aarch64") == ()
    assert native.vector_flags(avx512, "aarch64") == ()


def test_the_build_passes_this_cpus_vector_flags(monkeypatch, tmp_path):
    """The flags reach the compiler, and they are in the cache key: a changed flag builds anew."""
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    (source_dir / "width.c").write_text("int width(void) {\n#ifdef MARKED\nreturn 512;\n#else\nreturn 256;\n"
                                        "#endif\n}\n")
    monkeypatch.setattr(native, "SOURCE_DIR", source_dir)
    monkeypatch.setenv("HYPLIB_NATIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "vector_flags", lambda: ())
    plain = native._build("width")
    monkeypatch.setattr(native, "vector_flags", lambda: ("-DMARKED",))
    marked = native._build("width")
    assert plain != marked
    assert ctypes.CDLL(str(plain)).width() == 256 and ctypes.CDLL(str(marked)).width() == 512


@needs_kernel
@pytest.mark.slow
def test_loading_the_kernel_leaves_float_denormals_alone():
    """Linking with -ffast-math would set flush-to-zero for the whole process at load time."""
    code = ("import torch; from hyplib.native import product_dist as p; assert p.available(); "
            "t = torch.tensor([1e-39], dtype=torch.float32); print(float(t * 1.0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert float(out) > 0.0


def test_threads_for_gives_each_thread_enough_entries(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    per = native.MIN_ENTRIES_PER_THREAD
    assert [native.threads_for(n) for n in (0, 1, per - 1, per, 2 * per - 1, 2 * per, 3 * per, 100 * per)] == \
        [1, 1, 1, 1, 1, 2, 3, 4]
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert native.threads_for(100 * per) == 1


def test_row_ranges_cover_every_row_once_in_whole_tiles():
    for b1, threads in [(1, 2), (16, 2), (37, 2), (1024, 2), (1000, 3), (50, 8)]:
        ranges = native.row_ranges(b1, threads, npd.TILE_ROWS)
        assert ranges[0][0] == 0 and ranges[-1][1] == b1
        assert all(hi == lo2 for (_, hi), (lo2, _) in zip(ranges[:-1], ranges[1:]))
        assert all(lo % npd.TILE_ROWS == 0 for lo, _ in ranges)
        assert len(ranges) <= threads
