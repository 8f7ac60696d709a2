"""Why does ATMG learn worse than MERU at the default budget? Train ATMG variants and compare.

    python scripts/atmg_study.py --data results/data --out results/atmg_study
    python scripts/atmg_study.py --variants paper,code,meru --seeds 0 --table-only

Every run goes through the project's own entry point, with the default run's towers, data and
budget (``config/runs/default.yaml``: 200 steps of batch 64, one thread)::

    python -m hyplib.train --config config/runs/default.yaml --run-dir OUT/<variant>-s<seed> \\
        --set method=atmg method_overrides.<key>=<value> ... seed=<seed> data.shards=DATA/train

and is then evaluated on ``DATA/bench`` with :func:`hyplib.evaluation.run_all` (retrieval,
zero-shot, chains), as the workflow's ``05_evaluate`` notebook does. Each run writes
``study_metrics.json`` beside its ``final.pt``; finished runs are not trained or evaluated
again, so the table can be reprinted (``--table-only``) or extended by more seeds.

The evaluation also measures what float32 does to the angles the objective is built from:
the largest and mean error of ``pairwise_exterior_angle(T, I)`` in float32 against float64 on
the retrieval benchmark's embeddings (``angle_err_max``/``angle_err_mean``), and the mean
Euclidean norm of the space parts, since the formula cancels for ``|x|`` near 0.

The table (mean +- sample std over seeds) goes to stdout and, as Markdown, to
``OUT/table.md``. :data:`VARIANTS` states what each row changes and why it is there.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: The paper variant as it stood before issue 21 (literal second term, centroid weight 1), and the
#: code variant.
PAPER = {"variant": "paper", "directions": "text_image", "centroid_weight": 1.0}
CODE = {"variant": "code"}

#: name -> (method, method_overrides, why the row is in the study).
VARIANTS: dict[str, tuple[str, dict, str]] = {
    "meru": ("meru", {}, "the reference: MERU at the same budget"),
    "paper": ("atmg", PAPER, "the paper reading as it stood (T->I twice, centroid r=1/2, w=1, c0=1 learnt)"),
    "code": ("atmg", CODE, "the authors' released loss (both directions, c=0.1 fixed, no centroid)"),
    # centroid regulariser
    "paper-nocent": ("atmg", {**PAPER, "centroid_weight": 0.0}, "centroid term off"),
    "paper-cw0.1": ("atmg", {**PAPER, "centroid_weight": 0.1}, "centroid weight 0.1"),
    "paper-r0.5-2": ("atmg", {**PAPER, "radius_text": 0.5, "radius_image": 2.0},
                     "radii 0.5/2 (the released code's commented-out targets)"),
    # curvature
    "paper-cfix1": ("atmg", {**PAPER, "learn_curv": False}, "c = 1 fixed"),
    "paper-c0.1": ("atmg", {**PAPER, "curv_init": 0.1}, "c0 = 0.1 learnt"),
    "paper-nocent-cfix0.1": ("atmg", {**PAPER, "centroid_weight": 0.0, "curv_init": 0.1, "learn_curv": False},
                             "T->I only with the code's curvature: isolates the directions"),
    "code-cfix1": ("atmg", {**CODE, "curv_init": 1.0}, "code loss, c = 1 fixed"),
    "code-c1": ("atmg", {**CODE, "curv_init": 1.0, "learn_curv": True}, "code loss, c0 = 1 learnt"),
    "code-c0.1": ("atmg", {**CODE, "learn_curv": True}, "code loss, c0 = 0.1 learnt"),
    # directions, and both directions with the centroid term
    "paper-both": ("atmg", {**PAPER, "directions": "both"},
                   "second term I->T over the same angles -phi(T, I)"),
    "paper-both-nocent": ("atmg", {**PAPER, "directions": "both", "centroid_weight": 0.0},
                          "paper-both without the centroid term (the new default)"),
    "paper-both-cw0.1": ("atmg", {**PAPER, "directions": "both", "centroid_weight": 0.1},
                         "paper-both with centroid weight 0.1"),
    "code-cent": ("atmg", {**CODE, "centroid_weight": 1.0},
                  "code loss + centroid (r=1/2, w=1), c = 0.1 fixed"),
    "code-c1-cent": ("atmg", {**CODE, "centroid_weight": 1.0, "curv_init": 1.0, "learn_curv": True},
                     "code loss + centroid (r=1/2, w=1), c0 = 1 learnt"),
    # logit scale on the angle logits
    "code-s14fix": ("atmg", {**CODE, "learn_logit_scale": False}, "code loss, scale fixed at 1/0.07"),
    "code-s1fix": ("atmg", {**CODE, "logit_scale_init": 1.0, "learn_logit_scale": False},
                   "code loss, no scale (raw angles as logits)"),
    "paper-s1fix": ("atmg", {**PAPER, "logit_scale_init": 1.0, "learn_logit_scale": False},
                    "paper loss, no scale (raw angles as logits)"),
}

#: (metric key in run_all's output, column header).
COLUMNS = [("retrieval/i2t_R@1", "I2T R@1"), ("retrieval/t2i_R@1", "T2I R@1"),
           ("retrieval/i2t_R@5", "I2T R@5"), ("zeroshot/mean_per_class_acc", "ZS acc"),
           ("chains/depth1_acc", "chain d1"), ("chains/depth2_acc", "chain d2"),
           ("train/steps_at_chance", "steps at chance"), ("train/loss", "final loss"),
           ("train/curv", "c"), ("train/logit_scale", "s"),
           ("norm/text", "norm T"), ("norm/image", "norm I"), ("precision/angle_err_max", "f32 angle err")]


def train_command(variant: str, seed: int, run_dir: Path, data: Path, config: Path,
                  extra: tuple[str, ...] = ()) -> list[str]:
    """The ``hyplib.train`` command line of one run (``extra``: more ``key=value`` overrides)."""
    method, overrides, _ = VARIANTS[variant]
    sets = [f"method={method}", f"seed={seed}", f"data.shards={data / 'train'}", "train.threads=1",
            "train.progress=false"]
    sets += [f"method_overrides.{k}={json.dumps(v)}" for k, v in overrides.items()]
    sets += list(extra)
    return ["nice", "-n", "5", sys.executable, "-m", "hyplib.train", "--config", str(config),
            "--run-dir", str(run_dir), "--set", *sets]


def _last_log(run_dir: Path, window: int = 20) -> dict:
    """Loss averaged over the last ``window`` logged steps; curvature and logit scale at the end."""
    from hyplib.training.logging import read_log

    steps = [r for r in read_log(run_dir / "log.jsonl") if "loss" in r]
    if not steps:
        raise ValueError(f"{run_dir / 'log.jsonl'} holds no step with a 'loss'")
    out = {k: steps[-1][k] for k in ("curv", "logit_scale") if k in steps[-1]}
    out["loss"] = float(np.mean([r["loss"] for r in steps[-window:]]))
    return out


#: The text->image cross-entropy in each method's log (paper variant, code variant and MERU).
TEXT_IMAGE_TERMS = ("contrastive_text_image_neg_alpha", "contrastive_text_image")


def steps_at_chance(run_dir: Path, threshold: float = 3.5) -> float:
    """First logged step whose text->image cross-entropy is below ``threshold`` (chance: ln B).

    NaN if it never gets there.
    """
    from hyplib.training.logging import read_log

    steps = [r for r in read_log(run_dir / "log.jsonl") if "loss" in r]
    key = next((k for k in TEXT_IMAGE_TERMS if k in steps[0]), None)
    if key is None:
        raise ValueError(f"{run_dir / 'log.jsonl'} has none of {TEXT_IMAGE_TERMS}")
    return float(next((r["step"] for r in steps if r[key] < threshold), float("nan")))


def evaluate(run_dir: Path, bench: Path) -> dict:
    """Retrieval, zero-shot and chain metrics of one run, plus float32-vs-float64 angle errors."""
    import torch

    from hyplib import lorentz
    from hyplib.data.benchmarks import load_benchmark
    from hyplib.evaluation import _common as C
    from hyplib.evaluation import load_model, run_all

    torch.set_num_threads(1)
    model, cfg = load_model(run_dir / "final.pt")
    torch.manual_seed(int(cfg.get("seed", 0)))
    metrics = run_all(model, bench, protocols=["retrieval", "zeroshot", "chains"])
    last = _last_log(run_dir)
    metrics.update({f"train/{k}": float(last[k]) for k in ("loss", "curv", "logit_scale") if k in last})
    if model.method.geometry == "lorentz":
        retrieval = load_benchmark(bench, "retrieval")
        with torch.no_grad():
            image = model.lift(C.image_features(model, retrieval["images"]), "image")
            text = model.lift(C.text_features(model, list(retrieval["captions"])), "text")
            curv = model.curv
            a32 = lorentz.pairwise_exterior_angle(text, image, curv=curv)
            a64 = lorentz.pairwise_exterior_angle(text.double(), image.double(), curv=curv.double())
        err = (a32.double() - a64).abs()
        metrics.update({"norm/text": float(text.norm(dim=-1).mean()),
                        "norm/image": float(image.norm(dim=-1).mean()),
                        "precision/angle_err_max": float(err.max()),
                        "precision/angle_err_mean": float(err.mean())})
    return metrics


def text_offset_diagnostic(run_dir: Path, bench: Path) -> dict:
    """Image->text recall with the method's scores and with each caption's mean score removed.

    A score whose value depends on the caption alone (for ATMG's ``-phi(T, I)``: where the
    caption sits, not where the image sits) cancels in text->image ranking but ranks the same
    captions first for every image. Subtracting each caption's mean over the images removes
    that offset; ``offset_share`` is the share of the score variance it carries.
    """
    import torch

    from hyplib.data.benchmarks import load_benchmark
    from hyplib.evaluation import _common as C
    from hyplib.evaluation import load_model
    from hyplib.evaluation.retrieval import recall_at_k

    torch.set_num_threads(1)
    model, _ = load_model(run_dir / "final.pt")
    bench_r = load_benchmark(bench, "retrieval")
    with torch.no_grad():
        image = C.encode_images(model, bench_r["images"])
        text = C.encode_texts(model, list(bench_r["captions"]))
        S = model.method.similarity(image, text, curv=model.curv).double()  # (N_img, N_txt)
    offset = S.mean(0, keepdim=True)
    # block_elems = all scores: one block, so the score functions below see every image at once.
    raw = recall_at_k(image, text, bench_r["caption_image"], lambda i, t, c: S, block_elems=S.numel())
    centred = S - offset
    cen = recall_at_k(image, text, bench_r["caption_image"], lambda i, t, c: centred, block_elems=S.numel())
    return {"i2t_R@1": raw["i2t_R@1"], "i2t_R@1_centred": cen["i2t_R@1"], "t2i_R@1": raw["t2i_R@1"],
            "t2i_R@1_centred": cen["t2i_R@1"], "offset_share": float(offset.var() / S.var())}


def run_one(variant: str, seed: int, out: Path, data: Path, config: Path,
            extra: tuple[str, ...] = ()) -> Path:
    """Train (unless ``final.pt`` exists) and evaluate (unless ``study_metrics.json`` exists) one run."""
    run_dir = out / f"{variant}-s{seed}"
    result = run_dir / "study_metrics.json"
    if result.is_file():
        return result
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if not (run_dir / "final.pt").is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "train_stdout.txt", "w") as log:
            proc = subprocess.run(train_command(variant, seed, run_dir, data, config, extra), cwd=ROOT,
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"training {run_dir} failed (exit {proc.returncode}); "
                               f"see {run_dir}/train_stdout.txt")
    proc = subprocess.run(["nice", "-n", "5", sys.executable, __file__, "--evaluate-one", str(run_dir),
                           "--data", str(data)], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"evaluating {run_dir} failed:\n{proc.stderr[-2000:]}")
    return result


def collect(out: Path, variants: list[str], seeds: list[int]) -> dict[str, list[dict]]:
    """``{variant: [metrics of each finished seed]}``."""
    found = {}
    for v in variants:
        files = [out / f"{v}-s{s}" / "study_metrics.json" for s in seeds]
        found[v] = [{**json.loads(f.read_text()), "train/steps_at_chance": steps_at_chance(f.parent)}
                    for f in files if f.is_file()]
    return found


def table(found: dict[str, list[dict]]) -> str:
    """Markdown table: one row per variant, mean +- sample std (ddof=1) over its seeds."""
    head = "| variant | seeds | " + " | ".join(h for _, h in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for v, runs in found.items():
        cells = []
        for key, _ in COLUMNS:
            vals = np.array([r[key] for r in runs if r.get(key) is not None], dtype=float)
            if key == "train/steps_at_chance" and np.isnan(vals).any():
                cells.append("never")
                continue
            if len(vals) == 0:
                cells.append("n/a")
            elif key == "precision/angle_err_max":
                cells.append(f"{vals.max():.1e}")
            else:
                digits = 0 if key == "train/steps_at_chance" else 3
                spread = f" ± {vals.std(ddof=1):.{digits}f}" if len(vals) > 1 else ""
                cells.append(f"{vals.mean():.{digits}f}{spread}")
        rows.append(f"| {v} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT / "results/data", help="folder with train/ and bench/")
    p.add_argument("--out", type=Path, default=ROOT / "results/atmg_study",
                   help="one run directory per variant and seed")
    p.add_argument("--config", type=Path, default=ROOT / "config/runs/default.yaml")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated subset of {list(VARIANTS)}")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (each uses one thread)")
    p.add_argument("--set", dest="extra", nargs="*", default=[], metavar="KEY=VALUE",
                   help="more training overrides for every run (smoke tests: train.steps=5)")
    p.add_argument("--table-only", action="store_true",
                   help="print the table of finished runs, train nothing")
    p.add_argument("--diagnose", type=Path, nargs="*", default=None,
                   help="run directories: image->text recall with and without each caption's mean score")
    p.add_argument("--evaluate-one", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.evaluate_one is not None:
        metrics = evaluate(args.evaluate_one, args.data / "bench")
        (args.evaluate_one / "study_metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
        return 0
    if args.diagnose:
        for run in args.diagnose:
            out = text_offset_diagnostic(run, args.data / "bench")
            print(run.name, " ".join(f"{k} {v:.3f}" for k, v in out.items()), flush=True)
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.table_only:
        for sub in ("train", "bench"):
            if not (args.data / sub).is_dir():
                p.error(f"--data {args.data} has no {sub}/ folder (generate the default data first)")
        jobs = [(v, s) for s in seeds for v in variants]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(run_one, v, s, args.out, args.data, args.config, tuple(args.extra)): (v, s)
                       for v, s in jobs}
            for fut, (v, s) in futures.items():
                fut.result()
                print(f"done {v} seed {s}", flush=True)
    md = table(collect(args.out, variants, seeds))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
