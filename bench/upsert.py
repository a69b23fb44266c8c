"""Bulk upsert throughput: 100,000 account rows (half new, half changed) per engine.

Prints rows per second and the ratio to a plain executemany INSERT of the same rows on the
same engine, measured in the same run (this machine is noisy; ratios travel, seconds don't).

    python bench/upsert.py [--rows 100000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, insert, text

from schema.db import make_engine
from schema.models import Account, Base
from schema.upsert import bulk_upsert

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = ["source", "external_id"]
TARGETS = {"sqlite": 100_000, "postgresql": 40_000}


def make_rows(start: int, n: int, name: str, at: datetime) -> list[dict[str, object]]:
    # As a landing has them: every record its own created and modified time (whole seconds,
    # as Salesforce keeps them), one ingest time for the batch.
    return [
        {"source": "salesforce", "external_id": f"001{i:015d}", "name": f"{name} {i}",
         "website": f"https://www.acme{i}.com", "domain_key": f"acme{i}.com",
         "name_key": f"{name.lower()} {i}", "owner_id": "005000000000001AAA",
         "account_type": "Customer", "created_at": T0 - timedelta(days=1, seconds=7 * i),
         "modified_at": at - timedelta(seconds=i), "ingested_at": at,
         "is_deleted": False}
        for i in range(start, start + n)
    ]


def fresh(engine: Engine) -> None:
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)


def measure(engine: Engine, rows: int) -> tuple[float, float]:
    half = rows // 2
    existing = make_rows(0, half, "Acme", T0)
    later = T0 + timedelta(hours=1)
    # Half of the batch changes existing rows, half is new.
    batch = make_rows(0, half, "Renamed", later) + make_rows(half, rows - half, "Acme", later)

    fresh(engine)
    with engine.begin() as conn:
        bulk_upsert(conn, Account, existing, KEYS)
    start = time.perf_counter()
    with engine.begin() as conn:
        bulk_upsert(conn, Account, batch, KEYS)
    upsert_s = time.perf_counter() - start

    fresh(engine)
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(Account.__table__), batch)
    plain_s = time.perf_counter() - start
    return upsert_s, plain_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", default=os.environ.get(
        "ECOSYNC_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()

    engines: list[tuple[str, Engine, str | None]] = []
    tmp = tempfile.mkdtemp()
    engines.append(("sqlite", make_engine(f"sqlite:///{tmp}/bench.db"), None))
    try:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.postgres else "?"
        pg = make_engine(f"{args.postgres}{sep}options=-csearch_path%3D{schema}")
        engines.append(("postgresql", pg, schema))
    except Exception as exc:  # the bench runs on SQLite alone without PostgreSQL
        print(f"postgresql: skipped ({exc.__class__.__name__}: {str(exc).splitlines()[0]})")
        admin = None

    print(f"{'engine':<11} {'rows':>8} {'upsert rows/s':>14} {'plain rows/s':>13} "
          f"{'upsert/plain':>13} {'target rows/s':>14} {'met':>4}")
    for name, engine, schema in engines:
        upsert_s, plain_s = measure(engine, args.rows)
        rate = args.rows / upsert_s
        print(f"{name:<11} {args.rows:>8} {rate:>14,.0f} {args.rows / plain_s:>13,.0f} "
              f"{plain_s / upsert_s:>13.2f} {TARGETS[name]:>14,} "
              f"{'yes' if rate >= TARGETS[name] else 'NO':>4}")
        engine.dispose()
        if schema and admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
