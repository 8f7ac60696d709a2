"""Run configurations as data: defaults, loading, ``--set`` overrides, validation, diffs.

A run configuration is a nested dict (YAML on disk, ``config/runs/*.yaml``)::

    name, method, method_overrides, seed, model: {...}, data: {...}, train: {...}

and optionally ``per_method: {<method name>: {<any of the above>}}``, a recipe table that is
merged over the configuration for the selected method only (so ``paper.yaml`` can hold each
paper's batch size and step count). Resolution order: :data:`DEFAULTS` < file <
``per_method[method]`` < explicit overrides (``--set key=value``), so an explicit override
always wins. The resolved dict (without ``per_method``) is what a run saves and compares.

``model`` and ``method_overrides`` are passed on verbatim (``hyplib.models.build_model`` and
``hyplib.methods.get`` validate them, naming unknown keys); every other key must appear in
:data:`DEFAULTS`, and an unknown one fails naming it and the valid keys beside it.
"""
from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULTS", "RUNTIME_KEYS", "ConfigError", "resolve_config", "load_yaml", "parse_set",
    "apply_overrides", "deep_merge", "flatten", "diff_configs", "dump_yaml",
]


class ConfigError(ValueError):
    """A run configuration names an unknown key or holds an invalid value."""


#: Every key a run configuration may hold, with its default.
DEFAULTS: dict[str, Any] = {
    "name": None,                  # informational label of the run
    "method": "clip",              # a name from hyplib.methods.names()
    "method_overrides": {},        # keyword overrides of the method's paper defaults
    "seed": 0,                     # seeds python, numpy, torch (all ranks) and the loader
    "model": {},                   # hyplib.models.build_model's config (see docs/INTERFACES.md)
    "data": {
        "shards": None,            # glob, directory or list of webdataset shards
        "caption_weights": None,   # passed to make_loader (which caption kind to sample)
        "num_workers": 0,          # loader worker processes
        "min_box_size": None,      # boxes below this side (px) are unusable; None: the shards' manifest
        "group_size": None,        # records kept together in the order; None: the shards' manifest, else 1
    },
    "train": {
        "steps": 100,              # optimiser steps in total (one batch each)
        "batch_size": 128,         # global batch: split evenly over the processes
        "accum_steps": 1,          # chunks per process and step (memory); negatives stay the global batch
        "compile": False,          # torch.compile the method's objective and lift (GPU launch overhead)
        "compile_towers": [],      # towers run through torch.compile: [], [image], [image, text]
        "lr": 5.0e-4,              # peak learning rate (AdamW)
        "betas": [0.9, 0.98],
        "eps": 1.0e-8,
        "weight_decay": 0.2,       # applied only to the groups hyplib.models.param_groups marks
        "warmup_steps": 10,        # linear warm-up from lr/warmup_steps to lr
        "min_lr": 0.0,             # cosine decay ends here at the last step
        "grad_clip": None,         # max global grad norm, or None for no clipping
        "precision": "fp32",       # fp32 | bf16 | fp16 (fp16: CUDA only, with GradScaler)
        "device": "auto",          # auto | cpu | cuda | cuda:N
        "threads": None,           # torch.set_num_threads, or None to keep the environment's
        "gather": True,            # all-gather embeddings across processes for negatives
        "checkpoint_every": 100,   # steps between checkpoints (one is always written at the end)
        "keep_checkpoints": 3,     # newest checkpoints kept in run_dir/checkpoints
        "log_every": 1,            # steps between log.jsonl lines
        "progress": True,          # tqdm progress bar on rank 0
    },
}

#: Sections passed on verbatim; their keys are validated by their consumers.
FREE_FORM = ("model", "method_overrides")

#: Keys that do not change the trained weights, so they may differ when a run resumes.
RUNTIME_KEYS = frozenset({
    "name", "train.progress", "train.threads", "train.checkpoint_every",
    "train.keep_checkpoints", "train.log_every", "data.num_workers",
    "train.accum_steps",  # same gradient up to float rounding: a memory setting
    "train.compile",  # same values up to float rounding: a speed setting
    "train.compile_towers",  # the same
})

