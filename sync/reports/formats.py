"""Report output as a rich table, CSV or JSON, from one list of typed rows.

Every value passes through sync.terminal: table cells are plain text (no Rich markup, control
characters escaped), CSV cells that a spreadsheet would evaluate as a formula get a leading
quote (partner-supplied names end up in these files) and, on a terminal, escaped controls;
JSON escapes C1 and bidirectional controls.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sync import terminal

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    numeric: bool = False
    ident: bool = False  # ids, API names: folded, never cut


def csv_safe(value: object, *, terminal_out: bool = False) -> str:
    """A CSV cell (sync.terminal.csv_cell)."""
    return terminal.csv_cell(value, terminal=terminal_out)


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: amounts must not turn into binary floats
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_dump(data: object) -> str:
    return terminal.json_text(json.dumps(data, indent=2, default=_json_default,
                                         ensure_ascii=False)) + "\n"


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], fmt: str, *,
           title: str = "", width: int | None = None, to_terminal: bool | None = None) -> str:
    """`rows` (dicts keyed by column key) as text in one of FORMATS. `to_terminal` (default:
    whether stdout is one) escapes control characters in CSV."""
    out = io.StringIO()
    if fmt == "json":
        out.write(json_dump([{c.key: row.get(c.key) for c in columns} for row in rows]))
    elif fmt == "csv":
        tty = terminal.stdout_is_terminal() if to_terminal is None else to_terminal
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        for row in rows:
            writer.writerow([csv_safe(row.get(c.key), terminal_out=tty) for c in columns])
    elif fmt == "table":
        table = terminal.table(
            *(terminal.Col(c.title, "number" if c.numeric else "id" if c.ident else "text")
              for c in columns), title=title or None)
        for row in rows:
            terminal.add_row(table, (row.get(c.key) for c in columns))
        terminal.console(out, width_=width).print(table)
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return out.getvalue()
