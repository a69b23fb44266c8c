"""How a command's progress is shown (`shown`): plain lines in a pipe, and on a terminal one
rich bar per stage (per item where a stage reports items, e.g. the pull of each stream) with
its count against the total when known, its rate, and the time left (elapsed once done, or
while the total is unknown).

While the bars are live, log lines print above them: the stream the log handlers write to
(the masking stream over stderr, sync.logs) is pointed at the bars' console for as long as
they are shown, so a warning never tears through the display.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import IO, Any, TextIO, cast

from rich.console import Console, RenderableType
from rich.progress import BarColumn, ProgressColumn, Task, TaskID, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Column
from rich.text import Text

from sync.logs import MaskingStream, quiet_under_bars
from sync.progress import SILENT, Lines, Progress, label


def bars_console(width: int | None = None) -> Console:
    """A console on the real stderr (masked): the bars' own output must not pass through the
    stream that Bars points at them."""
    stream: TextIO = sys.stderr
    if isinstance(stream, MaskingStream):
        stream = cast(TextIO, MaskingStream(stream.inner))
    return Console(file=stream, width=width)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _Count(ProgressColumn):
    """`1,200/5,000` while the total is known, `1,200` otherwise, `done` for a stage that
    counts nothing."""

    def render(self, task: Task) -> Text:
        count, known, done = task.fields["count"], task.fields["known"], task.fields["done"]
        if count is None:
            return Text("done" if done else "", style="progress.download")
        text = f"{count:,}/{known:,}" if known is not None and not done else f"{count:,}"
        return Text(text, style="progress.download")


class _Rate(ProgressColumn):
    """The average rate since the stage started (steadier than the last seconds' rate)."""

    def render(self, task: Task) -> Text:
        count, elapsed = task.fields["count"], task.elapsed
        if not count or not elapsed or elapsed < 0.5:
            return Text("")
        return Text(f"{count / elapsed:,.0f}/s", style="progress.data.speed")


class _Time(ProgressColumn):
    """Time left while a known total is being reached, at the average rate so far; elapsed
    otherwise (frozen once done)."""

    def render(self, task: Task) -> Text:
        count, known, elapsed = task.fields["count"], task.fields["known"], task.elapsed
        if known is None or task.fields["done"]:
            return Text(_clock(elapsed), style="progress.elapsed")
        left = (None if not count or not elapsed else
                max(known - count, 0) * elapsed / count)
        return Text(f"eta {_clock(left)}", style="progress.remaining")


class _AboveBars:
    """A text stream that prints each complete line above the live bars."""

    def __init__(self, console: Console, under: IO[str]) -> None:
        self.console, self.under, self._pending = console, under, ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self.console.print(Text.from_ansi(line), highlight=False)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.write("\n")

    def isatty(self) -> bool:
        return self.console.is_terminal

    def fileno(self) -> int:
        return self.under.fileno()


class Bars:
    """A `Progress` (sync.progress) shown as rich bars on `console`; use it as a context."""

    totals = True

    def __init__(self, console: Console, clock: Callable[[], float] | None = None) -> None:
        self.console = console
        self._bars = RichProgress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True)),
            # As wide as the line allows up to 40 cells: a 150-cell bar reads no better.
            BarColumn(bar_width=max(8, min(40, console.width - 56))),
            _Count(table_column=Column(justify="right", no_wrap=True)),
            _Rate(table_column=Column(justify="right", no_wrap=True)),
            _Time(table_column=Column(justify="right", no_wrap=True)),
            console=console, transient=False, refresh_per_second=4,
            redirect_stdout=True, redirect_stderr=True, get_time=clock)
        self._tasks: dict[tuple[str, str], TaskID] = {}
        self._diverted: tuple[MaskingStream, Any] | None = None

    def __enter__(self) -> Bars:
        # Before the bars start: live, they put their own proxy over sys.stderr.
        stream = sys.stderr
        if isinstance(stream, MaskingStream) and not isinstance(stream.inner, _AboveBars):
            stream.flush()
            self._diverted = (stream, stream.inner)
            stream.inner = cast(TextIO, _AboveBars(self.console, stream.inner))
        self._bars.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._diverted is not None:
                stream, inner = self._diverted
                stream.flush()
                stream.inner = inner
                self._diverted = None
        finally:
            self._bars.stop()

    def start(self, stage: str, item: str = "", total: int | None = None,
              unit: str = "records") -> None:
        if item and (stage, "") in self._tasks:
            # The stage shows as its items: its own row would only repeat them.
            self._bars.update(self._tasks[(stage, "")], visible=False)
        self._tasks[(stage, item)] = self._bars.add_task(
            label(stage, item), total=total, known=total, count=None, done=False)

    def advance(self, stage: str, item: str = "", amount: int = 1) -> None:
        task_id = self._tasks.get((stage, item))
        if task_id is not None:
            count = self._task(task_id).fields["count"] or 0
            self._bars.update(task_id, advance=amount, count=count + amount)

    def done(self, stage: str, item: str = "") -> None:
        task_id = self._tasks.pop((stage, item), None)
        if task_id is None:
            return
        # A full bar: the total was an estimate (records came or went meanwhile) or unknown.
        self._bars.stop_task(task_id)
        end = max(self._task(task_id).fields["count"] or 0, 1)
        self._bars.update(task_id, total=end, completed=end, done=True)

    def __rich__(self) -> RenderableType:
        """The bars as they stand (what the live display shows)."""
        return self._bars.get_renderable()

    def _task(self, task_id: TaskID) -> Task:
        return next(t for t in self._bars.tasks if t.id == task_id)

    @property
    def tasks(self) -> list[Task]:
        return self._bars.tasks


def on_terminal() -> bool:
    """Bars only when both streams are a terminal: a redirected stdout is a log or a file."""
    return sys.stdout.isatty() and sys.stderr.isatty()


@contextmanager
def shown(enabled: bool = True) -> Iterator[Progress]:
    """How the CLI shows a long command's progress: bars on a terminal, else plain lines on
    stderr (stdout keeps the command's result), or nothing."""
    if not enabled:
        yield SILENT
    elif on_terminal():
        with quiet_under_bars(), Bars(bars_console()) as bars:
            yield bars
    else:
        yield Lines(lambda line: print(line, file=sys.stderr, flush=True))
