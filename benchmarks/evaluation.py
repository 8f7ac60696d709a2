"""Cost of the evaluation suite.

Prints, in one run:

1. retrieval throughput at the paper's COCO scale: 25,000 captions x 5,000 images of random
   embeddings (dim 512), Recall@1/5/10 in both directions, per similarity (cosine, Lorentz
   inner product, ATMG's angle, PHyCLIP's per-factor inner sum), each in a fresh process,
   with wall and CPU seconds and the peak extra resident memory (the full score matrix
   would be 477 MiB in float32);
2. the time of every protocol of ``hyplib.evaluation.run_all`` for one model of the
   default size (untrained: timing only) on the embedded benchmarks, generated with
   ``hyplib.data`` into ``--bench-dir`` when absent. Target: <= 60 s in total on 2 cores.

    python benchmarks/evaluation.py [--method meru] [--bench-dir results/data/bench]
                                    [--threads 2] [--skip-retrieval] [--skip-protocols]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from hyplib import lorentz
from hyplib import methods as M
from hyplib.evaluation import retrieval as R
from hyplib.evaluation._common import similarity_fn
from hyplib.paths import resolve

#: Model of the embedded CPU reproduction when config/runs/default.yaml does not name one.
DEFAULT_MODEL = dict(image_size=32, patch_size=8, vision_width=128, vision_layers=3, vision_heads=4,
                     text_width=128, text_layers=3, text_heads=4, context_length=32)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


SIMILARITIES = ("clip", "meru", "atmg", "phyclip")


def retrieval_one(name: str, n_img: int = 5000, n_cap: int = 25000, dim: int = 512) -> dict:
    """Recall@K of one similarity on random embeddings; peak RSS above the inputs' footprint."""
    g = torch.Generator().manual_seed(0)
    img_t = 0.3 * torch.randn(n_img, dim, generator=g)
    cap = torch.arange(n_cap) % n_img
    txt_t = img_t[cap] + 0.3 * torch.randn(n_cap, dim, generator=g)
    method = M.get(name)
    if method.geometry == "euclidean":
        img, txt = torch.nn.functional.normalize(img_t, dim=-1), torch.nn.functional.normalize(txt_t, dim=-1)
        curv = torch.tensor(1.0)
    elif method.geometry == "lorentz":
        img, txt = lorentz.expmap0(img_t, curv=1.0), lorentz.expmap0(txt_t, curv=1.0)
        curv = torch.tensor(1.0)
    else:
        curv = torch.ones(method.defaults["k"])
        img, txt = method.lift(img_t, alpha=1.0, curv=curv), method.lift(txt_t, alpha=1.0, curv=curv)
    sim = similarity_fn(method)
    sim(img[:8], txt[:8], curv)  # warm-up
    rss0 = _rss_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    out = R.recall_at_k(img, txt, cap.numpy(), sim, curv, block_elems=R.BLOCK_ELEMS // sim.width)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"similarity": name, "seconds": round(dt, 2), "cpu_s": round(cpu, 2),
            "Mpairs_per_s": round(n_img * n_cap / dt / 1e6, 1), "peak_rss_increase_MiB": round(_rss_mib() - rss0, 1),
            "i2t_R@1": round(out["i2t_R@1"], 4), "t2i_R@1": round(out["t2i_R@1"], 4)}


def retrieval_throughput(threads: int) -> list[dict]:
    """:func:`retrieval_one` per similarity, each in a fresh process (clean peak-RSS reading)."""
    rows = []
    for name in SIMILARITIES:
        res = subprocess.run([sys.executable, __file__, "--one", name, "--threads", str(threads)],
                             check=True, capture_output=True, text=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return rows


def _model_cfg() -> dict:
    path = resolve("config/runs/default.yaml")
    if path.is_file():
        import yaml

        cfg = yaml.safe_load(path.read_text()) or {}
        if cfg.get("model"):
            return dict(cfg["model"])
    return dict(DEFAULT_MODEL)


def protocol_times(method_name: str, bench_dir: Path) -> dict:
    from hyplib.data.benchmarks import list_benchmarks
    from hyplib.evaluation import run_all
    from hyplib.models import build_model

    if "zeroshot" not in list_benchmarks(bench_dir) if bench_dir.is_dir() else True:
        from hyplib.data.genconfig import GenConfig
        from hyplib.data.generate import generate_all

        print(f"generating the embedded benchmarks into {bench_dir.parent} ...", flush=True)
        generate_all(bench_dir.parent, GenConfig.preset("default", n_train=1, shard_size=1, workers=1),
                     progress=False)
    model_cfg = _model_cfg()
    torch.manual_seed(0)
    method = M.get(method_name)
    model = build_model(model_cfg, method)  # embed_dim: the model config's, else the method's (512)
    print(f"model: {method_name}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
          f"config {json.dumps(model_cfg)}", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    metrics = run_all(model, bench_dir)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    times = {k.split("/", 1)[1]: round(v, 2) for k, v in metrics.items() if k.startswith("time/")}
    # CPU seconds of this process: on a machine shared with other jobs wall time inflates, but
    # cpu_s / threads is what the run costs on that many dedicated cores.
    return {"total_s": round(total, 2), "cpu_s": round(cpu, 2), **times}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="meru", choices=M.names())
    ap.add_argument("--bench-dir", default="results/data/bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-retrieval", action="store_true")
    ap.add_argument("--skip-protocols", action="store_true")
    ap.add_argument("--one", choices=SIMILARITIES, help=argparse.SUPPRESS)  # internal: one retrieval run
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(retrieval_one(args.one)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_retrieval:
        print("retrieval throughput, 25,000 captions x 5,000 images, dim 512 (chunked, float32):")
        for row in retrieval_throughput(args.threads):
            print("  " + json.dumps(row), flush=True)
    if not args.skip_protocols:
        times = protocol_times(args.method, resolve(args.bench_dir))
        print("run_all on the embedded benchmarks, seconds per protocol (target total <= 60 s):")
        print("  " + json.dumps(times))


if __name__ == "__main__":
    main()
