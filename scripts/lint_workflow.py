"""`snakemake --lint` with the project's accepted lints: fails on any other.

Usage: ``python scripts/lint_workflow.py [snakemake args...]`` (``make lint`` runs it). Prints
every lint; exits 1 when one is not in :data:`ACCEPTED`, naming it. Each accepted lint says
why the workflow keeps the pattern snakemake's linter warns about.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (lint title as snakemake prints it, file it may occur in or None for any) -> reason.
ACCEPTED: dict[tuple[str, str | None], str] = {
    ("Specify a conda environment or container for each rule.", None):
        "every rule runs in the one environment `make venv` builds from requirements.lock "
        "(environment.yml for conda users); a per-rule environment would repeat it eight times",
    ("Path composition with '+'", "workflow/rules/released.smk"):
        "a false positive: the '+' builds the papermill shell command (PAPERMILL + ' {input.notebook} "
        "...'), as in every other rule file, not a path",
    ("Mixed rules and functions in same snakefile.", "workflow/rules/figures.smk"):
        "figure_runs/figure_inputs serve only the figure rule; they stay beside it",
}

HEADER = re.compile(r"^Lints for (?:snakefile (?P<file>\S+)|rule (?P<rule>\S+) \(line \d+, (?P<rfile>\S+)\)):$")
ITEM = re.compile(r"^    \* (?P<title>.+?)(?: in line \d+)?:$")


def parse(text: str) -> list[tuple[str, str, str]]:
    """``snakemake --lint`` text -> ``[(file relative to the repo, what (rule or file), title)]``."""
    found, where, what = [], None, None
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            path = Path(m["file"] or m["rfile"])
            where = str(path.relative_to(ROOT)) if path.is_absolute() and ROOT in path.parents else str(path)
            what = f"rule {m['rule']}" if m["rule"] else "snakefile"
            continue
        m = ITEM.match(line)
        if m and where is not None:
            found.append((where, what, m["title"]))
    return found


def unaccepted(found: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The lints of ``found`` that :data:`ACCEPTED` does not cover."""
    return [(f, w, t) for f, w, t in found if (t, f) not in ACCEPTED and (t, None) not in ACCEPTED]


def main(argv: list[str]) -> int:
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--lint", "--cores", "1", *argv]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    found = parse(text)
    if proc.returncode != 0 and not found:  # snakemake failed before linting (a parse error, ...)
        sys.stderr.write(text)
        return proc.returncode
    bad = unaccepted(found)
    for f, w, t in found:
        print(f"{'ACCEPTED' if (f, w, t) not in bad else 'LINT    '} {f} ({w}): {t}")
    if bad:
        print(f"snakemake --lint: {len(bad)} lint(s) not accepted in scripts/lint_workflow.py; fix them or "
              f"add them to ACCEPTED with the reason", file=sys.stderr)
        return 1
    print(f"snakemake --lint: {len(found)} lint(s), all accepted")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
