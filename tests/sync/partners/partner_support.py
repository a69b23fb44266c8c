"""Builders shared by the partner tests: CSV files and fixed times."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEADER = ("external_id", "name", "domain", "population", "owner_name", "owner_email")


def csv_text(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER,
              encoding: str = "utf-8") -> Path:
    path.write_bytes(csv_text(rows, header).encode(encoding))
    return path
