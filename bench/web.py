"""Web view benchmark on the 1M-account warehouse of bench/matching.py (10 partners x 100k).

    python bench/web.py                   # full size, SQLite then PostgreSQL
    python bench/web.py --scale 0.05      # a twentieth of it
    python bench/web.py --engines sqlite
    python bench/web.py --no-cache        # build the SQLite warehouse afresh

The warehouse is built by bench/matching.py's builder and matched; open pipeline (one open
opportunity per four accounts, a tenth in EUR) and a few thousand closed, stamped deals are
added. Then a fresh process (so its memory is the web view's alone) serves every page and
API endpoint in process and prints, per URL, p50/p95 server time, the time of the very SQL
statements that answer executed bare on the same connection pool, and their ratio (target:
p95 <= 2x its SQL), then its own peak RSS (target < 300 MB).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, insert, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matching as mb  # bench/matching.py: the 1M-account builder

import migrations
from schema.db import make_engine
from schema.models import Opportunity
from sync.attribution.stamp import stamp_closed
from sync.config import AttributionConfig, Config, MatchingConfig
from sync.matching.engine import rematch

TODAY = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
RUNS = 7
# Bump when build() changes what it writes: the cached SQLite warehouses are keyed by it.
BUILD_VERSION = 1
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecosync-bench"


def build(engine: Engine, accounts: int, per_partner: int) -> float:
    start = time.perf_counter()
    mb.build(engine, accounts, 10, per_partner)
    with Session(engine) as s, s.begin():
        rematch(s, MatchingConfig(), now=mb.NOW, full=True)
    rng = random.Random(5)
    rows: list[dict[str, Any]] = []
    closed = max(50, accounts // 200)
    for i in range(0, accounts, 4):
        status = "open"
        if i // 4 < closed:
            status = "won" if rng.random() < 0.4 else "lost"
        rows.append({
            "source": "salesforce", "external_id": f"006{i:012d}",
            "account_external_id": f"001{i:012d}", "name": f"Deal {i}", "stage": status,
            "status": status, "amount": Decimal(rng.randrange(1_000, 200_000)),
            "currency": "EUR" if i % 40 == 0 else "USD",
            "close_date": date(2026, 6, 1) - timedelta(days=rng.randrange(0, 300)),
            "created_at": datetime(2025, 6, 1, tzinfo=UTC), "modified_at": mb.NOW,
            "ingested_at": mb.NOW, "is_deleted": False})
        if len(rows) == mb.CHUNK:
            with engine.begin() as conn:
                conn.execute(insert(Opportunity), rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(Opportunity), rows)
    with Session(engine) as s, s.begin():
        stamp_closed(s, AttributionConfig(static_rates={"EUR": 1.08}),
                     now=datetime(2026, 6, 2, tzinfo=UTC))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - start


def sqlite_warehouse(folder: Path, accounts: int, per_partner: int) -> str:
    """The SQLite warehouse of this size, built once per builder version and reused: a 1M
    build takes minutes, the pages read it only. Migrations landed since it was built (an
    index) are applied to it, so it is always at head."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"web-{accounts}-{per_partner}-v{BUILD_VERSION}.db"
    if path.exists():
        engine = make_engine(f"sqlite:///{path}")
        before = migrations.current_revision(engine)
        migrations.upgrade(engine)
        if migrations.current_revision(engine) != before:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        engine.dispose()
        print(f"build: reused {path}")
        return f"sqlite:///{path}"
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{partial}")
    migrations.upgrade(engine)
    print(f"build (not timed): {build(engine, accounts, per_partner):.1f} s")
    engine.dispose()
    shutil.move(partial, path)  # only a finished build is ever reused
    return f"sqlite:///{path}"


