"""The benchmark scripts' logic: target tables on hand-made numbers, and gpu.py's CPU smoke path."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_objectives_table_divides_time_ratio_by_flop_ratio():
    objectives = _load("objectives")
    seconds = {"clip": 1.0, "hycoclip": 3.6, "phyclip": 20.0}
    flops = {"clip": 100, "hycoclip": 300, "phyclip": 325}
    rows = {line.split()[0]: line.split() for line in objectives.table(seconds, flops, 1.5)[1:-1]}
    assert rows["hycoclip"][-2:] == ["1.20", "ok"]        # 3.6 / 3.0
    assert rows["phyclip"][-2:] == [f"{20 / 3.25:.2f}", "MISS"]
    assert rows["clip"][-2:] == ["1.00", "ok"]


def test_objectives_run_prints_the_pytorch_paths_and_the_floors(capsys):
    """A small run of the whole script: every method's row, the PyTorch-path rows beside the
    kernels' with equal FLOP counts, and the floor lines."""
    from hyplib.native import product_dist

    objectives = _load("objectives")
    objectives.main(["--batch", "32", "--reps", "1"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("method"))
    end = next(n for n, line in enumerate(lines) if line.startswith("target:"))
    rows = {line.split()[0]: line.split() for line in lines[start + 1:end]}
    for name in ("clip", "meru", "hycoclip", "atmg", "argent", "phyclip", "atmg:code"):
        assert name in rows, out
    assert "phyclip floor: one log pass over 3 x (64, 32, 32)" in out
    assert "phyclip distance alone: one (32, 32) matrix forward + backward" in out
    for name in ("meru", "atmg", "phyclip"):
        assert rows[f"{name}:torch"][3] == rows[name][3]            # GEMM GFLOP of the same formulation
    assert "phyclip:torch (PyTorch path) =" in out
    assert ("(C kernel)" in out) == product_dist.available()
    assert ("product_dist built" in out) == product_dist.available()
    assert ("built with its log as the identity" in out) == product_dist.available()


def test_the_ablation_build_replaces_only_the_log():
    """objectives.py's build without the log: the forward gives sum_f w_f (v + sqrt(v^2 - 1)),
    v = max(a, 1 + eps), where the real kernel gives sum_f w_f log of that (checked in float64)."""
    from hyplib import lorentz
    from hyplib.lorentz import eps_for
    from hyplib.native import product_dist

    if not product_dist.available():
        pytest.skip(f"C kernel unavailable: {product_dist.unavailable_reason()}")
    objectives = _load("objectives")
    library = objectives.build_without_log()
    g = torch.Generator().manual_seed(3)
    k, b1, b2, d = 3, 19, 21, 8
    x, y = (0.4 * torch.randn(k, n, d, generator=g) for n in (b1, b2))
    c = torch.tensor([0.5, 1.0, 2.0])
    xd, yd, cd = x.double(), y.double(), c.double()[:, None, None]
    xt = lorentz.time_component(xd, curv=cd[..., 0])
    yt = lorentz.time_component(yd, curv=cd[..., 0])
    a = cd * (xt[:, :, None] * yt[:, None, :] - xd @ yd.transpose(1, 2))
    v = a.clamp_min(1.0 + eps_for(torch.float32))
    inner = v + (v * v - 1.0).sqrt()
    weight = cd.rsqrt() / k
    real = product_dist.pairwise_product_dist_l1(x, y, c)
    torch.testing.assert_close(real.double(), (weight * inner.log()).sum(0), rtol=1e-5, atol=1e-5)
    ablated = []
    distance = product_dist.pairwise_product_dist_l1
    objectives.with_library(product_dist, library, lambda: ablated.append(distance(x, y, c)))()
    assert product_dist._library() is not library                        # swapped back
    torch.testing.assert_close(ablated[0].double(), (weight * inner).sum(0), rtol=1e-5, atol=1e-5)


def test_train_step_baselines_and_report():
    train_step = _load("train_step")
    assert train_step.bench_labels(["meru", "phyclip"]) == ["clip", "clip+boxes", "meru", "phyclip"]
    assert train_step.bench_labels(["clip", "meru"]) == ["clip", "meru"]
    assert [train_step.baseline(n) for n in ("clip", "clip+boxes", "meru", "argent")] == [
        "clip", "clip", "clip", "clip+boxes"]
    rates = {"clip": (10.0, 9.0), "clip+boxes": (5.0, 5.0), "meru": (8.0, 8.0), "argent": (4.0, 4.0)}
    rows = {line.split()[0]: line.split() for line in train_step.report("t", rates, 0.85)[2:-1]}
    assert rows["meru"][-2:] == ["0.80x", "MISS"]           # 8 / 10 steps/s of CLIP
    assert rows["clip+boxes"][-2:] == ["0.50x", "(baseline)"]
    assert rows["argent"][-2:] == ["0.80x", "MISS"]         # 4 / 5 of CLIP with boxes
    rates["argent"] = (4.5, 4.5)
    rows = {line.split()[0]: line.split() for line in train_step.report("t", rates, 0.85)[2:-1]}
    assert rows["argent"][-2:] == ["0.90x", "ok"]


def test_gpu_table_overheads_against_the_right_baseline():
    gpu = _load("gpu")
    steps = {"clip": (0.100, 2 ** 30), "clip+boxes": (0.200, 2 ** 31), "meru": (0.104, 2 ** 30),
             "atmg": (0.106, 2 ** 30), "hycoclip": (0.220, 2 ** 31), "phyclip": (0.240, 2 ** 31)}
    rows = {line.split()[0]: line.split() for line in gpu.build_table(steps)[1:]}
    assert rows["meru"][-4:] == ["clip", "+4.0%", "5%", "ok"]
    assert rows["atmg"][-4:] == ["clip", "+6.0%", "5%", "MISS"]
    assert rows["hycoclip"][-4:] == ["clip+boxes", "+10.0%", "15%", "ok"]
    assert rows["phyclip"][-4:] == ["clip+boxes", "+20.0%", "15%", "MISS"]
    assert rows["clip+boxes"][1:] == ["200.0", "2.00", "clip", "+100.0%"]  # a baseline: no goal, no verdict


def test_launches_counts_operators_and_views_apart():
    launches = _load("launches")
    x = torch.randn(3, 4, requires_grad=True)
    computing, views = launches.count_operators(lambda: (x * 2.0 + 1.0).t().sum().backward())
    # forward: mul, add, t (a view), sum; backward: the seed gradient (ones_like), sum's expand and
    # t's t (views), mul's mul, and the first gradient stored into x.grad (a detach: a view)
    assert computing == launches.Counter(mul=2, add=1, sum=1, ones_like=1)
    assert views == launches.Counter(t=2, expand=1, detach=1)
    counts = {"clip": (launches.Counter(mul=500), launches.Counter(view=3)),
              "clip+boxes": (launches.Counter(mul=510), launches.Counter()),
              "meru": (launches.Counter(mul=800, div=83), launches.Counter()),
              "hycoclip": (launches.Counter(mul=1000), launches.Counter(view=7))}
    rows = {line.split()[0]: line.split() for line in launches.table(counts)[1:]}
    assert rows["meru"][1:] == ["883", "0", "clip", "+383"]
    assert rows["hycoclip"][1:] == ["1000", "7", "clip+boxes", "+490"]
    assert rows["clip"][1:] == ["500", "3", "clip"]


def test_launches_run_counts_a_step_with_the_kernels_off(capsys, monkeypatch):
    launches = _load("launches")
    from hyplib import native

    seen = []
    real = launches.count_operators
    monkeypatch.setattr(launches, "count_operators",
                        lambda fn: seen.append(native.usable("lorentz_dist")) or real(fn))
    assert launches.main(["--methods", "meru", "--top", "3"]) == 0
    assert seen == [None, None]                      # clip and meru, both on the PyTorch path
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("clip ", "meru "))}
    assert int(rows["meru"][4]) == int(rows["meru"][1]) - int(rows["clip"][1]) > 100
    assert "meru, beyond clip: mul" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when CUDA is absent")
