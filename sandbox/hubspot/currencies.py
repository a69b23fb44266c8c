"""The settings currencies API: the portal's company currency and its dated exchange rates.

`GET /settings/v3/currencies/exchange-rates` lists every rate the portal has had, historical
ones included, each `{id, fromCurrencyCode, toCurrencyCode, conversionRate, effectiveAt,
createdAt, updatedAt, visibleInUI}` (public spec `Settings/Multicurrency/v3`,
`CollectionResponseExchangeRateForwardPaging`). `conversionRate` is units of the company
currency per one unit of `fromCurrencyCode` (a JSON number); `toCurrencyCode` is the company
currency. Query: `limit`, `after` (an opaque cursor in `paging.next.after`), and the filters
`fromCurrencyCode`, `toCurrencyCode`. Scope `settings.currencies.read`.

Not confirmed: the page size default and maximum (10 and 100 here, as the CRM list
endpoints), and the order (creation order here).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sandbox.common import Request, Response, json_response
from sandbox.hubspot.clock import Clock, iso, to_ms
from sandbox.hubspot.wire import decode_cursor, encode_cursor, parse_limit

SCOPE = "settings.currencies.read"
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


@dataclass(slots=True)
class Rate:
    id: str
    from_code: str
    to_code: str
    rate: Decimal
    effective_ms: int
    created_ms: int

    def wire(self) -> dict[str, object]:
        return {"id": self.id, "fromCurrencyCode": self.from_code,
                "toCurrencyCode": self.to_code, "conversionRate": float(self.rate),
                "effectiveAt": iso(self.effective_ms), "createdAt": iso(self.created_ms),
                "updatedAt": iso(self.created_ms), "visibleInUI": True}


@dataclass
class Currencies:
    clock: Clock
    company_currency: str = "USD"
    rates: list[Rate] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, from_code: str, conversion_rate: Decimal | float | str,
            effective_at: datetime | None = None) -> str:
        """A rate of `from_code` in company-currency units, in force from `effective_at`
        (now if None), as `POST /settings/v3/currencies/exchange-rates` would add it."""
        now = self.clock.now_ms()
        rate = Rate(str(uuid.uuid4().int % 10**9), from_code.upper(), self.company_currency,
                    Decimal(str(conversion_rate)),
                    now if effective_at is None else to_ms(effective_at), now)
        with self.lock:
            self.rates.append(rate)
        return rate.id

    def list_rates(self, request: Request) -> Response:
        limit = parse_limit(request.arg("limit"), DEFAULT_LIMIT, MAX_LIMIT)
        start = decode_cursor(request.arg("after")) or 0
        wanted_from = (request.arg("fromCurrencyCode") or "").upper()
        wanted_to = (request.arg("toCurrencyCode") or "").upper()
        with self.lock:
            found = [r for r in self.rates
                     if (not wanted_from or r.from_code == wanted_from)
                     and (not wanted_to or r.to_code == wanted_to)]
        page = found[start:start + limit]
        body: dict[str, object] = {"results": [r.wire() for r in page]}
        if start + limit < len(found):
            after = encode_cursor(start + limit)
            body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return json_response(200, body)
