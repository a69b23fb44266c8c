"""Web view benchmark on the 1M-account warehouse of bench/matching.py (10 partners x 100k).

    python bench/web.py                   # full size, SQLite then PostgreSQL
    python bench/web.py --scale 0.05      # a twentieth of it
    python bench/web.py --engines sqlite
    python bench/web.py --no-cache        # build the SQLite warehouse afresh

The warehouse is built by bench/matching.py's builder and matched; open pipeline (one open
opportunity per four accounts, a tenth in EUR) and a few thousand closed, stamped deals are
added. Then a fresh process (so its memory is the web view's alone) serves every page and
API endpoint in process and prints, per URL, p50/p95 server time (the app's Server-Timing,
not the test client's transport), the time of the very SQL statements that answer executed
bare on the same connection pool, their ratio (target: p95 <= 2x its SQL) and the time left
beyond the SQL, next to the floor of an empty FastAPI request behind the same middleware
measured in the same process; then its own peak RSS (target < 300 MB). The SQLite warehouse
is kept in ~/.cache/ecosync-bench between runs (keyed by size and BUILD_VERSION).
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
from queue import Empty
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
BUDGET = 60.0  # seconds per URL: a slow page gets 3 runs, not 7
# Bump when build() changes what it writes: the cached SQLite warehouses are keyed by it.
BUILD_VERSION = 2
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
        try:
            before = migrations.current_revision(engine)
            migrations.upgrade(engine)
            if migrations.current_revision(engine) != before:
                with engine.begin() as conn:
                    conn.execute(text("ANALYZE"))
            print(f"build: reused {path}")
            return f"sqlite:///{path}"
        except Exception as exc:  # any failed upgrade: build afresh
            print(f"build: the cached {path.name} does not upgrade ({type(exc).__name__}); "
                  "building afresh")
            path.unlink()
        finally:
            engine.dispose()
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


def _server_ms(response: Any) -> float:
    """The app's own time for a request (the Server-Timing header its middleware sets):
    the test client's transport is not the server's cost."""
    timing = response.headers["server-timing"]
    return float(timing.partition("dur=")[2]) / 1000


def floor_app() -> Any:
    """An empty FastAPI request: a sync route (one thread hop, as every page has) returning a
    few bytes, behind the same timing middleware, nothing of ours in it."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    from sync.web.app import Guard
    from sync.web.auth import Gate

    app = FastAPI()

    @app.get("/empty")
    def empty() -> Response:
        return Response("ok", media_type="text/plain")

    app.add_middleware(Guard, gate=Gate())
    return app


def _floor(runs: int = 200) -> tuple[float, float]:
    from fastapi.testclient import TestClient

    with TestClient(floor_app()) as client:
        for _ in range(20):
            client.get("/empty")
        taken = [_server_ms(client.get("/empty")) for _ in range(runs)]
    return statistics.median(taken), _p95(taken)


def measure(url: str, out: Any) -> None:
    """In a fresh process: serve every URL up to RUNS times (at least 3, within BUDGET
    seconds per URL), time it on the server and its SQL statements executed bare."""
    from fastapi.testclient import TestClient

    from sync.web.app import create_app
    from sync.web.server import settle

    engine = make_engine(url)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                many: bool) -> None:
        statements.append((statement, params))

    floor_before = _floor()
    app = create_app(engine, Config(attribution=AttributionConfig(
        static_rates={"EUR": 1.08})), clock=lambda: TODAY)
    settle()  # as `ecosync web` and `ecosync run` do once the app is built
    results = []
    with TestClient(app) as client:
        for path in _urls(client):
            client.get(path)  # warm: templates compiled, plans cached, as in a running server
            served: list[float] = []
            bare: list[float] = []
            began = time.perf_counter()
            while len(served) < RUNS and (len(served) < 3 or time.perf_counter() - began
                                          < BUDGET):
                statements.clear()
                r = client.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
                served.append(_server_ms(r))
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
                            statistics.median(bare), len(taken), len(served)))
    floor_after = _floor()
    out.put((results, (floor_before, floor_after),
             resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    engine.dispose()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(name: str, url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=measure, args=(url, queue))
    child.start()
    while True:
        try:
            results, floors, rss = queue.get(timeout=5)
            break
        except Empty:
            if not child.is_alive():
                raise SystemExit(f"{name}: the measuring process died "
                                 f"(exit code {child.exitcode}); see above") from None
    child.join()
    floor = max(f[1] for f in floors)
    print(f"floor: an empty FastAPI request behind the same middleware, server time p50 "
          f"{floors[0][0] * 1000:.2f} / p95 {floors[0][1] * 1000:.2f} ms before the pages, "
          f"p50 {floors[1][0] * 1000:.2f} / p95 {floors[1][1] * 1000:.2f} ms after")
    print(f"{'page / endpoint':<50} {'n':>2} {'p50 ms':>8} {'p95 ms':>8} {'SQL ms':>8} "
          f"{'stmts':>5} {'p95/SQL':>7} {'p95-SQL':>8} {'vs floor':>8}")
    within = 0
    worst: tuple[float, str, float, float] = (0.0, "", 0.0, 0.0)  # ratio, path, p95, SQL
    worst_excess: tuple[float, str] = (0.0, "")
    for path, p50, p95, sql, n, runs in results:
        ratio = p95 / sql if sql else float("inf")
        excess = p95 - sql
        within += ratio <= 2
        worst = max(worst, (ratio, path, p95, sql))
        worst_excess = max(worst_excess, (excess - floor, path))
        print(f"{path:<50} {runs:2d} {p50 * 1000:8.1f} {p95 * 1000:8.1f} {sql * 1000:8.1f} "
              f"{n:5d} {ratio:7.2f} {excess * 1000:8.1f} {(excess - floor) * 1000:8.1f}")
    ratio, path, p95, sql = worst
    print(f"{name}: p95 within 2x its SQL executed bare: {within} of {len(results)} pages and "
          f"endpoints; worst {path} {ratio:.2f}x (p95 {p95 * 1000:.1f} ms, SQL "
          f"{sql * 1000:.1f} ms, {(p95 - sql - floor) * 1000:.1f} ms beyond its SQL and the "
          f"empty-request floor)  (target <= 2): {'met' if ratio <= 2 else 'NOT met'}")
    print(f"{name}: worst p95 - its SQL beyond the empty-request floor "
          f"({floor * 1000:.2f} ms): {worst_excess[0] * 1000:.1f} ms on {worst_excess[1]}")
    print(f"{name}: peak RSS of the web process: {rss:.0f} MB  (target < 300 MB): "
          f"{'met' if rss < 300 else 'NOT met'}")


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