PRECISIONS = ("fp32", "bf16", "fp16")
#: Towers ``train.compile_towers`` may name (hyplib.training.compiled.TOWERS maps them to modules).
COMPILABLE_TOWERS = ("image", "text")


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping; a missing file or a non-mapping fails naming the path."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"run configuration {str(path)!r} does not exist")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def dump_yaml(cfg: Mapping, path: str | os.PathLike) -> None:
    """Write ``cfg`` as YAML (key order kept) atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        yaml.safe_dump(_plain(cfg), f, sort_keys=False)
    os.replace(tmp, path)


def _plain(x):
    """Tuples to lists and mappings to dicts, so YAML and comparisons see plain data."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """Return ``base`` updated recursively by ``over`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_set(items: Iterable[str]) -> dict:
    """Turn ``["train.steps=10", "method=meru"]`` into a nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. train.steps=10)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: the value is not valid YAML "
                              f"({str(err).splitlines()[0]})") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def apply_overrides(cfg: Mapping, overrides: Mapping | Iterable[str] | None) -> dict:
    """Merge overrides given as a nested dict, a flat ``{"a.b": v}`` dict or ``key=value`` strings."""
    if not overrides:
        return copy.deepcopy(dict(cfg))
    if not isinstance(overrides, Mapping):
        return deep_merge(cfg, parse_set(overrides))
    nested: dict = {}
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, Mapping) and isinstance(node.get(parts[-1]), Mapping):
            node[parts[-1]] = deep_merge(node[parts[-1]], value)
        else:
            node[parts[-1]] = value
    return deep_merge(cfg, nested)


def _check_keys(cfg: Mapping, schema: Mapping, prefix: str = "") -> None:
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            valid = ", ".join(sorted(schema))
            where = f" under {prefix[:-1]}" if prefix else ""
            raise ConfigError(f"unknown config key {dotted!r} (valid keys{where}: {valid})")
        if dotted in FREE_FORM:
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {dotted!r} must be a mapping, got {value!r}")
            continue
        if isinstance(schema[key], Mapping):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {dotted!r} must be a mapping, got {value!r}")
            _check_keys(value, schema[key], dotted + ".")


#: Keys read as floats: YAML 1.1 parses ``5e-4`` (no dot) as a string, so strings are converted.
FLOAT_KEYS = ("lr", "eps", "weight_decay", "min_lr", "grad_clip")


def _to_float(key: str, value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key!r} = {value!r}: expected a number") from None


def _coerce_numbers(cfg: dict) -> None:
    t = cfg["train"]
    for key in FLOAT_KEYS:
        if isinstance(t[key], str):
            t[key] = _to_float(f"train.{key}", t[key])
    if isinstance(t["betas"], (list, tuple)):
        t["betas"] = [_to_float("train.betas", b) if isinstance(b, str) else b for b in t["betas"]]


def _int(x, low: int) -> bool:
    """An integer (``true``/``false`` are not) of at least ``low``."""
    return isinstance(x, int) and not isinstance(x, bool) and x >= low


def _num(x, low: float = -math.inf, strict: bool = False) -> bool:
    """A finite number (not a bool) above ``low`` (``strict``) or at least ``low``."""
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
        return False
    return x > low if strict else x >= low


DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


def _check_values(cfg: Mapping) -> None:
    """Every value's type and range; the first bad one raises naming key, value and what is allowed."""
    t, d = cfg["train"], cfg["data"]
    weights = d["caption_weights"]
    shards = d["shards"]
    checks = [
        ("train.steps", t["steps"], _int(t["steps"], 1), "a positive integer"),
        ("train.batch_size", t["batch_size"], _int(t["batch_size"], 2),
         "an integer > 1 (contrastive losses need negatives)"),
        ("train.warmup_steps", t["warmup_steps"], _int(t["warmup_steps"], 0), "an integer >= 0"),
        ("train.lr", t["lr"], _num(t["lr"], 0, strict=True), "a finite number > 0"),
        ("train.min_lr", t["min_lr"], _num(t["min_lr"], 0) and (not _num(t["lr"]) or t["min_lr"] <= t["lr"]),
         f"a finite number in [0, train.lr = {t['lr']}]"),
        ("train.eps", t["eps"], _num(t["eps"], 0, strict=True), "a finite number > 0"),
        ("train.weight_decay", t["weight_decay"], _num(t["weight_decay"], 0), "a finite number >= 0"),
        ("train.betas", t["betas"], isinstance(t["betas"], list) and len(t["betas"]) == 2
         and all(_num(b, 0) and b < 1 for b in t["betas"]), "two numbers in [0, 1)"),
        ("train.grad_clip", t["grad_clip"], t["grad_clip"] is None or _num(t["grad_clip"], 0, strict=True),
         "null or a finite number > 0"),
        ("train.precision", t["precision"], t["precision"] in PRECISIONS, f"one of {PRECISIONS}"),
        ("train.device", t["device"], isinstance(t["device"], str) and bool(DEVICE.match(t["device"])),
         "auto, cpu, cuda or cuda:N"),
        ("train.accum_steps", t["accum_steps"], _int(t["accum_steps"], 1), "an integer >= 1"),
        ("train.threads", t["threads"], t["threads"] is None or _int(t["threads"], 1), "null or an integer >= 1"),
        ("train.gather", t["gather"], isinstance(t["gather"], bool), "true or false"),
        ("train.compile", t["compile"], isinstance(t["compile"], bool), "true or false"),
        ("train.compile_towers", t["compile_towers"], isinstance(t["compile_towers"], list)
         and all(x in COMPILABLE_TOWERS for x in t["compile_towers"]),
         "a list of towers: [], [image] or [image, text]"),
        ("train.progress", t["progress"], isinstance(t["progress"], bool), "true or false"),
        ("train.checkpoint_every", t["checkpoint_every"], _int(t["checkpoint_every"], 1), "a positive integer"),
        ("train.keep_checkpoints", t["keep_checkpoints"], _int(t["keep_checkpoints"], 1), "an integer >= 1"),
        ("train.log_every", t["log_every"], _int(t["log_every"], 1), "an integer >= 1"),
        ("data.shards", shards, shards is None or isinstance(shards, str) or
         (isinstance(shards, list) and shards and all(isinstance(x, str) for x in shards)),
         "a path, glob or brace range, or a list of them"),
        ("data.caption_weights", weights, weights is None or (
            isinstance(weights, list) and weights and all(_num(w, 0) for w in weights) and sum(weights) > 0),
         "null or a list of numbers >= 0 with a positive sum"),
        ("data.num_workers", d["num_workers"], _int(d["num_workers"], 0), "an integer >= 0"),
        ("data.min_box_size", d["min_box_size"], d["min_box_size"] is None or _num(d["min_box_size"], 0),
         "null or a finite number >= 0"),
        ("data.group_size", d["group_size"], d["group_size"] is None or _int(d["group_size"], 1),
         "null or an integer >= 1"),
        ("seed", cfg["seed"], _int(cfg["seed"], 0) and cfg["seed"] < 2 ** 63, "an integer >= 0"),
        ("method", cfg["method"], isinstance(cfg["method"], str), "a method name"),
    ]
    for key, value, ok, what in checks:
        if not ok:
            raise ConfigError(f"config key {key!r} = {value!r}: expected {what}")


def resolve_config(config: Mapping | str | os.PathLike, overrides=None) -> dict:
    """Defaults < ``config`` (dict or YAML path) < ``per_method[method]`` < ``overrides``; validated.

    Args:
        config: a nested dict or the path of a YAML run configuration.
        overrides: nested dict, flat dotted dict, or ``key=value`` strings (CLI ``--set``).

    Returns:
        The full configuration with every key of :data:`DEFAULTS` present.

    Raises:
        ConfigError: an unknown key (named, with the valid ones) or an invalid value.
    """
    raw = load_yaml(config) if isinstance(config, (str, os.PathLike)) else copy.deepcopy(dict(config))
    raw = apply_overrides(raw, overrides)
    per_method = raw.pop("per_method", None) or {}
    if not isinstance(per_method, Mapping):
        raise ConfigError(f"config key 'per_method' must map method names to overrides, got {per_method!r}")
    method = raw.get("method", DEFAULTS["method"])
    if method in per_method:
        raw = apply_overrides(deep_merge(raw, per_method[method]), overrides)
    _check_keys(raw, DEFAULTS)
    cfg = _plain(deep_merge(DEFAULTS, raw))
    _coerce_numbers(cfg)
    _check_values(cfg)
    return cfg


def flatten(cfg: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; empty mappings stay as ``{}`` leaves."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = _plain(value)
    return out


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def _key(v) -> str:
    return "absent" if v is _ABSENT else "empty" if v == {} else "value"


def diff_configs(old: Mapping, new: Mapping, ignore: Iterable[str] = RUNTIME_KEYS) -> list[str]:
    """Lines ``key: old -> new`` for every dotted key that differs (``ignore`` excepted)."""
    a, b = flatten(old), flatten(new)
    skip = set(ignore)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key in skip:
            continue
        va, vb = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if va == vb or {_key(va), _key(vb)} == {"absent", "empty"}:  # {} vs filled: the leaves differ
            continue
        lines.append(f"{key}: {va!r} -> {vb!r}")
    return lines
