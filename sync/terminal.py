"""Text that CRM users and partners control, made safe for where it goes: the one owner of
that rule (issue 15.7-8). Every table, CSV and JSON renderer, and every CRM field ecosync
writes from names it did not choose, goes through these functions.

- On a terminal, a value is plain text: Rich markup (`[bold]`, `[link=…]`) is never parsed
  (cells are `rich.text.Text`, not markup strings), and control characters (C0, DEL, C1,
  bidirectional overrides) are shown as visible escapes (`\\x1b`, `\\u202e`), so no ESC, CSI
  or OSC 8 sequence reaches the terminal raw and no value can forge or hide output.
- In CSV, a cell a spreadsheet would run as a formula gets a leading quote; on a terminal the
  control characters are escaped as above.
- In JSON, C1 and bidirectional controls are written as `\\u` escapes (the same data).
- In a CRM field, names carry no control characters and no leading `= + - @` (formula
  injection into CRM reports and exports).

Tables are built with `table()`: columns fold (wrap) rather than cut, so ids and API names are
never truncated at 80 columns; timestamps are shown to the second.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any, Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

# C0 controls but tab/newline, DEL, C1 controls, and the bidirectional/format controls that
# reorder or hide what follows (RTL override: the "Trojan source" trick).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                      "\u2060-\u2069\ufeff]")
# In a table cell even tab and newline are escaped: a value must not draw its own rows.
_CELL_CONTROL = re.compile(_CONTROL.pattern[:1] + "\x09\x0a" + _CONTROL.pattern[1:])
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CRM_LEADING = "=+-@ \t\r\n"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(text: str, *, cell: bool = False) -> str:
    """`text` with every control character as a visible escape (tab and newline kept unless
    `cell`, where they would break the row apart)."""
    return (_CELL_CONTROL if cell else _CONTROL).sub(_escape, text)


def display(value: object) -> str:
    """How a value reads in a table: timestamps to the second (UTC), amounts exact."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell(value: object) -> Text:
    """A table cell: the value as plain text, never markup, never a control sequence."""
    return Text(plain(display(value), cell=True))


ColumnKind = Literal["text", "number", "id"]
ID_MAX = 40  # an id or API name longer than this folds (UUIDs are 36, Salesforce's API names 40)


@dataclass(frozen=True)
class Col:
    """A table column. `id` columns (ids, API names, e-mails) are kept whole when they fit."""

    title: str
    kind: ColumnKind = "text"