def test_gpu_without_cuda_exits_with_a_message(capsys):
    assert _load("gpu").main([]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--device cpu --tiny" in err


@pytest.mark.slow
def test_gpu_cpu_smoke_run_prints_every_row(capsys):
    gpu = _load("gpu")
    assert gpu.main(["--device", "cpu", "--tiny", "--precision", "fp32", "--batch", "4", "--steps", "1",
                     "--methods", "meru", "hycoclip", "--loss-batch", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    progress = [line.split(":")[0].strip() for line in lines[1:] if line.startswith("  ")]
    head = next(i for i, line in enumerate(lines) if line.startswith("method"))
    labels = [line.split()[0] for line in lines[head + 1:-1]]
    assert labels == progress == ["clip", "clip+boxes", "meru", "hycoclip"]
    out = "\n".join(lines)
    loss = float(out.splitlines()[-1].split("loss ")[1].split(",")[0])
    assert loss > 0 and torch.isfinite(torch.tensor(loss))


def test_train_step_times_compiled_towers_beside_eager(capsys, tmp_path, monkeypatch):
    """--compile-towers: every method twice, the compiled table and one ratio line per method
    (torch.compile replaced by the function itself, so the smoke run does not compile)."""
    import yaml

    from hyplib.training import compiled

    train_step = _load("train_step")
    calls = []

    def no_compile(fn, **kwargs):
        calls.append(type(fn.__self__).__name__)
        return fn

    monkeypatch.setattr(compiled.torch, "compile", no_compile)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": dict(image_size=16, patch_size=8, vision_width=32, vision_layers=1,
                                                 vision_heads=2, text_width=32, text_layers=1, text_heads=2,
                                                 context_length=16)}))
    assert train_step.main(["--config", str(cfg), "--methods", "meru", "--batch", "4", "--steps", "1",
                            "--rounds", "1", "--compile-towers", "image"]) == 0
    out = capsys.readouterr().out
    assert "image tower(s) compiled" in out
    ratios = out.split("compiled / eager steps per second")[1].splitlines()[1:]
    assert [line.split()[0] for line in ratios if line.strip()] == ["clip", "meru"]
    assert all(float(line.split()[1].rstrip("x")) > 0 for line in ratios if line.strip())
    assert len(calls) == 2 and set(calls) == {"VisionTransformer"}  # the image towers of clip@compiled, meru@compiled


