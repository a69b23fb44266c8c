"""Report output as a rich table, CSV or JSON, from one list of typed rows.

CSV cells that a spreadsheet would evaluate as a formula (starting with = + - @, tab or
carriage return) are prefixed with a quote: partner-supplied names end up in these files.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    numeric: bool = False


def csv_safe(value: object) -> str:
    """A CSV cell: text that looks like a formula is neutralised with a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)  # numbers are data, even negative ones
    text = value.isoformat() if isinstance(value, datetime | date) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: amounts must not turn into binary floats
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], fmt: str, *,
           title: str = "", width: int | None = None) -> str:
    """`rows` (dicts keyed by column key) as text in one of FORMATS."""
    out = io.StringIO()
    if fmt == "json":
        json.dump([{c.key: row.get(c.key) for c in columns} for row in rows], out,
                  indent=2, default=_json_default, ensure_ascii=False)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        for row in rows:
            writer.writerow([csv_safe(row.get(c.key)) for c in columns])
    elif fmt == "table":
        table = Table(title=title or None)
        for c in columns:
            table.add_column(c.title, justify="right" if c.numeric else "left")
        for row in rows:
            table.add_row(*("" if row.get(c.key) is None else str(row.get(c.key))
                            for c in columns))
        # Piped output is not squeezed into 80 columns: ids and names stay whole.
        Console(file=out, width=width or _width()).print(table)
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return out.getvalue()


def _width() -> int:
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return 200
