"""The layer rules of docs/ARCHITECTURE.md ("Layers"), checked by parsing every import in hyplib.

A unit (a top-level module or subpackage of hyplib) may import units of its own layer or of a
layer below; an import of a higher layer, or of a unit the table does not name, fails. Imports
inside functions count too: a deferred import is still a dependency.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "hyplib"

#: The table of docs/ARCHITECTURE.md, bottom first.
LAYERS = [
    ("geometry and utilities", {"lorentz", "product", "native", "tree", "paths", "papermill_retry"}),
    ("methods", {"methods"}),
    ("models and data", {"models", "attention_pool", "data", "released"}),
    ("training", {"training", "train"}),
    ("evaluation", {"evaluation", "released_eval"}),
    ("presentation", {"plotting", "figures", "propositions", "reporting"}),
    ("workflow", {"workflow"}),
]
LEVEL = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``; relative imports resolved."""
    mod = _module_name(path, root)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base == "hyplib" or (node.level and not node.module):  # from hyplib (or ..) import x
                out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, base))
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hyplib"


def _violations(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        src = _module_name(path, root)
        if src == "hyplib":
            continue  # the package's own __init__ may re-export anything
        here = _unit(src)
        if here not in LEVEL:
            bad.append(f"{path.relative_to(root.parent)}: unit {here!r} is in no layer of docs/ARCHITECTURE.md")
            continue
        for line, target in _imports(path, root):
            if not target.startswith("hyplib.") or _unit(target) == here:
                continue
            there = _unit(target)
            if there not in LEVEL:
                bad.append(f"{path.relative_to(root.parent)}:{line} imports {target}, a unit in no layer")
            elif LEVEL[there] > LEVEL[here]:
                bad.append(f"{path.relative_to(root.parent)}:{line} imports {target}: layer "
                           f"{LAYERS[LEVEL[there]][0]!r} is above {LAYERS[LEVEL[here]][0]!r}")
    return bad


def test_hyplib_respects_the_layers():
    assert _violations(ROOT) == []


def test_every_unit_of_hyplib_has_a_layer():
    units = {p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"}
    units |= {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert units - set(LEVEL) == set() and set(LEVEL) - units == set()


def test_layers_table_matches_the_docs():
    text = (ROOT.parent / "docs" / "ARCHITECTURE.md").read_text()
    for name, units in LAYERS:
        row = next((line for line in text.splitlines() if line.startswith(f"| {name} |")), None)
        assert row is not None, f"docs/ARCHITECTURE.md has no row for layer {name!r}"
        assert {u.strip(" `") for u in row.split("|")[2].split(",")} == units, row


@pytest.mark.parametrize("source, expected", [
    ("from hyplib.workflow import x\n", "imports hyplib.workflow"),  # methods -> workflow: upward
    ("def f():\n    from hyplib import figures\n", "imports hyplib.figures"),  # deferred, still counted
    ("from hyplib.nowhere import x\n", "a unit in no layer"),
])
def test_an_upward_import_is_reported(tmp_path, source, expected):
    pkg = tmp_path / "hyplib" / "methods"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text(source)
    (pkg / "ok.py").write_text("from hyplib import lorentz\nfrom . import bad\nfrom ..product import split\n")
    found = _violations(tmp_path / "hyplib")
    assert len(found) == 1 and expected in found[0] and "bad.py" in found[0]
