"""The workflow's plan as plain Python: which runs a config asks for, what each figure needs,
how rule parameters reach a notebook, and the checks a config must pass before any job starts.

The Snakefile only calls these functions, so the plan is testable without Snakemake.
A run's name is ``<method>-<variant>-s<seed>``; ``variant`` is ``base`` for the paper
defaults, else a short tag of its overrides (``c0.5``, ``k1``, ``linf``, ``boxes``).
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import nbformat
import yaml

from hyplib import methods


def figure_needs() -> dict[str, dict]:
    """Every registered figure (:mod:`hyplib.figures.registry`) with the studies and methods
    (None: all) whose runs it reads."""
    from hyplib.figures.registry import REGISTRY

    return {name: {"studies": list(f.studies), "methods": None if f.methods is None else list(f.methods)}
            for name, f in REGISTRY.items()}


def released_figure_needs() -> dict[str, tuple]:
    """Figure -> (methods it draws (None: any), ``data.paths`` key whose benchmark it reads), for
    every registered figure that suits released checkpoints (its ``released``)."""
    from hyplib.figures.registry import REGISTRY

    return {name: f.released for name, f in REGISTRY.items() if f.released is not None}


def released_figures(planned: list[dict], paths: dict | None) -> dict[str, list[dict]]:
    """Figure name -> the given released runs it draws (:func:`hyplib.released_eval.plan_released`),
    for figures whose methods and data are present."""
    paths = {k for k, v in dict(paths or {}).items() if v not in (None, "")}
    out = {}
    for figure, (methods_, data_key) in released_figure_needs().items():
        runs = [r for r in planned if r["given"] and (methods_ is None or r["method"] in methods_)]
        if runs and data_key in paths:
            out[figure] = runs
    return out


#: Figure -> ``{"studies", "methods"}``, from the figure registry.
FIGURE_NEEDS: dict[str, dict] = figure_needs()


def config_figures(config: dict) -> list[str]:
    """The figures a config draws: its ``figures`` list, or every registered figure when absent."""
    listed = config.get("figures")
    return list(FIGURE_NEEDS) if listed is None else list(listed)


#: Where every output lives unless the config sets ``results_dir``.
RESULTS_DIR = "results"


def results_dir(config: dict) -> str:
    """The config's ``results_dir`` (default :data:`RESULTS_DIR`), relative to the checkout or
    absolute: data, runs, figures, tables and executed notebooks all go under it, so two datasets'
    results live side by side from one checkout (one config each, different ``results_dir``)."""
    value = str(config.get("results_dir") or RESULTS_DIR).rstrip("/")
    if not value or value in (".", "/"):
        raise ValueError(f"config key results_dir: {config.get('results_dir')!r} would put results over the checkout; "
                         "name a folder, e.g. results/clipart")
    return value


def _run(method: str, variant: str, seed: int, overrides: dict, study: str) -> dict:
    return {"name": f"{method}-{variant}-s{seed}", "method": method, "variant": variant,
            "seed": int(seed), "overrides": dict(overrides), "study": [study]}


def plan_runs(config: dict) -> list[dict]:
    """Every training run the config asks for, de-duplicated by name (studies merged).

    Returns dicts with ``name, method, variant, seed, overrides, study`` (list of study tags),
    plus ``train_dir`` and ``eval_dir`` under :func:`results_dir`.
    """
    planned: list[dict] = []
    for method in config["methods"]:
        for seed in config["seeds"]:
            planned.append(_run(method, "base", seed, {}, "main"))
    studies = config.get("studies") or {}
    curvature = studies.get("curvature")
    if curvature:
        for method in curvature["methods"]:
            for c in curvature["curvatures"]:
                for seed in curvature["seeds"]:
                    planned.append(_run(method, f"c{c:g}", seed, {"curv_init": c, "learn_curv": False},
                                        "curvature"))
    ablation = studies.get("phyclip_ablation")
    if ablation:
        for tag, overrides in ablation["variants"].items():
            for seed in ablation["seeds"]:
                variant = "base" if not overrides else tag
                planned.append(_run("phyclip", variant, seed, overrides, "phyclip_ablation"))
    boxes = studies.get("boxes")
    if boxes:
        for method in boxes["methods"]:
            for seed in boxes["seeds"]:
                planned.append(_run(method, "boxes", seed, boxes.get("overrides", {}), "boxes"))
                planned.append(_run(method, "base", seed, {}, "boxes"))
    by_name: dict[str, dict] = {}
    for run in planned:
        if run["name"] in by_name:
            kept = by_name[run["name"]]
            if kept["overrides"] != run["overrides"]:
                raise ValueError(f"run {run['name']!r} is planned twice with different overrides: "
                                 f"{kept['overrides']} vs {run['overrides']}")
            kept["study"] = sorted(set(kept["study"]) | set(run["study"]))
        else:
            by_name[run["name"]] = run
    out = results_dir(config)
    for run in by_name.values():
        run["train_dir"] = f"{out}/train/{run['name']}"
        run["eval_dir"] = f"{out}/eval/{run['name']}"
    return list(by_name.values())


def runs_for_figure(runs: list[dict], figure: str) -> list[dict]:
    """The runs a figure reads (by study and method); unknown figure names raise."""
    if figure not in FIGURE_NEEDS:
        raise ValueError(f"unknown figure {figure!r}; valid figures: {sorted(FIGURE_NEEDS)}")
    need = FIGURE_NEEDS[figure]
    return [r for r in runs
            if set(r["study"]) & set(need["studies"])
            and (need["methods"] is None or r["method"] in need["methods"])]


def b64_params(params: dict) -> str:
    """Parameters for ``papermill -b``: base64 of their YAML."""
    return base64.b64encode(yaml.safe_dump(params, sort_keys=True).encode()).decode()


def notebook_parameters(path: str | Path) -> dict:
    """Names and default values of a notebook's ``parameters`` cell (executed in isolation)."""
    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    namespace: dict = {}
    exec(compile(cells[0].source, f"{path}:parameters", "exec"), {}, namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def check_params_match(path: str | Path, params: dict) -> None:
    """Raise if ``params`` has a key the notebook does not declare (papermill only warns)."""
    unknown = sorted(set(params) - set(notebook_parameters(path)))
    if unknown:
        raise ValueError(f"{path}: the workflow passes {unknown}, which its parameters cell does not declare")


def train_layout(config: dict) -> tuple[int, int]:
    """``(nodes, gpus_per_node)`` of one training run: ``resources.train.nodes`` (default 1) and
    ``resources.train.gpu`` (GPUs per node, default 0: CPU). ``nodes * gpus_per_node`` processes
    train each run, one per GPU; a run on several nodes needs GPUs."""
    train = (config.get("resources") or {}).get("train") or {}
    nodes, per_node = int(train.get("nodes", 1)), int(train.get("gpu", 0))
    if nodes > 1 and per_node < 1:
        raise ValueError(f"config key resources.train.nodes = {nodes} needs resources.train.gpu >= 1 "
                         "(GPUs per node); multi-node training is GPU-only")
    return nodes, per_node


def check_train_layout(config: dict) -> None:
    """Every planned run's global batch (``train.batch_size`` of its resolved run configuration)
    must split evenly over the ``nodes * gpu`` training processes and their
    ``train.accum_steps`` chunks; the error names the run, the batch and the process count."""
    nodes, per_node = train_layout(config)
    world = max(1, nodes * per_node)
    run_config = (config.get("train") or {}).get("run_config")
    if world == 1 or not run_config:
        return
    from hyplib.train import split_overrides
    from hyplib.training.config import resolve_config

    for run in plan_runs(config):
        sets, method_sets = split_overrides(run["overrides"])
        cfg = resolve_config(run_config, {"method": run["method"], "method_overrides": method_sets, **sets})
        batch, accum = cfg["train"]["batch_size"], cfg["train"].get("accum_steps", 1)
        if batch % (world * accum):
            raise ValueError(f"config key resources.train: run {run['name']!r} has train.batch_size = {batch}, "
                             f"which does not split over {nodes} node(s) x {per_node} GPU(s) = {world} processes"
                             + (f" x train.accum_steps = {accum}" if accum > 1 else ""))


def check_config(config: dict) -> None:
    """Semantic checks beyond the JSON schema, each naming the offending key.

    Unknown method names, non-positive curvatures, bad study overrides (:func:`check_runs`),
    and (for real data) input paths that do not exist or whose files do not hold what their
    benchmark needs (class folders against the taxonomy, templates, JSON keys, csv header:
    :func:`hyplib.data.real.resolve_data_paths`, the check ``prepare_real`` runs itself before
    touching a shard) or box-using runs without ``data.paths.grit_shards`` stop the workflow
    before any job starts.
    """
    valid = methods.names()
    for i, name in enumerate(config.get("methods", [])):
        if name not in valid:
            raise ValueError(f"config key methods[{i}]: unknown method {name!r}; valid methods: {valid}")
    studies = config.get("studies") or {}  # a study set to null is off
    for key in ("curvature", "boxes"):
        for i, name in enumerate((studies.get(key) or {}).get("methods", [])):
            if name not in valid:
                raise ValueError(f"config key studies.{key}.methods[{i}]: unknown method {name!r}; "
                                 f"valid methods: {valid}")
    for i, c in enumerate((studies.get("curvature") or {}).get("curvatures", [])):
        if not c > 0:
            raise ValueError(f"config key studies.curvature.curvatures[{i}]: curvature must be positive, got {c}")
    for i, name in enumerate(config.get("figures") or []):
        if name not in FIGURE_NEEDS:
            raise ValueError(f"config key figures[{i}]: unknown figure {name!r}; valid figures: {list(FIGURE_NEEDS)}")
    results_dir(config)
    run_config = config.get("train", {}).get("run_config")
    if run_config and not Path(run_config).is_file():
        raise ValueError(f"config key train.run_config: file not found: {run_config}")
    check_runs(config)
    check_train_layout(config)
    data = config.get("data", {})
    if data.get("source") == "real":
        from hyplib.data.real import resolve_data_paths

        try:
            paths = resolve_data_paths(data.get("root", "."), data.get("paths", {}))
        except FileNotFoundError as err:
            raise ValueError(str(err)) from None
        boxed = [r["name"] for r in plan_runs(config) if run_uses_boxes(r)]
        if boxed and "grit_shards" not in paths:
            raise ValueError(f"config key data.paths.grit_shards: not set, but runs {boxed[:4]} use boxes; "
                             "give GRIT shards (or the same glob as train_shards if those carry boxes)")


def _study_key(run: dict) -> str:
    """The config key a planned run comes from (for error messages)."""
    study = next((s for s in run["study"] if s != "main"), "main")
    return {"main": "methods", "curvature": "studies.curvature",
            "phyclip_ablation": f"studies.phyclip_ablation.variants.{run['variant']}",
            "boxes": "studies.boxes.overrides"}.get(study, f"studies.{study}")


def check_runs(config: dict) -> None:
    """Resolve every planned run's configuration as its training job will (run config file,
    method, seed and study overrides; :func:`hyplib.train.check_run`), so a typo or bad value
    in a study (``{hwo: linf}``, ``{k: 0}``, ``use_boxs``, a method without curvature in the
    curvature study) stops the workflow before any job starts, naming the study key and run."""
    from hyplib.train import check_run, split_overrides
    from hyplib.training.config import ConfigError, resolve_config

    run_config = config.get("train", {}).get("run_config")
    for run in plan_runs(config):
        dotted, method_overrides = split_overrides(run["overrides"])
        settings = {"method": run["method"], "method_overrides": method_overrides, "seed": run["seed"], **dotted}
        try:
            if run_config:
                check_run(resolve_config(run_config, settings))
            else:
                methods.get(run["method"], **method_overrides)
        except (ConfigError, ValueError, TypeError) as err:
            raise ValueError(f"config key {_study_key(run)} (run {run['name']}): {err}") from None


def run_uses_boxes(run: dict) -> bool:
    """Whether a planned run's method (with its overrides) trains on boxes."""
    method_overrides = {k: v for k, v in run["overrides"].items() if "." not in str(k)}
    return bool(methods.get(run["method"], **method_overrides).uses_boxes)


def train_priority(run: dict) -> int:
    """Snakemake priority of a planned run's training job: 2 for a run that trains on boxes (it
    encodes a crop and a phrase per sample, so it is the longest), 1 for the others; evaluation,
    figures and tables keep priority 0.

    With the cores full, training jobs then start before any evaluation and the longest first, so
    the short jobs fill the end of the run instead of one long training running alone there (in
    the 2026-11-28 default run, ATMG's last seed trained alone for 95 s at the end)."""
    return 2 if run_uses_boxes(run) else 1


def run_shards(config: dict, run: dict, data_dir: str = "results/data") -> str:
    """The shard folder a run trains on: ``<data_dir>/grit`` for a run that uses boxes when the
    config's real data has ``grit_shards``; else ``<data_dir>/train`` (generated shards carry boxes)."""
    data = config.get("data", {})
    if data.get("source") == "real" and data.get("paths", {}).get("grit_shards") and run_uses_boxes(run):
        return f"{data_dir}/grit"
    return f"{data_dir}/train"


def write_json(path: str | Path, payload) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=1, sort_keys=True))
