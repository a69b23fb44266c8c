"""Builders shared by the partner tests: CSV files and a warehouse with a registered partner."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from schema.db import make_engine, transaction
from schema.models import Base
from sync.partners import add_partner

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


def partner_warehouse(tmp_path: Path, partner_id: str = "p-acme") -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'partners.db'}")
    Base.metadata.create_all(engine)
    with transaction(engine) as session:
        add_partner(session, partner_id, "Acme Cloud", now=NOW)
    return engine
