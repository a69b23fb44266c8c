"""Exchange rates of a multi-currency org, for converting amounts at the close date.

With advanced currency management the org keeps dated rates (DatedConversionRate: each row
in force from StartDate to NextStartDate); without it, one rate per currency (CurrencyType).
Salesforce rates are units of the currency per one unit of the corporate currency.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import ExchangeRate

DATED = "SELECT IsoCode, ConversionRate, StartDate FROM DatedConversionRate ORDER BY StartDate"
STATIC = "SELECT IsoCode, ConversionRate FROM CurrencyType WHERE IsActive = true"


def parse_rates(records: list[dict[str, Any]]) -> list[ExchangeRate]:
    """Pure: REST rows → rates in corporate units per unit (zero or garbage rows skipped)."""
    out = []
    for row in records:
        try:
            raw = Decimal(str(row.get("ConversionRate")))
        except InvalidOperation:
            continue
        code = str(row.get("IsoCode") or "").upper()
        if not code or raw <= 0:
            continue
        start = row.get("StartDate")
        effective = date.fromisoformat(start) if start and start > "0001-01-01" else None
        out.append(ExchangeRate(code, effective, Decimal(1) / raw))
    return out
