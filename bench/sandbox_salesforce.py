"""How fast the Salesforce sandbox serves a 2000-record query page through simple-salesforce.

    python bench/sandbox_salesforce.py [--records 200000] [--runs 15]

Prints the load time of the org, then the median time of: a first page of the incremental query
(`SystemModstamp > x ORDER BY SystemModstamp, Id`: index lookup, WHERE, 2000 rows serialized), a
follow-up page (`query_more` on the cursor), and a first page of a query without a SystemModstamp
bound (every row evaluated), each as a ratio to the 100 ms target. Benchmarks of ecosync use
these pages, so they must stay well under the target to measure ecosync rather than the sandbox.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from sandbox.salesforce import SalesforceSandbox
from sandbox.salesforce.client import salesforce_client

TARGET_S = 0.100
# No SystemModstamp bound: every row is evaluated (the worst case, e.g. a COUNT() audit).
SCAN_QUERY = "SELECT Id, Name, Website, SystemModstamp FROM Account WHERE Type = 'Prospect'"
QUERY = (
    "SELECT Id, Name, Website, OwnerId, Type, SystemModstamp, IsDeleted FROM Account "
    "WHERE SystemModstamp > {since} ORDER BY SystemModstamp ASC, Id ASC"
)


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    with SalesforceSandbox() as sandbox:
        base = datetime(2024, 1, 1, tzinfo=UTC)
        rows = (
            {
                "Name": f"Account {i}",
                "Website": f"https://www.acct{i}.example.com",
                "Type": "Prospect",
                # ~100 records share each second, as bursts of writes do in real orgs
                "SystemModstamp": base + timedelta(seconds=i // 100),
            }
            for i in range(args.records)
        )
        started = time.perf_counter()
        sandbox.load("Account", rows)
        load_s = time.perf_counter() - started

        client = salesforce_client(sandbox)
        # The recent tail of the org: what an incremental tick reads (10 % of the rows).
        since = (base + timedelta(seconds=args.records // 100 * 9 // 10)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        soql = QUERY.format(since=since)
        first: list[float] = []
        more: list[float] = []
        scan: list[float] = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            client.query(SCAN_QUERY)
            scan.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            page = client.query(soql)
            first.append(time.perf_counter() - t0)
            assert len(page["records"]) == 2000, len(page["records"])
            t0 = time.perf_counter()
            nxt = client.query_more(page["nextRecordsUrl"], identifier_is_url=True)
            more.append(time.perf_counter() - t0)
            assert len(nxt["records"]) == 2000
        total = page["totalSize"]

    print(f"records loaded: {args.records:,} in {load_s:.2f} s")
    print(f"incremental query matches {total:,} rows; 2000-record pages, median of {args.runs}:")
    for label, samples in (
        ("first page (query)", first),
        ("next page (query_more)", more),
        (f"full scan of {args.records:,}", scan),
    ):
        med = _median(samples)
        print(f"  {label:<24} {med * 1000:7.1f} ms   ratio to 100 ms target: {med / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
