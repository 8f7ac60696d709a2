"""What a collapsed model scores on every protocol: the floor that the tie rule guarantees.

    python scripts/collapsed_scores.py [--bench results/data/bench] [--size default] [--methods meru clip]

A tiny model whose image and text features are one constant vector (every embedding the same
point) is evaluated by :func:`hyplib.evaluation.run_all`; with ``--bench`` absent, the generated
benchmarks of ``--size`` are written to a temporary folder first. Printed per method: each ranking
metric next to its chance level. The tie rule (README, "Ties and duplicate captions") makes each one
at or below chance.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from hyplib import methods
from hyplib.data.benchmarks import load_benchmark
from hyplib.evaluation import expected_random_metrics, run_all
from hyplib.models import build_model
from hyplib.tree import Tree

TINY = dict(image_size=32, patch_size=16, vision_width=32, vision_layers=1, vision_heads=2, text_width=32,
            text_layers=1, text_heads=2, context_length=32, embed_dim=16)
SHOWN = ("zeroshot/mean_per_class_acc", "zeroshot/top1", "zeroshot/top5", "retrieval/i2t_R@1", "retrieval/i2t_R@5",
         "retrieval/i2t_R@10", "retrieval/t2i_R@1", "retrieval/t2i_R@5", "retrieval/t2i_R@10",
         "retrieval/captions_distinct", "retrieval/captions_shared", "hierarchy/reference/TIE",
         "hierarchy/reference/J", "hierarchy/corrected/J", "hierarchy/corrected/P_H", "composition/acc",
         "chains/depth1_acc", "chains/depth2_acc", "chains/text_depth1_acc", "hierarcaps/tau",
         "hierarcaps/order_acc", "hierarcaps/hret/own_mean", "hierarcaps/hret/level_tau", "pep/auc", "pep/ap")


def collapsed(name: str):
    method = methods.get(name, embed_dim=16)
    torch.manual_seed(0)
    model = build_model(dict(TINY), method)
    const = torch.full((1, 16), 0.05)
    model.image_features = lambda x: const.expand(x.shape[0], -1).to(x.device)
    model.text_features = lambda t: const.expand(t.shape[0], -1).to(t.device)
    return model


def chance(bench: Path) -> dict:
    out = {}
    if (bench / "zeroshot.json").is_file():
        n_cls = len(load_benchmark(bench, "zeroshot")["classnames"])
        out.update({"zeroshot/mean_per_class_acc": 1 / n_cls, "zeroshot/top1": 1 / n_cls,
                    "zeroshot/top5": min(1.0, 5 / n_cls)})
    if (bench / "retrieval.json").is_file():
        r = load_benchmark(bench, "retrieval")
        n, m = len(r["images"]), len(r["captions"])
        for k in (1, 5, 10):  # a random ranking: about K/N in both directions
            out[f"retrieval/t2i_R@{k}"] = out[f"retrieval/i2t_R@{k}"] = min(1.0, k / n)
        out["retrieval/captions_distinct"] = float(m)
    if (bench / "taxonomy.json").is_file():
        t = load_benchmark(bench, "taxonomy")
        tree = Tree(parent=t["parent"], names=t.get("names", {}), leaves=t.get("leaves", []))
        for mode in ("reference", "corrected"):
            out.update({f"hierarchy/{mode}/{k}": v for k, v in expected_random_metrics(tree, mode).items()})
    if (bench / "pep.json").is_file():
        out["pep/ap"] = float(load_benchmark(bench, "pep")["labels"].mean())  # the share of positives
    # random orderings: a pair is ordered with p 1/2, three levels 1/6, four 1/24
    out.update({"composition/acc": 0.5, "pep/auc": 0.5, "hierarcaps/tau": 0.0, "hierarcaps/hret/level_tau": 0.0,
                "chains/depth1_acc": 0.5, "chains/depth2_acc": 1 / 6, "chains/text_depth1_acc": 0.5,
                "hierarcaps/order_acc": 1 / 24})
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, default=None)
    ap.add_argument("--size", default="default")
    ap.add_argument("--methods", nargs="+", default=["meru", "clip"])
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        bench = args.bench
        if bench is None:
            from hyplib.data.genconfig import GenConfig
            from hyplib.data.generate import generate_all

            generate_all(tmp, GenConfig.preset(args.size, n_train=1), progress=False)
            bench = Path(tmp) / "bench"
        ref = chance(bench)
        for name in args.methods:
            report: dict = {}
            m = run_all(collapsed(name), bench, traversal_images=8, report=report)
            print(f"\n{name} (collapsed)                     score    chance (captions_distinct: all)")
            for key in SHOWN:
                if key in m:
                    c = ref.get(key)
                    print(f"  {key:32s} {m[key]:8.4f}  {'' if c is None else f'{c:8.4f}'}")


if __name__ == "__main__":
    main()
