"""Every notebook run as a reader runs it in JupyterLab: from a clean clone of the repository,
working directory ``notebooks/``, default parameters only, in reading order (00 .. 06, then each
``fig_*``). What one writes is what the next reads, everything lands under ``results/lab`` and
nothing else under ``results/`` is written.

The released-checkpoint notebooks (07-10) are left out: they read the authors' checkpoint files,
which a fresh checkout does not have.

Wall and CPU seconds per notebook are printed and written to ``$HYPLIB_CHAIN_TIMES`` (default
``<tmp>/chain_times.json``); run with ``-s`` to see them.
"""
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Reading order of the notebooks a fresh checkout runs with its defaults.
CHAIN = ["00_geometry_tour", "01_objectives_tour", "02_propositions", "03_prepare_data", "04_train",
         "05_evaluate", "06_tables"]
#: A notebook's CPU time (kernel, all threads) stays under this: well under 5 minutes on 2 cores.
CPU_LIMIT_S = 300.0


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


@pytest.mark.slow
def test_notebooks_chain_from_a_clean_clone(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    assert not (clone / "results" / "lab").exists()
    before = {p.relative_to(clone) for p in (clone / "results").rglob("*")} if (clone / "results").exists() else set()
    # The kernels import the clone's hyplib, and its paths resolve inside the clone.
    monkeypatch.setenv("PYTHONPATH", str(clone))
    monkeypatch.delenv("HYPLIB_ROOT", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    names = CHAIN + sorted(p.stem for p in (clone / "notebooks").glob("fig_*.ipynb"))
    times = {}
    for name in names:
        wall, cpu = time.perf_counter(), _children_cpu()
        papermill.execute_notebook(str(clone / "notebooks" / f"{name}.ipynb"), str(tmp_path / f"{name}.out.ipynb"),
                                   cwd=str(clone / "notebooks"), kernel_name="python3", progress_bar=False)
        times[name] = {"wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(_children_cpu() - cpu, 1)}
        print(f"{name}: {times[name]}", file=sys.stderr)
    out = Path(os.environ.get("HYPLIB_CHAIN_TIMES") or tmp_path / "chain_times.json")
    out.write_text(json.dumps(times, indent=1))

    lab = clone / "results" / "lab"
    assert (lab / "data" / "manifest.json").is_file() and (lab / "train/meru-base-s0/final.pt").is_file()
    assert {"metrics.json", "embeddings.npz", "figure_inputs.npz"} <= {
        p.name for p in (lab / "eval/meru-base-s0").iterdir()}
    assert (lab / "tables" / "claims.md").stat().st_size > 0 and (lab / "propositions.json").is_file()
    for name in names[len(CHAIN):]:
        assert (lab / "figures" / f"{name[len('fig_'):]}.pdf").stat().st_size > 0, name
    written = {p.relative_to(clone) for p in (clone / "results").rglob("*")} - before
    outside = sorted(str(p) for p in written if p.parts[:2] != ("results", "lab"))
    assert not outside, f"notebooks run by hand wrote over the workflow's results: {outside[:5]}"
    slow = {k: v for k, v in times.items() if v["cpu_s"] > CPU_LIMIT_S}
    assert not slow, f"notebooks over {CPU_LIMIT_S} CPU seconds: {slow}"
