"""Progress of long work: what it reports, and the plain way of showing it.

Long work (a tick's stages, a partner import, an export, private matching) reports to a
`Progress` and knows nothing of terminals: `start` a stage (or one item of it, e.g. the pull
of one stream) with its total when known, `advance` it, and say when it is `done`. The CLI
picks how that is shown (sync.progress_bars.shown): rich bars on a terminal, one plain line per
stage when the output is a file or a pipe (`Lines`), nothing with --no-progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    @property
    def totals(self) -> bool:
        """Whether anyone shows a total: only then is it worth a query or an API call."""
        ...

    def start(self, stage: str, item: str = "", total: int | None = None,
              unit: str = "records") -> None: ...

    def advance(self, stage: str, item: str = "", amount: int = 1) -> None: ...

    def done(self, stage: str, item: str = "") -> None: ...


class Silent:
    """Shows nothing (the daemon, tests, --no-progress)."""

    totals = False

    def start(self, stage: str, item: str = "", total: int | None = None,
              unit: str = "records") -> None:
        pass

    def advance(self, stage: str, item: str = "", amount: int = 1) -> None:
        pass

    def done(self, stage: str, item: str = "") -> None:
        pass


SILENT = Silent()


def label(stage: str, item: str = "") -> str:
    return f"{stage} {item}" if item else stage


@dataclass
class _Task:
    started: float
    unit: str
    count: int = 0


class Lines:
    """One plain line per stage when it ends, for files and pipes: what, how many, how long.

    A stage reported item by item (the pull of each stream) gets a line per item instead."""

    totals = False

    def __init__(self, write: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write, self._clock = write, clock
        self._tasks: dict[tuple[str, str], _Task] = {}
        self._itemised: set[str] = set()

    def start(self, stage: str, item: str = "", total: int | None = None,
              unit: str = "records") -> None:
        if item:
            self._itemised.add(stage)
        self._tasks[(stage, item)] = _Task(self._clock(), unit)

    def advance(self, stage: str, item: str = "", amount: int = 1) -> None:
        task = self._tasks.get((stage, item))
        if task is not None:
            task.count += amount

    def done(self, stage: str, item: str = "") -> None:
        task = self._tasks.pop((stage, item), None)
        if task is None or (not item and stage in self._itemised):
            return
        seconds = max(self._clock() - task.started, 0.0)
        if task.count:
            rate = f", {task.count / seconds:,.0f}/s" if seconds >= 0.05 else ""
            self._write(f"{label(stage, item)}: {task.count:,} {task.unit} in "
                        f"{seconds:.1f} s{rate}")
        else:
            self._write(f"{label(stage, item)}: done in {seconds:.1f} s")


def counting(items: Iterable[T], progress: Progress, stage: str, item: str = "", *,
             every: int = 1000) -> Iterator[T]:
    """`items` as they are, advancing `stage` (`item`) by every `every` of them that went by:
    a bar need not move for each row of a million."""
    pending = 0
    for value in items:
        yield value
        pending += 1
        if pending == every:
            progress.advance(stage, item, pending)
            pending = 0
    if pending:
        progress.advance(stage, item, pending)
