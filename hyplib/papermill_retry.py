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

__all__ = ["ATTEMPTS", "cells_ran", "main"]

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


def main(argv=None) -> int:
    from papermill.cli import papermill as cli
    from papermill.exceptions import PapermillExecutionError

    argv = list(sys.argv[1:] if argv is None else argv)
    output = cli.make_context("papermill", list(argv)).params["output_path"]
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
