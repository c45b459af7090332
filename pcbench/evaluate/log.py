"""The stages of a long evaluation, shown as they start and kept in a log file.

Each stage (a metric group: W1, FPD and KPD, a classifier, ...) prints one line with the time
since the start, e.g. ``[  12.4 s] truth vs truth: classifiers``, and the same line goes to the
log file, so that a run left alone can be followed (``tail -f``) and read afterwards.  The
spinner below the lines says what is running now; a stage that loops (classifier folds and
epochs, chunks of showers) shows a bar with the steps done and the time left.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

__all__ = ["StageLog", "loop", "prefixed"]


def loop(progress, name: str, total: int):
    """``advance()`` for a loop of ``total`` steps inside a stage (folds, epochs, chunks): a bar
    where ``progress`` is a :class:`StageLog`, nothing for a plain callback or None."""
    start = getattr(progress, "loop", None)
    return start(name, total) if start is not None else (lambda: None)


class prefixed:  # noqa: N801 - used like a function
    """A progress callback whose stages (and loops) carry ``prefix``, e.g. "truth vs truth: W1"."""

    def __init__(self, progress, prefix: str):
        self.progress, self.prefix = progress, prefix

    def __call__(self, message: str) -> None:
        if self.progress is not None:
            self.progress(f"{self.prefix}: {message}")

    def loop(self, name: str, total: int):
        return loop(self.progress, f"{self.prefix}: {name}", total)


class StageLog:
    """Context manager: ``stage(message)`` marks the start of a stage (terminal and log file)."""

    def __init__(self, path: str | os.PathLike[str], console, title: str):
        self.path, self.console, self.title = Path(path), console, title
        self.started = time.perf_counter()
        self._fh = None
        self._status = None
        self._bar = None

    def __call__(self, message: str) -> None:
        self.stage(message)

    def loop(self, name: str, total: int):
        """A bar for a loop of ``total`` steps (folds, epochs, chunks) under the current stage;
        returns ``advance()``; the log file gets the loop's length and duration."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self._bar is not None:
            self._bar.stop()
        self._status.stop()
        bar = Progress(TextColumn(f"  {name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                       console=self.console, transient=True)
        bar.start()
        task = bar.add_task(name, total=total)
        self._bar, t0, done = bar, time.perf_counter(), [0]

        def advance() -> None:
            done[0] += 1
            bar.advance(task)
            if done[0] >= total:
                bar.stop()
                self._bar = None
                self._status.start()
                self._fh.write(f"           {name}: {total} done in {time.perf_counter() - t0:.1f} s\n")
                self._fh.flush()

        return advance

    def __enter__(self) -> StageLog:
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        self._fh.write(f"# {self.title}\n# started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self._fh.flush()
        self._status = self.console.status("evaluating")
        self._status.__enter__()
        return self

    def stage(self, message: str) -> None:
        if self._bar is not None:  # a loop that ended early (e.g. a classifier that separated perfectly)
            self._bar.stop()
            self._bar = None
            self._status.start()
        line = f"[{time.perf_counter() - self.started:7.1f} s] {message}"
        self.console.print(line, highlight=False, markup=False)
        self._status.update(f"evaluating: {message}")
        self._fh.write(line + "\n")
        self._fh.flush()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._status.__exit__(kind, exc, tb)
        end = "done" if kind is None else f"stopped: {exc}"
        self._fh.write(f"[{time.perf_counter() - self.started:7.1f} s] {end}\n")
        self._fh.close()
