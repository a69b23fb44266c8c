"""Exchange files: export and import throughput at 1M accounts, and peak memory (issue 19).

Builds our warehouse with N accounts (a third customers with a won deal, a third with an open
deal, a third prospects), then runs, each in a fresh child process so that its peak RSS is
its own:
- floor (memory): the child loads ecosync and opens the warehouse, and does nothing;
- floor (export): the child streams the same rows out of the warehouse with the export's
  query, writing nothing;
- export: `ecosync share export` (customers full, open opportunities names, prospects counts);
- floor (import): the child parses and validates the exported rows (no writes);
- import: `ecosync partners import` of the exchange file into the partner's warehouse.
Prints rows/s with the ratio to each floor, and peak RSS against the 300 MB target.

    python bench/exchange.py [--accounts 1000000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RSS_TARGET_MB = 300
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = {"customer": "full", "open_opportunity": "names", "prospect": "counts"}

CHILD = r"""
import resource, sys, time
from datetime import datetime, UTC
from pathlib import Path
sys.path.insert(0, {root!r})
from schema.db import make_engine, transaction
from sync.config import parse_config
mode, url, arg = {mode!r}, {url!r}, {arg!r}
config = parse_config({{"warehouse": {{"url": url}}, "exchange": {{"organisation": "Bench Corp"}},
                       "partners": [{{"id": "p-bench", "name": "Bench Partner",
                                      "outbound": {policy!r}}}]}}, "<bench>", {{}})
engine = make_engine(url)
start = time.perf_counter()
n = 0
if mode == "query":
    from sqlalchemy.orm import Session
    from sync.exchange.export import export_query
    from sync.sharing import Level
    with Session(engine) as session:
        result = session.execute(export_query({{p: Level(v) for p, v in {policy!r}.items()}})
                                 .execution_options(yield_per=5000))
        n = sum(1 for _ in result)
elif mode == "export":
    from sync.exchange.export import export_for_partner
    with transaction(engine) as session:
        out = export_for_partner(session, config, "p-bench", Path(arg), by="bench",
                                 now=datetime.now(UTC).replace(microsecond=0))
    n = out.rows
    print(out.manifest_path, file=sys.stderr)
elif mode == "validate":
    from sync.partners.csv_read import ParsedRow, iter_partner_csv
    n = sum(1 for r in iter_partner_csv(Path(arg)) if isinstance(r, ParsedRow))
elif mode == "import":
    from sync.exchange.importer import import_partner_file
    with transaction(engine) as session:
        done = import_partner_file(session, "p-bench", Path(arg), now=datetime.now(UTC))
    n = done.result.rows
print(n, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def child(url: str, mode: str, arg: str = "") -> tuple[int, float, float, str]:
    """(rows, seconds, peak RSS MB, stderr) of one fresh child process."""
    code = CHILD.format(root=str(ROOT), url=url, mode=mode, arg=arg, policy=POLICY)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    rows, seconds, rss_kb = out.stdout.split()
    return int(rows), float(seconds), int(rss_kb) / 1024, out.stderr.strip()


def own_schema(url: str, name: str) -> str:
    from sqlalchemy import text

    from schema.db import make_engine

    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    admin.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}"


def drop_schema(url: str, name: str) -> None:
    from sqlalchemy import text

    from schema.db import make_engine

    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


def _accounts(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"source": "salesforce", "external_id": f"001{i:015d}",
               "name": f"Bench Account {i} Ltd", "website": f"https://www.bench{i}.com",
               "domain_key": f"bench{i}.com", "name_key": f"bench account {i}",
               "duns": f"{100_000_000 + i}" if i % 4 == 0 else None, "owner_id": None,
               "account_type": None, "is_deleted": False,
               "modified_at": NOW, "ingested_at": NOW}


def _opportunities(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        if i % 3 == 2:
            continue  # a prospect: no deal
        won = i % 3 == 0
        yield {"source": "salesforce", "external_id": f"006{i:015d}",
               "account_external_id": f"001{i:015d}", "name": f"Deal {i}",
               "stage": "Closed Won" if won else "Negotiation",
               "status": "won" if won else "open", "amount": Decimal("1000"),
               "currency": "USD", "close_date": date(2026, 2, 1) if won else date(2026, 6, 1),
               "created_at": NOW - timedelta(days=i % 400), "is_deleted": False,
               "modified_at": NOW, "ingested_at": NOW}


def prepare(ours: str, theirs: str, accounts: int) -> None:
    from schema.db import make_engine, transaction
    from schema.models import Account, Base, Opportunity
    from schema.upsert import bulk_upsert
    from sync.partners.registry import add_partner

    for url in (ours, theirs):
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        with transaction(engine) as session:
            add_partner(session, "p-bench", "Bench Partner", now=NOW)
        engine.dispose()
    engine = make_engine(ours)
    with engine.begin() as conn:
        bulk_upsert(conn, Account, _accounts(accounts), ["source", "external_id"])
        bulk_upsert(conn, Opportunity, _opportunities(accounts), ["source", "external_id"])
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def run(label: str, ours: str, theirs: str, accounts: int, folder: Path) -> bool:
    start = time.perf_counter()
    prepare(ours, theirs, accounts)
    print(f"\n{label}: {accounts:,} accounts (built in {time.perf_counter() - start:,.0f} s)")
    _, _, floor_rss, _ = child(ours, "none")
    rows, query_s, _, _ = child(ours, "query")
    n_out, export_s, export_rss, manifest = child(ours, "export", str(folder))
    assert n_out == rows, (n_out, rows)
    rows_file = manifest.replace(".manifest.json", ".csv")
    _, valid_s, _, _ = child(theirs, "validate", rows_file)
    n_in, import_s, import_rss, _ = child(theirs, "import", manifest)
    assert n_in == n_out, (n_in, n_out)
    print(f"  exported rows (customers full, open opportunities names; prospects as a "
          f"count): {n_out:,}")
    print(f"  floor: the export's query alone:  {rows / query_s:>9,.0f} rows/s")
    print(f"  export (ecosync format):          {n_out / export_s:>9,.0f} rows/s "
          f"({export_s / query_s:.2f}x the query floor), peak RSS {export_rss:,.0f} MB")
    print(f"  floor: parse + validate the rows: {n_in / valid_s:>9,.0f} rows/s")
    print(f"  import (partner's side):          {n_in / import_s:>9,.0f} rows/s "
          f"({import_s / valid_s:.2f}x the validation floor), peak RSS {import_rss:,.0f} MB")
    peak = max(export_rss, import_rss)
    ok = peak < RSS_TARGET_MB
    print(f"  peak RSS {peak:,.0f} MB: {'met' if ok else 'NOT met'} (target < "
          f"{RSS_TARGET_MB} MB); floor (ecosync loaded, nothing done) {floor_rss:,.0f} MB")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("ECOSYNC_TEST_DATABASE_URL"),
                        help="also measure on this PostgreSQL URL (in schemas of its own, "
                             "dropped afterwards)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-exchange-") as scratch:
        folder = Path(scratch)
        results.append(run("SQLite", f"sqlite:///{folder / 'ours.db'}",
                           f"sqlite:///{folder / 'theirs.db'}", args.accounts,
                           folder / "sqlite-out"))
        if args.postgres:
            names = (f"bench_exchange_ours_{os.getpid()}", f"bench_exchange_theirs_{os.getpid()}")
            try:
                results.append(run("PostgreSQL", own_schema(args.postgres, names[0]),
                                   own_schema(args.postgres, names[1]), args.accounts,
                                   folder / "pg-out"))
            finally:
                for name in names:
                    drop_schema(args.postgres, name)
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