def _urls(client: Any) -> list[str]:
    top = client.get("/api/v1/accounts").json()["tables"][0]["rows"][0]
    account = f"/accounts/{top['source']}/{top['external_id']}"
    cell = "/matrix/cell?ours=open_opportunity&theirs=customer"
    pages = ["/matrix", "/matrix?partner=p3", cell, "/accounts",
             "/accounts?partner=p3&population=customer", account, "/partners", "/partners/p3",
             "/network", "/operations"]
    return [*pages, *("/api/v1" + p for p in pages), "/api/v1/accounts?format=csv&table=accounts"]


def measure(url: str, out: Any) -> None:
    """In a fresh process: serve every URL RUNS times, time it and its SQL executed bare."""
    from fastapi.testclient import TestClient

    from sync.web.app import create_app

    engine = make_engine(url)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                many: bool) -> None:
        statements.append((statement, params))

    client = TestClient(create_app(engine, Config(attribution=AttributionConfig(
        static_rates={"EUR": 1.08})), clock=lambda: TODAY))
    results = []
    for path in _urls(client):
        client.get(path)  # warm: templates compiled, plans cached, as in a running server
        served, bare = [], []
        for _ in range(RUNS):
            statements.clear()
            start = time.perf_counter()
            r = client.get(path)
            served.append(time.perf_counter() - start)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            taken = list(statements)
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                start = time.perf_counter()
                for statement, params in taken:
                    cur.execute(statement, params)
                    cur.fetchall() if cur.description else None
                bare.append(time.perf_counter() - start)
                raw.rollback()
            finally:
                raw.close()
        results.append((path, statistics.median(served), _p95(served),
                        statistics.median(bare), len(taken)))
    out.put((results, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    engine.dispose()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(name: str, url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=measure, args=(url, queue))
    child.start()
    results, rss = queue.get()
    child.join()
    print(f"{'page / endpoint':<58} {'p50 ms':>8} {'p95 ms':>8} {'SQL ms':>8} {'stmts':>5} "
          f"{'p95/SQL':>8}")
    worst = 0.0
    for path, p50, p95, sql, n in results:
        ratio = p95 / sql if sql else float("inf")
        worst = max(worst, ratio)
        print(f"{path:<58} {p50 * 1000:8.1f} {p95 * 1000:8.1f} {sql * 1000:8.1f} {n:5d} "
              f"{ratio:8.2f}")
    print(f"{name}: worst p95 / its SQL bare: {worst:.2f}  (target <= 2)")
    print(f"{name}: peak RSS of the web process: {rss:.0f} MB  (target < 300 MB)")


def main(argv: list[str] | None = None) -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=mb.PG_URL)
    parser.add_argument("--no-cache", action="store_true",
                        help=f"do not keep the built SQLite warehouse (default: in {CACHE})")
    args = parser.parse_args(argv)
    accounts = max(400, int(1_000_000 * args.scale))
    per_partner = max(40, int(100_000 * args.scale))
    engines = {e.strip() for e in args.engines.split(",")}
    if "sqlite" in engines:
        print(f"\n== SQLite: {accounts:,} accounts, 10 partners x {per_partner:,} rows")
        if args.no_cache:
            with tempfile.TemporaryDirectory() as tmp:
                report("SQLite", sqlite_warehouse(Path(tmp), accounts, per_partner))
        else:
            report("SQLite", sqlite_warehouse(CACHE, accounts, per_partner))
    if "postgres" in engines:
        admin = make_engine(args.pg_url)
        try:
            with admin.begin() as conn:
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        except OperationalError as exc:
            print(f"\n== PostgreSQL: skipped, {args.pg_url} is not reachable ({exc.orig})")
            return
        url = f"{args.pg_url}?options=-csearch_path%3D{schema}"
        engine = make_engine(url)
        try:
            migrations.upgrade(engine)
            print(f"\n== PostgreSQL: {accounts:,} accounts, 10 partners x {per_partner:,} rows")
            print(f"build (not timed): {build(engine, accounts, per_partner):.1f} s")
            engine.dispose()
            report("PostgreSQL", url)
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
