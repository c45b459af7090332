"""Progress bars for long work (rich), one look for every command.

``object_bar`` counts objects (jets, showers) with their rate; ``budget_bar`` runs on wall-clock
time when a time budget will stop the work first, else on the planned amount of work.  Both are
off (a no-op callback) when ``show`` is false, so the library stays silent unless asked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["object_bar"]


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
