"""train.compile and train.compile_towers: compiled parts against eager, and the eager fallback."""
import os
import shutil

import pytest
import torch

from hyplib import methods, models
from hyplib.training import compiled
from hyplib.training.compiled import CompiledOrEager, compile_method, compile_towers
from hyplib.training.config import ConfigError, resolve_config

TINY = dict(image_size=16, patch_size=8, vision_width=32, vision_layers=1, vision_heads=2, text_width=32,
            text_layers=1, text_heads=2, context_length=16, embed_dim=32)
CUDA = torch.cuda.is_available()


def _batch(uses_boxes: bool, n: int, device) -> dict:
    from test_benchmarks import _load

    return _load("train_step").random_batch(TINY, uses_boxes, n, device)


def _loss_and_grads(name: str, compile: bool, device, strict: bool = True) -> tuple[torch.Tensor, list]:
    """Loss and parameter gradients of one step of method ``name`` from a fixed seed
    (``strict``: fail if compilation fell back to eager)."""
    method = methods.get(name, embed_dim=32) if name != "phyclip" else methods.get(name, k=4, d=8)
    torch.manual_seed(0)
    model = models.build_model(TINY, method).to(device)
    if compile:
        model.method = method = compile_method(method)
    loss = method.loss(model(_batch(method.uses_boxes, 8, device)))["loss"]
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    if compile and strict:  # the comparison is void if either part silently fell back to eager
        assert method.loss.failure is None and method.lift.failure is None, (method.loss.failure,
                                                                             method.lift.failure)
    return loss.detach(), [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _assert_close(a, b, rtol, atol):
    """Equal losses; each parameter's gradient equal up to ``rtol`` of its norm (plus ``atol``).

    Fused kernels reorder sums, and on CUDA the towers' backward accumulates with atomics, so an
    entry near zero may differ by more than ``rtol`` of itself; a gradient's error is measured
    against the whole tensor, as an optimiser step sees it.
    """
    (la, ga), (lb, gb) = a, b
    torch.testing.assert_close(la, lb, rtol=rtol, atol=atol)
    for i, (x, y) in enumerate(zip(ga, gb)):
        err, scale = torch.linalg.vector_norm(x - y).item(), torch.linalg.vector_norm(y).item()
        assert err <= rtol * scale + atol, f"parameter {i}: |grad error| {err:.3g} against |grad| {scale:.3g}"


def test_compile_is_a_boolean_runtime_key():
    assert resolve_config({})["train"]["compile"] is False
    with pytest.raises(ConfigError, match=r"train\.compile"):
        resolve_config({"train": {"compile": "yes"}})


def test_a_failing_compiler_warns_once_and_runs_eagerly(monkeypatch):
    """No compiler (or a failing one): the first call warns with the error, values are eager's."""
    calls = []

    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            calls.append(kwargs)
            raise RuntimeError("no C++ compiler found\nsecond line")
        return run

    monkeypatch.setattr(compiled.torch, "compile", broken_compile)
    ref = _loss_and_grads("meru", False, torch.device("cpu"))
    with pytest.warns(RuntimeWarning, match=r"compiling meru\.(lift|loss) failed \(RuntimeError: no C\+\+ "
                                            r"compiler found\); running it eagerly"):
        out = _loss_and_grads("meru", True, torch.device("cpu"), strict=False)
    _assert_close(out, ref, rtol=0, atol=0)
    assert calls and all(c == {"dynamic": False} for c in calls)


def test_an_error_eager_raises_too_is_raised_as_such():
    def bad(x):
        raise ValueError("curv must be positive")

    wrapped = CompiledOrEager(bad, "bad")
    with pytest.raises(ValueError, match="curv must be positive"):
        wrapped(torch.ones(1))


def test_compile_method_leaves_the_original_eager():
    method = methods.get("meru")
    out = compile_method(method)
    assert isinstance(out.loss, CompiledOrEager) and isinstance(out.lift, CompiledOrEager)
    assert not isinstance(method.loss, CompiledOrEager) and out.defaults == method.defaults


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None,
                    reason="inductor's CPU backend needs a C++ compiler (c++ or $CXX)")
