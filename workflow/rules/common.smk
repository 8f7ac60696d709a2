import re
import shlex
import sys

# Shared helpers: the run plan and the papermill command line.
from hyplib import workflow as wf

wf.check_config(config)
RUNS = {run["name"]: run for run in wf.plan_runs(config)}
RESULTS = wf.results_dir(config)  # config key results_dir, default "results"
DATA = f"{RESULTS}/data"
BENCH = f"{DATA}/bench"
# papermill from the interpreter running Snakemake (the venv's), so `make reproduce` works
# without an activated environment; its python3 kernel is that interpreter too. Run through
# hyplib.papermill_retry: a kernel that dies at start-up (a port race under load) is retried.
PAPERMILL = (f"{shlex.quote(sys.executable)} -m hyplib.papermill_retry --no-progress-bar --log-output --cwd . "
             "-k python3")


def nb_params(notebook, params):
    """`params` for papermill -b, after checking the notebook declares every key."""
    wf.check_params_match(notebook, params)
    return wf.b64_params(params)


def res(kind):
    return config["resources"][kind]


def train_layout():
    """``(nodes, gpus_per_node)`` of one training run, from ``resources.train`` (``gpu`` is GPUs
    per node, ``nodes`` defaults to 1); see hyplib.workflow.train_layout."""
    return wf.train_layout(config)


def train_resources():
    """The train rule's resources: one GPU (or none) as before, or for a multi-GPU run the
    plugin's ``nodes``, ``tasks`` (one per GPU), ``tasks_per_gpu``, ``gpu`` (all GPUs) and
    ``mpi`` (the rule starts its own ``srun``), plus ``gpus_per_node`` for the launch line."""
    nodes, per_node = train_layout()
    out = {"mem_mb": res("train")["mem_mb"], "runtime": res("train")["runtime"], "gpu": nodes * per_node}
    if nodes * per_node > 1:
        out.update(nodes=nodes, tasks=nodes * per_node, tasks_per_gpu=1, gpus_per_node=per_node, mpi="srun")
    return out
