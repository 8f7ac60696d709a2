"""Train any of the six methods: ``train(config, run_dir)`` or ``python -m hyplib.train``.

>>> from hyplib.train import train
>>> summary = train("config/runs/quick.yaml", "results/train/quick-meru",
...                 overrides={"method": "meru", "data.shards": "data/quick/train"})

The same loop serves one CPU core, one GPU and ``torchrun --nproc_per_node N -m hyplib.train``
(see :mod:`hyplib.training`). A run is ``base size + method + overrides``: the YAML under
``config/runs/`` fixes the model and schedule, ``method:`` picks the objective and
``method_overrides:`` its hyper-parameters. Rerunning with the same ``run_dir`` resumes from
the newest checkpoint and ends with the same weights as an uninterrupted run.

Run directory: ``config.yaml``, ``log.jsonl``, ``checkpoints/step_*.pt``, ``final.pt``
(``{"model", "config", "step", "method", "summary"}``) and ``data_stats.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hyplib.training import checkpoint as ckpt
from hyplib.training.config import ConfigError, flatten, parse_set, resolve_config
from hyplib.training.loop import Components, NonFiniteLossError, Preempted, ResumeConfigError, fit

__all__ = ["train", "load_trained", "build_components", "check_run", "check_device", "split_overrides",
           "run_settings", "main", "NonFiniteLossError", "ResumeConfigError", "ConfigError", "Preempted"]


def check_run(cfg: dict):
    """The method of a resolved ``cfg``, after checking what :func:`resolve_config` leaves to its
    consumers: the method name and its overrides (:func:`hyplib.methods.get`) and the model keys
    (:func:`hyplib.models.tower_configs`). Their ``ValueError``/``TypeError`` become a one-line
    :class:`ConfigError` naming the config key, before any run directory exists."""
    from hyplib import methods, models

    try:
        method = methods.get(cfg["method"], **cfg["method_overrides"])
    except (ValueError, TypeError) as err:
        key = "method" if cfg["method"] not in methods.names() else "method_overrides"
        raise ConfigError(f"config key {key!r}: {err}") from None
    for key, value in cfg["model"].items():
        positive_int = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if key not in models.NAMED_MODEL_KEYS and not positive_int:
            raise ConfigError(f"config key 'model.{key}' = {value!r}: expected an integer >= 1")
    try:
        models.tower_configs(cfg["model"], method.defaults["embed_dim"])
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"config key 'model': {err}") from None
    return method


def check_device(cfg: dict) -> None:
    """``train.device`` and ``train.precision`` against this machine, before any model is built:
    ``cuda`` without a visible GPU and ``fp16`` off CUDA become a :class:`ConfigError` naming the key."""
    import torch

    t = cfg["train"]
    device = str(t["device"]).lower()
    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config key 'train.device' = {t['device']!r} but no CUDA device is visible "
                          f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
                          "use train.device=cpu or auto, or run where a GPU is allocated")
    if t["precision"] == "fp16" and not on_cuda:
        raise ConfigError(f"config key 'train.precision' = 'fp16' needs CUDA (train.device = {t['device']!r} "
                          "resolves to the CPU here); use bf16 or fp32 on CPU")


def run_settings(method: str, overrides: dict | None, seed: int, shards: str, device: str) -> dict:
    """The dotted overrides one workflow run applies to its run configuration: what
    ``notebooks/02_train.ipynb`` and the multi-GPU launch (``--params-b64``) both pass to
    :func:`train`, so the two resolve to the same configuration (``shards`` made absolute)."""
    from hyplib.paths import resolve

    run_overrides, method_overrides = split_overrides(overrides)
    return {"method": method, "method_overrides": method_overrides, "seed": int(seed),
            "data.shards": str(resolve(shards)), "train.device": device, **run_overrides}


def build_components(cfg: dict) -> Components:
    """The registry's method, model factory, ``param_groups`` and the shard loader for ``cfg``."""
    from hyplib import models
    from hyplib.data.loader import make_loader
    from hyplib.data.shards import expand_shards

    method = check_run(cfg)
    data = cfg["data"]
    if data["shards"] is None:
        raise ConfigError("config key 'data.shards' is not set: give a shard directory or glob "
                          "(e.g. --set data.shards=data/quick/train)")
    try:
        expand_shards(data["shards"])
    except FileNotFoundError as err:
        raise ConfigError(f"config key 'data.shards' = {data['shards']!r}: {err}") from None

    def loader(model, *, batch_size, rank, world_size, start_batch):
        return make_loader(data["shards"], batch_size=batch_size, image_size=model.image_size,
                           tokenize=model.tokenize, caption_weights=data["caption_weights"],
                           with_boxes=method.uses_boxes, seed=cfg["seed"], rank=rank, world_size=world_size,
                           start_batch=start_batch, num_workers=data["num_workers"],
                           min_box_size=data["min_box_size"], group_size=data["group_size"])

    return Components(method=method, build_model=lambda: models.build_model(cfg["model"], method),
                      param_groups=models.param_groups, make_loader=loader)