class SafeTable(Table):
    """A rich Table that keeps whole what must not be cut: numbers, timestamps and ids get a
    minimum width of their widest cell, number columns no wider than that (their headers
    wrap instead), and text columns fold (wrap). When even that does not fit the terminal,
    each row is shown as a block of `title  value` lines instead (like psql's expanded
    display), so nothing is ever cut off at the right edge."""

    def __init__(self, kinds: list[ColumnKind], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kinds = kinds
        self.whole = [0] * len(kinds)  # widest cell that must stay on one line, per column
        self.words = [0] * len(kinds)  # longest word of any cell, per column
        self.cells: list[list[Text]] = []

    def note(self, index: int, value: object, shown: str) -> None:
        if (self.kinds[index] != "text" or isinstance(value, int | float | Decimal | date)):
            self.whole[index] = max(self.whole[index], min(cell_len(shown), ID_MAX))
        longest = max((cell_len(w) for w in shown.split()), default=0)
        self.words[index] = max(self.words[index], longest)

    def needed_width(self) -> int:
        """The narrowest this table can be drawn without cutting or breaking what must stay
        whole: kept cells whole, text folded to at most TEXT_MIN, 3 per column for borders."""
        total = 1
        for column, whole, words in zip(self.columns, self.whole, self.words, strict=True):
            header = max((cell_len(w) for w in str(column.header).split()), default=0)
            total += 3 + max(whole, min(max(words, header), TEXT_MIN))
        return total

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for column, kind, whole in zip(self.columns, self.kinds, self.whole, strict=True):
            word = max((cell_len(w) for w in str(column.header).split()), default=0)
            # Numbers and ids get a fixed width (their widest cell; the header wraps), which
            # rich never squeezes; a text column holding timestamps keeps them on one line.
            if kind != "text":
                column.width = max(whole, word)
            elif whole:
                column.min_width = max(whole, word)
        if self.show_header and len(self.columns) > 2 and (
                self.needed_width() > options.max_width or self._overflows(console, options)):
            yield from self._blocks()
            return
        yield from super().__rich_console__(console, options)

    def _overflows(self, console: Console, options: ConsoleOptions) -> bool:
        """Would rich draw this wider than the terminal? Its squeezing of wrappable columns
        can end below a column's minimum width, which it then restores: the row comes out
        too wide and the terminal cuts its right edge (a timestamp column beside a long text
        column at 80 columns). Asked of rich's own layout, so it cannot disagree with it."""
        extra = self._extra_width
        widths = self._calculate_column_widths(console, options.update_width(
            options.max_width - extra))
        return sum(widths) + extra > options.max_width

    def _blocks(self) -> RenderResult:
        if self.title:
            yield self.title
        titles = [Text(str(c.header), style="bold") for c in self.columns]
        for row in self.cells:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(no_wrap=True)
            grid.add_column(overflow="fold")
            for title, value in zip(titles[1:], row[1:], strict=True):
                if value.plain:
                    grid.add_row(title, value)
            yield Text.assemble("• ", (row[0].plain or "—", "bold"))
            yield Padding(grid, (0, 0, 0, 2))


TEXT_MIN = 10


def table(*columns: Col | str, title: str | None = None, show_header: bool = True) -> SafeTable:
    """A table whose columns wrap (fold long words) rather than cut with an ellipsis."""
    cols = [c if isinstance(c, Col) else Col(c) for c in columns]
    out = SafeTable([c.kind for c in cols],
                    title=Text(plain(title, cell=True)) if title else None,
                    show_header=show_header, title_justify="left")
    for c in cols:
        out.add_column(c.title, justify="right" if c.kind == "number" else "left",
                       overflow="fold")
    return out


def add_row(t: Table, values: Iterable[object]) -> None:
    """A row of values, each a plain-text cell; a `Text` is our own styled word, kept."""
    cells = []
    for index, v in enumerate(values):
        if isinstance(v, Text):
            cells.append(v)
            continue
        shown = plain(display(v), cell=True)
        if isinstance(t, SafeTable):
            t.note(index, v, shown)
        cells.append(Text(shown))
    if isinstance(t, SafeTable):
        t.cells.append(cells)
    t.add_row(*cells)


def width() -> int:
    """The terminal's width; when output is not a terminal, $COLUMNS if set, else 200, so
    piped tables stay whole."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 20 else 200


def console(file: IO[str] | None = None, *, width_: int | None = None,
            force_terminal: bool | None = None) -> Console:
    """A console for output that may hold CRM values: its width as above; highlighting and
    emoji codes are off (values are Text cells or `plain()` strings, never markup)."""
    return Console(file=file, width=width_ or width(), highlight=False, emoji=False,
                   force_terminal=force_terminal)


def line(*parts: RenderableType | str) -> Text:
    """A printable line from our own words (str, may hold markup) and values (Text)."""
    out = Text()
    for part in parts:
        out.append(Text.from_markup(part) if isinstance(part, str) else part)  # type: ignore[arg-type]
    return out


def value(v: object) -> Text:
    """A value inside a line of our own words: plain text, controls escaped."""
    return Text(plain(display(v), cell=True))


def csv_cell(v: object, *, terminal: bool = False) -> str:
    """A CSV cell: a formula-looking text gets a leading quote; on a terminal, controls are
    escaped too. Numbers are data, even negative ones."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float | Decimal):
        return str(v)
    text = v.isoformat() if isinstance(v, datetime | date) else str(v)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return plain(text) if terminal else text


def json_text(text: str) -> str:
    """Rendered JSON with C1 and bidirectional controls as `\\u` escapes (same data)."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def crm_text(v: str | None) -> str | None:
    """A name or contact written into a CRM field: control characters removed, and no leading
    `= + - @` that a CRM report or export would evaluate as a formula."""
    if v is None:
        return None
    cleaned = _CELL_CONTROL.sub("", v).lstrip(_CRM_LEADING)
    return cleaned or None


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
