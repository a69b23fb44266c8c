"""Salesforce connector: API calls against the floor, throughput and peak memory.

Pulls N accounts + 2N opportunities (a backfill, over Bulk API 2.0 and again over REST pages)
into a throwaway SQLite warehouse, then writes M opportunities for M in {1, 199, 200, 201, 1000,
1001, 5000, 50000}. The sandbox runs in a child process, so the peak RSS printed is the
connector's (plus the warehouse's), not the emulator's.

    python bench/salesforce.py [--accounts 33334] [--quick] [--no-land]

Read floors: REST, ceil(N/2000) pages; Bulk, the job's own calls (create, the polls it takes,
ceil(N/50000) results pages). Target (issue 16.9): floor + 2 on both paths (the describe and
the COUNT() that picks the path; its Composite call also brings the first page, which is
landed, not thrown away). Writes ≤ ceil(M/1000) + 1 calls up to the bulk threshold and ≤ 10
above; a 100,000-record backfill under 300 MB peak RSS.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WRITE_SIZES = (1, 199, 200, 201, 1000, 1001, 5000, 50_000)
RSS_TARGET_MB = 300


# ----------------------------------------------------------------------------- sandbox process
def serve(conn: Connection, accounts: int) -> None:
    """Child process: a sandbox org with N accounts and 2N opportunities, driven over a pipe."""
    from sandbox.salesforce import SalesforceSandbox

    with SalesforceSandbox(daily_limit=10_000_000) as sb:
        sb.bulk.polls_until_complete = 1
        ids = sb.load("Account", ({"Name": f"Account {i:06d}", "Type": "Prospect",
                                   "Website": f"https://www.acct{i}.example.com"}
                                  for i in range(accounts)))
        sb.load("Opportunity", ({"Name": f"Deal {i}", "AccountId": ids[i // 2],
                                 "StageName": "Prospecting", "Amount": 1000 + i,
                                 "CloseDate": "2024-06-30", "LeadSource": "Web"}
                                for i in range(2 * accounts)))
        conn.send(sb.connection_info())
        while True:
            command = conn.recv()
            if command == "calls":
                conn.send(dict(sb.traffic.calls))
            elif command == "reset":
                sb.traffic.reset()
                conn.send(None)
            elif command == "opportunity_ids":
                conn.send([r["Id"] for r in sb.records("Opportunity")])
            else:
                conn.send(None)
                return


class Org:
    def __init__(self, accounts: int) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child, accounts), daemon=True)
        self.proc.start()
        self.info: dict[str, str] = self.conn.recv()

    def ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def close(self) -> None:
        self.ask("stop")
        self.proc.join(timeout=10)


# ----------------------------------------------------------------------------- measurements
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def connector(org: Org, **overrides: Any) -> Any:
    from connectors.salesforce import SalesforceConnector
    from sync.config import SalesforceConfig

    info = org.info
    config = SalesforceConfig(enabled=True, auth="session", instance_url=info["instance_url"],
                              session_id=info["access_token"], ca_bundle=info["ca_file"],
                              api_version=info["api_version"], **overrides)
    return SalesforceConnector(config)


@dataclass
class ReadRow:
    path: str
    stream: str
    records: int
    calls: int
    minimum: int
    target: int
    seconds: float


def pull(org: Org, path: str, land_into: Any | None, **overrides: Any) -> list[ReadRow]:
    from sqlalchemy.orm import Session

    from schema.records import Stream
    from sync.ingest import land_page

    out = []
    for stream in (Stream.ACCOUNTS, Stream.OPPORTUNITIES):
        sf = connector(org, **overrides)
        org.ask("reset")
        started = time.perf_counter()
        records = 0
        until = datetime.now(UTC)
        for page in sf.pull(stream, None, until):
            records += len(page.records)
            if land_into is not None:
                with Session(land_into) as session, session.begin():
                    land_page(session, sf.name, page, now=until)
        seconds = time.perf_counter() - started
        by_endpoint: dict[str, int] = org.ask("calls")
        calls = sum(by_endpoint.values())
        if path == "rest":
            floor = math.ceil(records / 2000)
        else:  # the job's own calls: create, each poll, each results page
            floor = sum(by_endpoint.get(f"bulk2.query.{k}", 0)
                        for k in ("create", "get", "results"))
        out.append(ReadRow(path, stream.value, records, calls, floor, floor + 2, seconds))
    return out


@dataclass
class WriteRow:
    m: int
    path: str
    calls: int
    minimum: int
    target: int
    seconds: float
    failed: int


def write(org: Org, sizes: list[int], bulk_threshold: int) -> list[WriteRow]:
    from connectors.base import FieldUpdate
    from schema.records import Stream

    ids: list[str] = org.ask("opportunity_ids")
    out = []
    for run, m in enumerate(sizes):
        sf = connector(org, bulk_write_threshold=bulk_threshold)
        stamp = datetime(2024, 7, 1, tzinfo=UTC)
        updates = [FieldUpdate(Stream.OPPORTUNITIES, i, {
            "partner_influenced": True, "sourcing_partner": f"Partner {run}",
            "influencing_partners": f"Partner {run}; Other (prospect)",
            "attribution_stamped_at": stamp}) for i in ids[:m]]
        org.ask("reset")
        started = time.perf_counter()
        results = sf.write(Stream.OPPORTUNITIES, updates)
        seconds = time.perf_counter() - started
        calls = sum(org.ask("calls").values())
        bulk = m > bulk_threshold
        out.append(WriteRow(m, "bulk" if bulk else "composite", calls,
                            3 if bulk else math.ceil(m / 1000),
                            10 if bulk else math.ceil(m / 1000) + 1, seconds,
                            sum(not r.ok for r in results)))
    return out


# ----------------------------------------------------------------------------- report
def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=None,
                        help="N: accounts (opportunities are 2N); default 33,334 (100k records)")
    parser.add_argument("--quick", action="store_true",
                        help="N = 4,000, bulk thresholds lowered so both paths still run")
    parser.add_argument("--no-land", action="store_true", help="pull without a warehouse")
    args = parser.parse_args()
    n = args.accounts or (4_000 if args.quick else 33_334)
    read_threshold = 3_000 if args.quick else 10_000
    write_threshold = 2_000 if args.quick else 10_000
    sizes = [m for m in WRITE_SIZES if m <= 2 * n]

    print(f"Salesforce connector bench: N = {n:,} accounts + {2 * n:,} opportunities"
          f" ({3 * n:,} records); Bulk above {read_threshold:,} read / {write_threshold:,}"
          " written")
    baseline = peak_rss_mb()
    org = Org(n)
    try:
        land = None
        if not args.no_land:
            import migrations
            from schema.db import make_engine

            tmp = Path(tempfile.mkdtemp(prefix="sf-bench-"))
            land = make_engine(f"sqlite:///{tmp / 'warehouse.db'}")
            migrations.upgrade(land)
        reads = pull(org, "bulk", land, bulk_threshold=read_threshold)
        backfill_rss = peak_rss_mb()
        reads += pull(org, "rest", None, bulk_threshold=10 ** 9)
        writes = write(org, sizes, write_threshold)
    finally:
        org.close()

    landed = "the Bulk pass landed in SQLite, the REST pass pulled only" if land is not None \
        else "pulled only"
    print(f"\nReads (backfill; {landed}):")
    print(f"  {'path':5} {'stream':14} {'records':>8} {'calls':>6} {'floor':>5} {'target':>7}"
          f" {'rec/s':>9}")
    for r in reads:
        print(f"  {r.path:5} {r.stream:14} {r.records:>8,} {r.calls:>6} {r.minimum:>5}"
              f" {r.target:>7} {r.records / r.seconds:>9,.0f}  {verdict(r.calls <= r.target)}")
    print("  (REST accounts select 2 long text areas, which caps plain pages at 200 rows; each"
          " 2000-row page is one Composite call that reads the 2nd alongside)")
    print("\nWrites (opportunities, 4 owned fields each):")
    print(f"  {'M':>7} {'path':9} {'calls':>6} {'min':>5} {'target':>7} {'rec/s':>9} {'failed':>6}")
    for w in writes:
        print(f"  {w.m:>7,} {w.path:9} {w.calls:>6} {w.minimum:>5} {w.target:>7}"
              f" {w.m / w.seconds:>9,.0f} {w.failed:>6}  {verdict(w.calls <= w.target)}")
    final_rss = peak_rss_mb()
    print(f"\nPeak RSS: {backfill_rss:,.0f} MB after the {3 * n:,}-record backfill"
          f" ({verdict(backfill_rss < RSS_TARGET_MB)} against {RSS_TARGET_MB} MB),"
          f" {final_rss:,.0f} MB at the end; {baseline:,.0f} MB at start")


if __name__ == "__main__":
    main()
