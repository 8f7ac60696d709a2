"""papermill's command line, retrying a notebook whose kernel fails before any cell ran.

    python -m hyplib.papermill_retry <papermill arguments>

Under load, a kernel can die at start-up (its ports, picked free by jupyter_client, taken by
another job's kernel before it binds them: "Kernel died before replying to kernel_info").
That is a race, not an error of the notebook, so the workflow's notebook rules run papermill
through this module: when papermill fails and the output notebook shows no executed code cell
(papermill clears ``execution_count`` and saves before starting the kernel), the notebook is
run again, up to :data:`ATTEMPTS` times in all. A failure after a cell ran (a cell's error, a
kernel dying mid-run) is never retried: it is the notebook's result.
"""
from __future__ import annotations

import sys
import time

__all__ = ["ATTEMPTS", "cells_ran", "main", "skip_unused_format_parser"]

ATTEMPTS = 3
BACKOFF_S = 2.0  # seconds times the attempt number: let the competing kernels finish starting


def cells_ran(path) -> bool:
    """Whether the notebook at ``path`` has a code cell with an execution count."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:  # noqa: BLE001 - absent or half-written: nothing ran
        return False
    return any(c.cell_type == "code" and c.get("execution_count") is not None for c in nb.cells)


def skip_unused_format_parser() -> None:
    """Make jsonschema's optional ``rfc3987_syntax`` import fail fast, as if it were absent.

    jsonschema imports it (when installed) to check the ``iri`` string format, and it builds a
    Lark grammar on import: 2.3 s of every notebook job, on 2 cores. nbformat's schemas use no
    such format, so nothing papermill validates changes.
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # None in sys.modules: ImportError on import


def main(argv=None) -> int:
    skip_unused_format_parser()
    import click
    from papermill.cli import papermill as cli
    from papermill.exceptions import PapermillExecutionError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        output = cli.make_context("papermill", list(argv)).params["output_path"]
    except click.exceptions.Exit as done:  # --help, --version: printed, nothing to run
        return done.exit_code
    except click.ClickException as bad:  # a usage error: papermill's own message
        bad.show()
        return bad.exit_code
    for attempt in range(1, ATTEMPTS + 1):
        try:
            cli.main(args=list(argv), prog_name="papermill", standalone_mode=False)
            return 0
        except PapermillExecutionError:
            raise
        except (Exception, SystemExit) as err:  # noqa: BLE001 - papermill exits 138 on a dead kernel
            if isinstance(err, SystemExit) and err.code in (0, None):
                return 0
            if attempt == ATTEMPTS or cells_ran(output):
                raise
            print(f"papermill: the kernel failed before any cell ran ({type(err).__name__}: {err}); "
                  f"retrying ({attempt + 1}/{ATTEMPTS})", file=sys.stderr, flush=True)
            time.sleep(BACKOFF_S * attempt)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
