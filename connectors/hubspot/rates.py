"""The portal's dated exchange rates (settings currencies API), for converting deal amounts at
the close date as Salesforce's DatedConversionRate does (DESIGN.md 6).

`GET /settings/v3/currencies/exchange-rates` lists every rate the portal has had, historical
ones included: `fromCurrencyCode`, `toCurrencyCode` (the company currency), `conversionRate`
(company-currency units per one unit of `fromCurrencyCode`, a JSON number) and `effectiveAt`
(when it takes effect). Paged with `after`; scope `settings.currencies.read`.
hubspot-api-client 12 has no module for it: HubSpotClient.get calls it through a generated
ApiClient.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import ExchangeRate, PageGuard
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.normalize import parse_time

PATH = "/settings/v3/currencies/exchange-rates"
SCOPE = "settings.currencies.read"
PAGE = 100  # ask for large pages: a portal has a few rates per currency and year


def parse_rates(results: Iterable[Mapping[str, Any]]) -> list[ExchangeRate]:
    """Pure: API results → rates, in effect order (zero, negative or garbled ones skipped).

    A rate is in force from the UTC day of its `effectiveAt` until the next rate of the same
    currency; two on one day: the later `effectiveAt` (then `createdAt`) wins."""
    keyed: list[tuple[tuple[str, str], ExchangeRate]] = []
    for row in results:
        try:
            rate = Decimal(str(row.get("conversionRate")))
        except InvalidOperation:
            continue
        code = str(row.get("fromCurrencyCode") or "").upper()
        to = str(row.get("toCurrencyCode") or "").upper() or None
        effective = parse_time(row.get("effectiveAt"))
        if not code or not rate.is_finite() or rate <= 0 or effective is None:
            continue
        created = parse_time(row.get("createdAt"))
        order = (effective.isoformat(), created.isoformat() if created else "")
        keyed.append((order, ExchangeRate(code, effective.date(), rate, corporate=to)))
    keyed.sort(key=lambda pair: pair[0])
    return [rate for _, rate in keyed]


def read_rates(client: HubSpotClient) -> Iterator[Mapping[str, Any]]:
    """Every rate result, page by page (raises MissingScopes without the scope)."""
    after: str | None = None
    guard = PageGuard("HubSpot exchange rates")
    while True:
        query = [("limit", str(PAGE))] + ([("after", after)] if after else [])
        body = client.get(PATH, query).body
        results = list(body.get("results") or ())
        guard.got(str(r.get("id")) for r in results)
        yield from results
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return
        guard.ask(after)