def split_overrides(overrides: dict | None) -> tuple[dict, dict]:
    """Split one overrides dict into ``(run-config overrides, method overrides)``.

    Dotted keys (``"train.steps"``, ``"model.vision_layers"``) address the run configuration;
    every other key (``"curv_init"``, ``"k"``) is a method override (method keys have no dots).
    This is how the notebook's single ``overrides`` parameter carries both.
    """
    run, method = {}, {}
    for key, value in (overrides or {}).items():
        (run if "." in str(key) else method)[key] = value
    return run, method


def train(config, run_dir, *, overrides=None, stop_after: int | None = None) -> dict:
    """Train (or resume) one run.

    Args:
        config: a run configuration dict or the path of its YAML.
        run_dir: output directory; if it holds checkpoints the run resumes from the newest.
        overrides: nested dict, flat dotted dict (``{"train.steps": 10}``) or ``key=value`` strings.
        stop_after: stop after this many steps of this call (no final checkpoint), as if killed.

    Returns:
        The summary dict of :func:`hyplib.training.loop.fit` (``final`` is the path of
        ``final.pt`` once the run has completed).

    Raises:
        ConfigError: unknown key or bad value (named), CUDA requested but absent, fp16 off CUDA;
        ResumeConfigError: ``run_dir`` holds a checkpoint of a different configuration
        (differing keys listed); NonFiniteLossError: NaN/Inf loss (step, term and last good
        checkpoint named); Preempted: SIGTERM or SIGUSR1 arrived (a checkpoint of the step
        reached was written; rerun to resume).
    """
    from hyplib.training.orphan import exit_with_parent

    cfg = resolve_config(config, overrides)
    check_device(cfg)
    parts = build_components(cfg)
    exit_with_parent()  # a killed job (papermill, torchrun) leaves no training kernel behind
    return fit(cfg, run_dir, parts, stop_after=stop_after)


def load_trained(path, *, map_location="cpu"):
    """``(model, method, cfg)`` from ``final.pt`` or any ``checkpoints/step_*.pt`` (eval mode).

    Args:
        path: a checkpoint file, or a run directory (its ``final.pt``).
    """
    from hyplib import methods, models

    path = Path(path)
    if path.is_dir():
        path = path / "final.pt"
    state = ckpt.load(path, map_location=map_location)
    cfg = state["config"]
    method = methods.get(cfg["method"], **cfg.get("method_overrides", {}))
    model = models.build_model(cfg.get("model", {}), method)
    model.load_state_dict(state["model"])
    return model.to(map_location).eval(), method, cfg


def _parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m hyplib.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="run configuration YAML (config/runs/*.yaml)")
    p.add_argument("--run-dir", help="output directory; an existing one is resumed")
    p.add_argument("--params-b64", default=None,
                   help="the train notebook's parameters as the workflow passes them to papermill -b "
                        "(config, run_dir, method, overrides, seed, shards, device): the multi-GPU launch")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", nargs="+",
                   help="override a config key (dotted, value parsed as YAML), e.g. train.steps=10")
    p.add_argument("--stop-after", type=int, default=None, help="stop after N steps of this call (testing)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """CLI entry; also what every torchrun process runs."""
    args = _parse(argv)
    sets: list | dict = [s for group in args.sets for s in group]
    if args.params_b64:
        import base64

        import yaml

        nb = yaml.safe_load(base64.b64decode(args.params_b64))
        args.config, args.run_dir = args.config or nb["config"], args.run_dir or nb["run_dir"]
        sets = {**run_settings(nb["method"], nb["overrides"], nb["seed"], nb["shards"], nb["device"]),
                **flatten(parse_set(sets))}  # --set on top, values parsed as YAML
    if not (args.config and args.run_dir):
        print("error: give --config and --run-dir (or --params-b64)", file=sys.stderr)
        return 2
    try:
        summary = train(args.config, args.run_dir, overrides=sets, stop_after=args.stop_after)
    except (ConfigError, NonFiniteLossError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Preempted as err:
        print(f"preempted: {err}", file=sys.stderr)
        return Preempted.EXIT_CODE
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "final_logs"}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
