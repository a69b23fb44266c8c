"""Bench: how fast the HubSpot emulator serves list and search pages of a 200,000-record portal.

Prints the load time, then per-page times through the real hubspot-api-client (what a
connector pays) and through bare urllib3 (what the emulator itself costs), with the ratio to
the 50 ms target. Run: ``python bench/sandbox_hubspot.py [--records N] [--pages N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import urllib3

from sandbox.hubspot import HubSpotSandbox
from sandbox.hubspot.client import hubspot_client

TARGET_S = 0.050


def _rows(n: int) -> Any:
    for i in range(n):
        yield {"name": f"Company {i}", "domain": f"company{i}.example.com",
               "website": f"https://www.company{i}.example.com",
               "lifecyclestage": ("customer", "lead", "opportunity")[i % 3]}


def _report(label: str, times: list[float]) -> None:
    median = statistics.median(times)
    print(f"{label:<44} first {times[0] * 1000:7.1f} ms  median {median * 1000:6.1f} ms  "
          f"max {max(times) * 1000:6.1f} ms  median/target {median / TARGET_S:5.2f}")


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()

    with HubSpotSandbox(rate_limits=False) as sb:
        started = time.perf_counter()
        step = args.records // 4
        sb.clock.freeze(datetime(2024, 1, 1, tzinfo=UTC))
        for start in range(0, args.records, step):  # four import batches, four timestamps
            sb.load("companies", _rows(min(step, args.records - start)))
            sb.clock.advance(3600)
        print(f"loaded {args.records:,} companies in {time.perf_counter() - started:.2f} s")

        api = hubspot_client(sb).crm.companies
        basic, search = api.basic_api, api.search_api
        cursor: dict[str, str] = {}

        def list_page() -> None:
            page = basic.get_page(limit=100, properties=["name", "domain", "website"],
                                  archived=False, **cursor)
            cursor["after"] = page.paging.next.after

        window = str(int(datetime(2024, 1, 1, 1, tzinfo=UTC).timestamp() * 1000))
        body: dict[str, Any] = {
            "limit": 200, "properties": ["name", "domain", "hs_lastmodifieddate"],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "filterGroups": [{"filters": [
                {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": window}]}],
        }
        offset = {"after": 0}

        def search_page() -> None:
            search.do_search(public_object_search_request={**body,
                                                           "after": str(offset["after"])})
            offset["after"] += 200

        basic.get_page(limit=1)  # open the TLS connection outside the timings
        _report("list 100 (hubspot-api-client)", _timed(list_page, args.pages))
        _report("search 200, window+sort (hubspot-api-client)", _timed(search_page, args.pages))

        http = urllib3.PoolManager(ca_certs=str(sb.ca_file))
        headers = {"Authorization": f"Bearer {sb.access_token}",
                   "Content-Type": "application/json"}
        http.request("GET", f"{sb.url}/crm/v3/objects/companies?limit=1", headers=headers)
        list_url = f"{sb.url}/crm/v3/objects/companies?limit=100&properties=name&after=MTAwMDAwCg=="
        _report("list 100 (raw HTTPS)",
                _timed(lambda: http.request("GET", list_url, headers=headers), args.pages))
        search_url = f"{sb.url}/crm/v3/objects/companies/search"
        variants = iter(range(10**6))

        def fresh_search() -> None:  # a new query each time: no cached match list
            query = {**body, "after": "0", "filterGroups": [{"filters": [
                {"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                 "value": str(int(window) + next(variants))}]}]}
            http.request("POST", search_url, json=query, headers=headers)

        _report("search 200, new window each time (raw HTTPS)", _timed(fresh_search, args.pages))
        stages = iter(["customer", "lead", "opportunity"] * args.pages)

        def fresh_scan() -> None:  # no hs_lastmodifieddate bounds: a scan of every record
            query = {"limit": 200, "after": "0", "properties": ["name"],
                     "filterGroups": [{"filters": [
                         {"propertyName": "lifecyclestage", "operator": "EQ",
                          "value": next(stages)},
                         {"propertyName": "name", "operator": "NEQ",
                          "value": f"x{next(variants)}"}]}]}
            http.request("POST", search_url, json=query, headers=headers)

        _report("search 200, full scan, new query (raw HTTPS)", _timed(fresh_scan, args.pages))
        offset["after"] = 0

        def raw_search_page() -> None:
            http.request("POST", search_url, json={**body, "after": str(offset["after"])},
                         headers=headers)
            offset["after"] += 200

        _report("search 200, next page (raw HTTPS)", _timed(raw_search_page, args.pages))
        print(f"calls: {dict(sb.traffic.calls)}")


if __name__ == "__main__":
    main()
