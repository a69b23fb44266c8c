"""Exchange rates in force on a date: amounts are converted at the close date, never today.

A `RateProvider` answers "how many units of the corporate currency is one unit of `currency`
worth on `day`?", or None when it does not know. Providers compose with `ChainedRates`: the
first that answers wins, so dated CRM rates go first and the static config rates last.

Hook for connectors: a connector that can read dated rates fills a `DatedRates` and the tick
passes `ChainedRates(that, StaticRates.from_config(config))` to `stamp_closed(rates=...)`.
- Salesforce: `SELECT IsoCode, ConversionRate, StartDate, NextStartDate FROM
  DatedConversionRate` when advanced currency management is on, else `CurrencyType` (one
  undated rate per currency, i.e. `DatedRates.add(code, None, ...)`). Salesforce rates are
  units of the currency per one corporate unit, so use `DatedRates.add_salesforce`.
- HubSpot: the account's exchange rates (`fromCurrencyCode`, `toCurrencyCode`,
  `conversionRate`, `effectiveAt`) with the company currency as `to`; they are already
  corporate units per unit, so `DatedRates.add` takes them as they are.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import ExchangeRate
from sync.config import AttributionConfig

_EPOCH = date.min


class RateProvider(Protocol):
    name: str

    def rate(self, currency: str, day: date) -> Decimal | None:
        """Corporate units per one unit of `currency` in force on `day`, or None."""
        ...


@dataclass
class StaticRates:
    """The `[attribution] static_rates` table: undated, the fallback of last resort."""

    rates: Mapping[str, Decimal]
    name: str = "static"

    @classmethod
    def from_config(cls, config: AttributionConfig) -> StaticRates:
        # Through str: 1.08 as a float is not 1.08 as a Decimal.
        return cls({k.upper(): Decimal(str(v)) for k, v in config.static_rates.items()})

    def rate(self, currency: str, day: date) -> Decimal | None:
        return self.rates.get(currency.upper())


@dataclass
class DatedRates:
    """Rates per currency with the date each takes effect; a rate holds until the next one."""

    name: str = "dated"
    _starts: dict[str, list[date]] = field(default_factory=dict)
    _rates: dict[str, list[Decimal]] = field(default_factory=dict)

    def add(self, currency: str, effective_from: date | None, rate: Decimal) -> None:
        """Corporate units per unit from `effective_from` (None: since always)."""
        code = currency.upper()
        starts = self._starts.setdefault(code, [])
        rates = self._rates.setdefault(code, [])
        day = effective_from or _EPOCH
        i = bisect.bisect_left(starts, day)
        if i < len(starts) and starts[i] == day:
            rates[i] = rate
        else:
            starts.insert(i, day)
            rates.insert(i, rate)

    def add_salesforce(self, iso_code: str, start_date: date | None,
                       conversion_rate: Decimal) -> None:
        """A DatedConversionRate/CurrencyType row: units of the currency per corporate unit."""
        if conversion_rate == 0:
            return
        self.add(iso_code, start_date, Decimal(1) / conversion_rate)

    def currencies(self) -> set[str]:
        """The currencies it has a rate for, upper case."""
        return set(self._starts)

    def rate(self, currency: str, day: date) -> Decimal | None:
        code = currency.upper()
        starts = self._starts.get(code)
        if not starts:
            return None
        i = bisect.bisect_right(starts, day) - 1
        return self._rates[code][i] if i >= 0 else None


@dataclass
class ChainedRates:
    providers: tuple[RateProvider, ...]
    name: str = "chained"

    def rate(self, currency: str, day: date) -> Decimal | None:
        return self.lookup(currency, day)[0]

    def lookup(self, currency: str, day: date) -> tuple[Decimal | None, str | None]:
        for provider in self.providers:
            found = provider.rate(currency, day)
            if found is not None:
                return found, provider.name
        return None, None


@dataclass(frozen=True)
class Conversion:
    rate: Decimal | None  # corporate units per unit; None: no rate known for that day
    source: str | None  # which provider answered ("same currency" when no conversion)


def convert_on(provider: RateProvider, currency: str | None, corporate: str,
               day: date) -> Conversion:
    """The rate to use for an amount in `currency` closed on `day`."""
    if currency is None or currency.upper() == corporate.upper():
        return Conversion(Decimal(1), "same currency")
    if isinstance(provider, ChainedRates):
        rate, source = provider.lookup(currency, day)
        return Conversion(rate, source)
    rate = provider.rate(currency, day)
    return Conversion(rate, provider.name if rate is not None else None)


def remember_rates(session: Session, dated: DatedRates, corporate: str, now: datetime) -> int:
    """Keep the CRM rates a tick read (upserted by currency and start date), so reports
    convert with the rates attribution uses without calling a CRM. A tick that read no rates
    (no scope, a single-currency org) leaves the kept ones as they are. Returns rows written."""
    wanted = {(code, day): rate for code, starts in dated._starts.items()
              for day, rate in zip(starts, dated._rates[code], strict=True)}
    if not wanted:
        return 0
    corporate = corporate.upper()
    kept = {(r.currency, r.effective_from): r for r in session.scalars(
        select(ExchangeRate).where(ExchangeRate.corporate_currency == corporate))}
    written = 0
    for (code, day), rate in wanted.items():
        row = kept.get((code, day))
        if row is None:
            session.add(ExchangeRate(corporate_currency=corporate, currency=code,
                                     effective_from=day, corporate_per_unit=rate, read_at=now))
        elif row.corporate_per_unit != rate:
            row.corporate_per_unit, row.read_at = rate, now
        else:
            continue
        written += 1
    return written


def kept_crm_rates(session: Session, corporate_currency: str) -> DatedRates:
    """The CRM rates the last ticks read and kept in the warehouse."""
    dated = DatedRates(name="crm")
    for row in session.scalars(select(ExchangeRate).where(
            ExchangeRate.corporate_currency == corporate_currency.upper())):
        dated.add(row.currency, row.effective_from, row.corporate_per_unit)
    return dated


def kept_rates(session: Session, config: AttributionConfig) -> ChainedRates:
    """The rates attribution uses, for a report: the CRM rates the last ticks read, then the
    config's static rates."""
    return ChainedRates((kept_crm_rates(session, config.corporate_currency),
                         StaticRates.from_config(config)))
