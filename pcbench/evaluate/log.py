"""The stages of a long evaluation, shown as they start and kept in a log file.

Each stage (a metric group: W1, FPD and KPD, a classifier, ...) prints one line with the time
since the start, e.g. ``[  12.4 s] truth vs truth: classifiers``, and the same line goes to the
log file, so that a run left alone can be followed (``tail -f``) and read afterwards.  The
spinner below the lines says what is running now.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

__all__ = ["StageLog"]


class StageLog:
    """Context manager: ``stage(message)`` marks the start of a stage (terminal and log file)."""

    def __init__(self, path: str | os.PathLike[str], console, title: str):
        self.path, self.console, self.title = Path(path), console, title
        self.started = time.perf_counter()
        self._fh = None
        self._status = None

    def __enter__(self) -> StageLog:
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        self._fh.write(f"# {self.title}\n# started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self._fh.flush()
        self._status = self.console.status("evaluating")
        self._status.__enter__()
        return self

    def stage(self, message: str) -> None:
        line = f"[{time.perf_counter() - self.started:7.1f} s] {message}"
        self.console.print(line, highlight=False, markup=False)
        self._status.update(f"evaluating: {message}")
        self._fh.write(line + "\n")
        self._fh.flush()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._status.__exit__(kind, exc, tb)
        end = "done" if kind is None else f"stopped: {exc}"
        self._fh.write(f"[{time.perf_counter() - self.started:7.1f} s] {end}\n")
        self._fh.close()
