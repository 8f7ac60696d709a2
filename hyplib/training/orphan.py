"""Do not outlive the job: end this process when the process that started it dies.

Jupyter starts notebook kernels in a session of their own, so killing a workflow job (the
papermill process) leaves the kernel running, and a training kernel trains on with nobody to
collect its result. :func:`exit_with_parent` starts a daemon thread that polls the parent pid
and sends this process SIGTERM once the parent is gone (the process is re-parented, so
``os.getppid()`` changes). Checkpoints are written atomically, so nothing is left half-written;
the next run resumes from the newest checkpoint.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["exit_with_parent"]

_started: set[int] = set()  # pids that already run a watcher (once per process, fork-safe)


def exit_with_parent(interval: float = 1.0) -> bool:
    """Start the watcher (once per process); returns whether one runs now.

    Args:
        interval: seconds between checks of the parent pid.
    """
    pid, parent = os.getpid(), os.getppid()
    if pid in _started:
        return True
    if parent <= 1:  # already orphaned (or pid 1 itself): nothing to watch
        return False

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        print(f"parent process {parent} is gone; stopping process {pid} (the job was killed)",
              file=sys.stderr, flush=True)
        os.kill(pid, signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
    _started.add(pid)
    return True
