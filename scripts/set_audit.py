"""Audit of bad ``--set`` values on the training CLI (issue 19): one row per case, its outcome.

    PYTHONPATH=. python scripts/set_audit.py [--markdown]

Each case runs ``hyplib.train.main`` in-process on config/runs/quick.yaml over 64 generated
records, with ``--stop-after 1`` so an accepted value costs one step. Outcomes:
``clear``: exit 2 with one ``error:`` line naming the key, and no run directory created;
``unnamed``: exit 2 but the key is not named, or the run directory was created first;
``traceback``: an exception escaped (its type); ``accepted``: the run trained.
"""
from __future__ import annotations

import contextlib
import io
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (--set value, the key the error must name)
CASES = [
    ("train.steps=true", "train.steps"), ("train.steps=0", "train.steps"), ("train.steps=2.5", "train.steps"),
    ("train.steps=abc", "train.steps"), ("train.batch_size=1", "train.batch_size"),
    ("train.batch_size=false", "train.batch_size"), ("train.lr=0", "train.lr"), ("train.lr=-1", "train.lr"),
    ("train.lr=abc", "train.lr"), ("train.lr=.inf", "train.lr"), ("train.min_lr=1", "train.min_lr"),
    ("train.min_lr=-1", "train.min_lr"), ("train.eps=-1", "train.eps"), ("train.eps=0", "train.eps"),
    ("train.betas=[a,b]", "train.betas"), ("train.betas=[0.9]", "train.betas"),
    ("train.betas=[0.9,1.5]", "train.betas"), ("train.betas=0.9", "train.betas"),
    ("train.weight_decay=-1", "train.weight_decay"), ("train.warmup_steps=-1", "train.warmup_steps"),
    ("train.grad_clip=0", "train.grad_clip"), ("train.grad_clip=abc", "train.grad_clip"),
    ("train.precision=fp8", "train.precision"), ("train.device=gpu", "train.device"),
    ("train.threads=0", "train.threads"), ("train.gather=maybe", "train.gather"),
    ("train.checkpoint_every=0", "train.checkpoint_every"), ("train.keep_checkpoints=0", "train.keep_checkpoints"),
    ("train.log_every=0", "train.log_every"), ("train.progress=2", "train.progress"),
    ("train.stepz=10", "train.stepz"), ("seed=-1", "seed"), ("seed=abc", "seed"), ("seed=1.5", "seed"),
    ("method=merus", "method"), ("method=5", "method"), ("data.num_workers=-1", "data.num_workers"),
    ("data.min_box_size=-1", "data.min_box_size"), ("data.group_size=0", "data.group_size"),
    ("data.caption_weights=[-1]", "data.caption_weights"), ("data.caption_weights=abc", "data.caption_weights"),
    ("data.shards=/nonexistent", "data.shards"), ("model.vision_layers=0", "model.vision_layers"),
    ("model.vision_heads=3", "model"), ("model.visionlayers=2", "model"), ("train=5", "train"),
    ("curv_init=abc", "curv_init"), ("method=meru method_overrides.curv_init=abc", "curv_init"),
    ("method=meru method_overrides.curv_init=-1", "curv_init"),
    ("method=meru method_overrides.curv_init=.inf", "curv_init"), ("method=meru method_overrides.curv=inf", "curv"),
    ("method=meru method_overrides.entail_weight=-1", "entail_weight"),
    ("method=meru method_overrides.learn_curv=maybe", "learn_curv"),
    ("method=phyclip method_overrides.k=0", "k"), ("method=phyclip method_overrides.how=l3", "how"),
    ("method=clip method_overrides.use_boxs=true", "use_boxs"),
    ("method=clip method_overrides.embed_dim=0", "embed_dim"),
    ("method=clip method_overrides.logit_scale_init=abc", "logit_scale_init"),
    ("train.steps=[1", "train.steps"), ("nokeyvalue", "nokeyvalue"),
]


def run_case(value: str, key: str, shards: Path, work: Path) -> str:
    from hyplib.train import main

    run_dir = work / ("run-" + "".join(c if c.isalnum() else "_" for c in value))
    err = io.StringIO()
    argv = ["--config", str(ROOT / "config/runs/quick.yaml"), "--run-dir", str(run_dir), "--stop-after", "1",
            "--set", f"data.shards={shards}", "train.progress=false", "--set", *value.split(" ")]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    except Exception as exc:  # noqa: BLE001 - the audit records what escaped
        return f"traceback ({type(exc).__name__})"
    if rc == 0:
        return "accepted"
    lines = [line for line in err.getvalue().splitlines() if line.startswith("error:")]
    named = len(lines) == 1 and key in lines[0]
    return "clear" if named and not run_dir.exists() else "unnamed"


def main() -> None:
    logging.disable(logging.WARNING)
    from hyplib.data import generate_all
    from hyplib.data.genconfig import GenConfig

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate_all(work / "data", GenConfig.preset("quick", n_train=64, shard_size=64), progress=False,
                     benchmarks=())
        rows = [(value, run_case(value, key, work / "data" / "train", work)) for value, key in CASES]
    if "--markdown" in sys.argv:
        print("| --set | outcome |\n|---|---|")
        for value, outcome in rows:
            print(f"| `{value}` | {outcome} |")
    else:
        for value, outcome in rows:
            print(f"{value:32s} {outcome}")
    counts: dict[str, int] = {}
    for _, outcome in rows:
        counts[outcome.split(" ")[0]] = counts.get(outcome.split(" ")[0], 0) + 1
    print(f"# {len(rows)} cases: {counts}")


if __name__ == "__main__":
    main()
