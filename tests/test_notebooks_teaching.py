"""The teaching notebooks (00_geometry_tour, 01_objectives_tour) and 02_propositions: committed
clean (no outputs, a plain `parameters` cell first) and executable by papermill."""
import ast
import json
from pathlib import Path

import nbformat
import pytest

from hyplib import paths

NOTEBOOKS = {
    "00_geometry_tour": {},
    "01_objectives_tour": {"grid_size": 5},
    "02_propositions": {"quick": True},
}


def _path(name: str) -> Path:
    return paths.repo_root() / "notebooks" / f"{name}.ipynb"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs_and_with_plain_parameters(name):
    nb = nbformat.read(_path(name), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    first = code[0]
    assert "parameters" in first.metadata.get("tags", [])
    for stmt in ast.parse(first.source).body:  # plain defaults only: name = literal
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
        ast.literal_eval(stmt.value)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path):
    papermill = pytest.importorskip("papermill")
    params = {**NOTEBOOKS[name], "figure_dir": str(tmp_path / "figures")}
    if name == "02_propositions":
        params["output_json"] = str(tmp_path / "propositions.json")
    declared = papermill.inspect_notebook(str(_path(name)))
    assert set(params) <= set(declared), f"unknown parameters {set(params) - set(declared)}"
    # Run from an unrelated directory: the notebooks must resolve paths from the repo root.
    papermill.execute_notebook(str(_path(name)), str(tmp_path / f"{name}.ipynb"), parameters=params,
                               cwd=str(tmp_path), progress_bar=False, kernel_name="python3")
    assert list((tmp_path / "figures").glob("*.pdf")), "no figure written"
    if name == "02_propositions":
        numbers = json.loads((tmp_path / "propositions.json").read_text())
        assert numbers["checks"]["atmg_prop1"]["headline"]["min_outside"] >= 1
        assert {p.stem for p in (tmp_path / "figures").glob("*.pdf")} == set(numbers["checks"])