@pytest.mark.parametrize("name", ["meru", "phyclip"])
def test_compiled_objective_matches_eager_on_cpu(name):
    """Inductor's CPU backend (tens of seconds to compile on 2 cores): same loss and gradients."""
    device = torch.device("cpu")
    out = _loss_and_grads(name, True, device)
    _assert_close(out, _loss_and_grads(name, False, device), rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA: the Triton path of train.compile")
@pytest.mark.parametrize("name", methods.names())
def test_compiled_objective_matches_eager_on_cuda(name):
    device = torch.device("cuda")
    out = _loss_and_grads(name, True, device)
    _assert_close(out, _loss_and_grads(name, False, device), rtol=1e-4, atol=1e-6)


def test_the_loop_trains_through_the_compiled_method(monkeypatch, tmp_path):
    """train.compile = true hands the loop's loss and the model's lift to torch.compile."""
    from test_train_loop import cfg_for, parts_for

    from hyplib.training.logging import read_log
    from hyplib.training.loop import fit

    seen = []

    def spy_compile(fn, **kwargs):
        def run(*args, **kw):
            seen.append(fn.__name__)
            return fn(*args, **kw)
        return run

    monkeypatch.setattr(compiled.torch, "compile", spy_compile)
    fit(cfg_for("meru", steps=2, compile=True), tmp_path / "c", parts_for("meru"))
    assert seen.count("loss") == 2 and seen.count("lift") >= 4  # two steps, two modalities each
    fit(cfg_for("meru", steps=2), tmp_path / "e", parts_for("meru"))
    losses = [[r["loss"] for r in read_log(tmp_path / d / "log.jsonl")] for d in ("c", "e")]
    assert losses[0] == losses[1]


# ---- train.compile_towers ------------------------------------------------------------------
RESNET = dict(image_size=32, vision_tower="resnet", vision_layers=1, vision_width=8, vision_heads=4,
              text_width=32, text_layers=1, text_heads=2, context_length=16, embed_dim=32)


def test_compile_towers_is_a_list_of_tower_names():
    assert resolve_config({})["train"]["compile_towers"] == []
    assert resolve_config({"train": {"compile_towers": ["image"]}})["train"]["compile_towers"] == ["image"]
    for bad in (True, "image", ["images"], ["image", "audio"], [{"image": 1}], [["image"]]):
        with pytest.raises(ConfigError, match=r"train\.compile_towers"):
            resolve_config({"train": {"compile_towers": bad}})
    model = models.build_model(TINY, methods.get("clip"))
    with pytest.raises(ValueError, match="unknown tower"):
        compile_towers(model, ["audio"])


def test_compiled_towers_keep_the_state_dict_and_fall_back(monkeypatch):
    """Only forward is swapped: parameter names and state_dict are the eager model's; a failing
    compiler leaves the tower's output as eager's, with one warning naming the tower."""
    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no C++ compiler found")
        return run

    monkeypatch.setattr(compiled.torch, "compile", broken_compile)
    torch.manual_seed(0)
    eager = models.build_model(TINY, methods.get("clip"))
    torch.manual_seed(0)
    model = models.build_model(TINY, methods.get("clip"))
    compile_towers(model, ["image", "text"])
    compile_towers(model, ["image"])  # idempotent: not wrapped twice
    assert isinstance(model.visual.forward, CompiledOrEager) and isinstance(model.text.forward, CompiledOrEager)
    assert isinstance(model.visual.forward.eager, type(eager.visual.forward))
    assert list(model.state_dict()) == list(eager.state_dict())
    batch = _batch(False, 4, torch.device("cpu"))
    with pytest.warns(RuntimeWarning, match=r"compiling the image tower failed .*running it eagerly"):
        out = model(batch)
    ref = eager(batch)
    assert torch.equal(out.image, ref.image) and torch.equal(out.text, ref.text)


def test_the_loop_compiles_the_towers_it_is_given(monkeypatch, tmp_path, capsys):
    """train.compile_towers = [image] routes the image tower, and only it, through torch.compile;
    the run's weights are saved under the eager model's names."""
    from test_train_loop import cfg_for, parts_for

    from hyplib.training import checkpoint as ckpt
    from hyplib.training.loop import fit

    seen = []

    def spy_compile(fn, **kwargs):
        def run(*args, **kw):
            seen.append(type(fn.__self__).__name__)
            return fn(*args, **kw)
        return run

    monkeypatch.setattr(compiled.torch, "compile", spy_compile)
    fit(cfg_for("clip", steps=2, compile_towers=["image"], progress=True), tmp_path / "c", parts_for("clip"))
    assert "the first step compiles the image tower(s)" in capsys.readouterr().err
    assert seen and set(seen) == {type(models.build_model(TINY, methods.get("clip")).visual).__name__}
    assert len(seen) == 2  # one image-tower call per step
    state = ckpt.load(tmp_path / "c" / "final.pt")["model"]
    assert set(state) == set(models.build_model(TINY, methods.get("clip")).state_dict())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None,
                    reason="inductor's CPU backend needs a C++ compiler (c++ or $CXX)")
def test_compiled_resnet_tower_matches_eager_on_cpu():
    """Inductor's CPU code for the default image tower (a small ModifiedResNet in training mode:
    batch norm on batch statistics): the same features, parameter gradients and running
    statistics as eager, to float32 rounding."""
    method = methods.get("clip", embed_dim=32)
    torch.manual_seed(0)
    eager = models.build_model(RESNET, method).train()
    torch.manual_seed(0)
    model = models.build_model(RESNET, method).train()
    compile_towers(model, ["image"])
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    outs = []
    for m in (model, eager):
        feats = m.image_features(images)
        feats.square().sum().backward()
        outs.append((feats.detach(), [p.grad for p in m.visual.parameters()]))
    assert model.visual.forward.failure is None  # the comparison is void if it fell back to eager
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-4, atol=1e-5)
    # a key bias shifts every attention logit alike, so its true gradient is 0 and both sides hold
    # rounding: each error is measured against its own gradient plus 1e-8 of the whole gradient
    total = torch.linalg.vector_norm(torch.cat([g.flatten() for g in outs[1][1]])).item()
    for i, (g, ref) in enumerate(zip(outs[0][1], outs[1][1])):
        err, scale = torch.linalg.vector_norm(g - ref).item(), torch.linalg.vector_norm(ref).item()
        assert err <= 1e-4 * scale + 1e-8 * total, f"parameter {i}: |grad error| {err:.3g} against |grad| {scale:.3g}"
    for (name, a), b in zip(model.visual.named_buffers(), eager.visual.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
