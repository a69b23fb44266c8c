"""Bench: the HubSpot connector against the emulator — API calls against the floor.

For each read path it prints the data calls made next to the floor the API allows, and the
metadata calls (pipelines, read once per process) apart:
- backfill (list endpoint, associations inline): ceil(N/100) list pages; + the archived
  listing (one call when the archive is empty), + a v4 batch read only for a page holding a
  deal whose inline list HubSpot cut off (none here);
- incremental (search): ceil(N/200) search pages + ceil(N/1000) v4 association batch reads
  (search results carry no associations: HubSpot's maintainers point to the v4 batch read);
- writes: ceil(M/100) batch updates.
Target: floor + 2 on every path. Also records per second, the 429s seen, and the traced peak
memory of a backfill (bounded: it must not grow with N). The emulator runs HubSpot's published
limits (default: Professional, 190 calls / 10 s, 5 searches / s) and the connector its default
pacing (50% of the burst, 4 searches / s), so "429s = 0" is the pacing target.

    python bench/hubspot.py [--companies 5000] [--deals 10000] [--changed 2500]
                            [--writes 1000] [--latency 0.02] [--burst-max 190]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# This file is named hubspot.py: its own directory first on sys.path would shadow the
# hubspot-api-client package. Put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from connectors.base import FieldUpdate, Page, Watermark  # noqa: E402
from connectors.hubspot import HubSpotConnector  # noqa: E402
from sandbox.hubspot import HubSpotSandbox  # noqa: E402
from schema.records import Stream  # noqa: E402
from sync.config import HubSpotConfig  # noqa: E402

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SLACK = 2  # the target: within the floor + 2 data calls per path
METADATA = ("GET /crm/v3/pipelines/deals",)  # read once per process, not per page


@dataclass
class Row:
    stage: str
    records: int
    calls: Counter[str]
    floor: int
    seconds: float
    rate_limited: int

    @property
    def data_calls(self) -> int:
        return sum(n for k, n in self.calls.items() if k not in METADATA)

    def print(self) -> None:
        made = self.data_calls
        meta = sum(self.calls.values()) - made
        extra = made - self.floor
        verdict = "ok" if extra <= SLACK and self.rate_limited == 0 else "MISS"
        rate = self.records / self.seconds if self.seconds else float("inf")
        print(f"{self.stage:<22} {self.records:>7} {made:>6} {self.floor:>6} {extra:>+6} "
              f"{meta:>5} {self.seconds:>8.2f} {rate:>9.0f} {self.rate_limited:>5}  {verdict}")
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items()))
        print(f"{'':<22}   {detail}")


def _companies(n: int) -> Iterable[dict[str, Any]]:
    for i in range(n):
        yield {"name": f"Company {i}", "domain": f"company{i}.example.com",
               "lifecyclestage": ("customer", "lead", "opportunity")[i % 3],
               "hs_lastmodifieddate": T0 - timedelta(days=30)}


def _deals(n: int) -> Iterable[dict[str, Any]]:
    for i in range(n):
        yield {"dealname": f"Deal {i}", "amount": f"{1000 + i}", "deal_currency_code": "USD",
               "dealstage": ("qualifiedtobuy", "closedwon", "closedlost")[i % 3],
               "hs_lastmodifieddate": T0 - timedelta(days=30)}


def _run(sandbox: HubSpotSandbox, connector: HubSpotConnector, stage: str, floor: int,
         work: Callable[[], int]) -> Row:
    before = Counter(connector.usage().by_endpoint)
    limited_before = sum(connector.client.budget.rate_limited.values())
    started = time.perf_counter()
    records = work()
    seconds = time.perf_counter() - started
    calls = Counter(connector.usage().by_endpoint)
    calls.subtract(before)
    calls = +calls
    limited = sum(connector.client.budget.rate_limited.values()) - limited_before
    return Row(stage, records, calls, floor, seconds, limited)


def _drain(pages: Iterable[Page]) -> int:
    return sum(len(p.records) for p in pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=5000)
    parser.add_argument("--deals", type=int, default=10000)
    parser.add_argument("--changed", type=int, default=2500, help="deals changed after backfill")
    parser.add_argument("--writes", type=int, default=1000, help="company updates written")
    parser.add_argument("--latency", type=float, default=0.02, help="emulator latency, seconds")
    parser.add_argument("--burst-max", type=int, default=190)
    parser.add_argument("--search-per-s", type=int, default=5)
    args = parser.parse_args()

    with HubSpotSandbox(latency_s=args.latency, burst_max=args.burst_max,
                        burst_interval_s=10.0, search_per_s=args.search_per_s) as sandbox:
        sandbox.clock.freeze(T0)
        cids = sandbox.load("companies", _companies(args.companies))
        dids = sandbox.load("deals", _deals(args.deals))
        for i, deal_id in enumerate(dids):
            sandbox.associate(deal_id, cids[i % len(cids)])
        config = HubSpotConfig(enabled=True, base_url=sandbox.url,
                               access_token=sandbox.access_token, ca_bundle=str(sandbox.ca_file))
        connector = HubSpotConnector(config, now=sandbox.clock.now)
        connector.ensure_fields(check_only=False)
        until = sandbox.clock.now()
        n, m = args.companies, args.deals
        rows = [
            _run(sandbox, connector, "backfill companies", math.ceil(n / 100),
                 lambda: _drain(connector.pull(Stream.ACCOUNTS, None, until))),
            _run(sandbox, connector, "backfill deals", math.ceil(m / 100),
                 lambda: _drain(connector.pull(Stream.OPPORTUNITIES, None, until))),
        ]

        # Changes after the backfill, 50 per millisecond (imports and workflows make ties).
        changed = dids[: args.changed]
        for i, deal_id in enumerate(changed):
            if i % 50 == 0:
                sandbox.clock.advance(0.001)
            sandbox.update("deals", deal_id, {"dealname": f"Deal {i} (renamed)"})
        sandbox.clock.advance(1)
        tick = sandbox.clock.now()
        floor = math.ceil(len(changed) / 200) + math.ceil(len(changed) / 1000)
        rows.append(_run(sandbox, connector, "incremental deals", floor,
                         lambda: _drain(connector.pull(Stream.OPPORTUNITIES, Watermark(until),
                                                       tick, deleted=False))))

        updates = [FieldUpdate(Stream.ACCOUNTS, cid, {"overlap_count": i % 7,
                                                      "overlap_partners": f"P{i % 5} (customer)"})
                   for i, cid in enumerate(cids[: args.writes])]
        rows.append(_run(sandbox, connector, "write companies",
                         math.ceil(len(updates) / 100),
                         lambda: sum(r.ok for r in connector.write(Stream.ACCOUNTS, updates))))

        print(f"emulator latency {args.latency * 1000:.0f} ms, burst {args.burst_max}/10 s, "
              f"search {args.search_per_s}/s; connector pacing "
              f"{config.max_burst_share:.0%} of burst, {config.search_requests_per_second:g} "
              "searches/s")
        print(f"{'path':<22} {'records':>7} {'calls':>6} {'floor':>6} {'extra':>6} "
              f"{'meta':>5} {'seconds':>8} {'rec/s':>9} {'429s':>5}")
        for row in rows:
            row.print()
        full = rows[0].data_calls + rows[1].data_calls
        print(f"full pull ({n} companies + {m} deals): {full} data calls against a floor of "
              f"{rows[0].floor + rows[1].floor} (+{full - rows[0].floor - rows[1].floor}; the "
              "two archived listings)")

        # Peak memory of a backfill at two sizes: bounded means the same for both.
        for label, stop in (("first 10 pages", 10), ("all pages", None)):
            tracemalloc.start()
            backfill = connector.pull(Stream.ACCOUNTS, None, until, deleted=False)
            for pulled, _ in enumerate(backfill, start=1):
                if stop is not None and pulled >= stop:
                    break
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"peak traced memory, companies backfill, {label:<15} "
                  f"{peak / 2**20:6.1f} MiB (includes the in-process emulator's page)")
        usage = connector.usage()
        print(f"daily budget as reported: {usage.daily_used} of {usage.daily_limit}")


if __name__ == "__main__":
    main()