def test_attention_pool_times_both_pools_and_reports_ratios(capsys, tmp_path):
    """A small run: each method with open_clip's pool and with the first-token pool, the runners
    really carrying those pools, and one ratio line per method; a ViT config is refused."""
    import yaml
    from open_clip.modified_resnet import AttentionPool2d

    from hyplib.attention_pool import FirstTokenAttentionPool

    attention_pool = _load("attention_pool")
    model = dict(vision_tower="resnet", image_size=32, vision_width=8, vision_layers=1, vision_heads=4,
                 text_width=32, text_layers=1, text_heads=2, context_length=16)
    pools = {p: type(attention_pool.make_runner("clip", model, p).model.visual.attnpool) for p in attention_pool.POOLS}
    assert pools == {"open_clip": AttentionPool2d, "first-token": FirstTokenAttentionPool}
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"model": model}))
    assert attention_pool.main(["--config", str(cfg), "--methods", "clip", "meru", "--batch", "4",
                                "--steps", "1", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    ratios = [line for line in out.splitlines() if "first-token / open_clip step time" in line]
    assert [line.split(":")[0] for line in ratios] == ["clip", "meru"]
    assert all(float(line.split("= ")[1].split()[0]) > 0 for line in ratios)
    vit = tmp_path / "vit.yaml"
    vit.write_text(yaml.safe_dump({"model": {**model, "vision_tower": "vit", "patch_size": 8}}))
    with pytest.raises(SystemExit, match="not resnet"):
        attention_pool.main(["--config", str(vit)])
