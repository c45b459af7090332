"""Progress bars for long work (rich), one look for every command.

``object_bar`` counts objects (jets, showers) with their rate; ``budget_bar`` runs on wall-clock
time when a time budget will stop the work first, else on the planned amount of work.  Both are
off (a no-op callback) when ``show`` is false, so the library stays silent unless asked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["object_bar", "TrainingProgress"]


@contextlib.contextmanager
def object_bar(total: int, what: str, description: str, show: bool = True) -> Iterator[Callable[[int], None]]:
    """A bar over ``total`` objects; yields ``advance(k)`` to call as k more are done.  Shows
    objects per second and the time left, e.g. ``sampling epic-fm  ━━━━  2048/50000 jets  3100 jets/s``."""
    if not show:
        yield lambda _k: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    rate = TextColumn("{task.fields[rate]}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(what), rate,
                  TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task(description, total=total, rate="")

        def advance(k: int) -> None:
            bar.advance(task, k)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f} {what}/s" if speed else "")

        yield advance


class TrainingProgress:
    """The bar of a training run with one or more parts (e.g. ShowerFlow epochs, then point-model
    steps): it names the part that trains and what follows, and shows the budget that will stop
    the run.  With ``max_minutes`` the bar runs on the budget's clock (``wall`` time or the
    process's ``cpu`` time: that is what ends the run); without, on the current part's units,
    with its time left."""

    def __init__(self, name: str, parts: list[tuple[str, int, str]], max_minutes: float | None, show: bool,
                 done: tuple[int, ...] | None = None, budget_elapsed: Callable[[], float] | None = None,
                 clock: str = "wall"):
        """``budget_elapsed``: the seconds the budget has spent (the trainer's ``Budget.elapsed``,
        on its ``clock``); None: the wall time since the bar started."""
        import time

        self.name, self.parts, self.max_minutes, self.show = name, parts, max_minutes, show
        self.done = list(done or [0] * len(parts))
        self.budget_elapsed = budget_elapsed or (lambda: self.clock() - self.started)
        self.budget_text = "CPU time, --max-minutes --clock cpu" if clock == "cpu" else "--max-minutes"
        self.part, self.info, self.clock = 0, "", time.perf_counter
        self.started = self.part_started = self.clock()
        self.part_done0 = self.done[0] if self.done else 0
        self.bar = self.task = None
        if not show:
            return
        from rich.progress import BarColumn, Progress, TextColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"))
        self.bar.start()
        self.task = self.bar.add_task(f"training {name}", total=1.0, status="")
        self._draw()

    def update(self, part: int, done: int, info: str = "") -> None:
        """Part ``part`` (index into ``parts``) has ``done`` of its units done."""
        if part != self.part:
            self.part, self.part_started, self.part_done0 = part, self.clock(), self.done[part]
        self.done[part], self.info = done, info
        self._draw()

    def _eta(self) -> str:
        name, total, _unit = self.parts[self.part]
        did = self.done[self.part] - self.part_done0
        spent = self.clock() - self.part_started
        if did <= 0 or spent <= 0:
            return ""
        left = (total - self.done[self.part]) * spent / did
        return f"{name} ends in ~{_mmss(left)}"

    def _draw(self) -> None:
        if self.bar is None:
            return
        name, total, unit = self.parts[self.part]
        now = f"{name} {self.done[self.part]}/{total} {unit}"
        later = [f"{n} ({t} {u})" for (n, t, u), d in zip(self.parts[self.part + 1:], self.done[self.part + 1:]) if d < t]
        eta = self._eta()
        status = [now] + ([f"then {', '.join(later)}"] if later else []) + ([eta] if eta else [])
        if self.max_minutes is not None:
            elapsed, budget = self.budget_elapsed(), 60 * self.max_minutes
            fraction = min(elapsed / budget, 1.0)
            status.append(f"budget {_mmss(elapsed)} of {_mmss(budget)} ({self.budget_text})")
        else:
            fraction = self.done[self.part] / max(total, 1)
        if self.info:
            status.append(self.info)
        self.bar.update(self.task, completed=fraction, status=" | ".join(status))

    def close(self) -> None:
        if self.bar is not None:
            self._draw()
            self.bar.stop()


def _mmss(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"
