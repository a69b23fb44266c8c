"""Open pipeline in the corporate currency: the one rule every output converts with.

An open opportunity has no close date, so it converts at the rate in force today, taken from
the rates attribution uses: the CRM rates the ticks read and kept in the warehouse
(`exchange_rates`), then the config's static rates (`kept_rates`). Each opportunity converts
in SQL, rounded to the cent; an account's open pipeline is the sum of its opportunities'
converted amounts, so an account page's lines add up to the figure its list shows. An amount
whose currency has no rate today converts to NULL: left out of the sum, counted apart
(`unconverted`). An opportunity without a currency is in the corporate currency.

Readers: `report accounts`, `report next-accounts` (and the weekly digest), the alert events,
the web's Accounts list and account page. None of them converts on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, and_, case, false, func, literal, null, select
from sqlalchemy.orm import Session

from schema.models import Opportunity
from sync.attribution.currency import (
    ChainedRates,
    RateProvider,
    StaticRates,
    convert_on,
    kept_crm_rates,
)
from sync.config import AttributionConfig

_CENTS = Numeric(18, 2)
_RATE = Numeric(24, 12)


@dataclass(frozen=True)
class OpenPipeline:
    """Today's rates per currency, and the SQL that converts with them."""

    corporate: str
    day: date
    rates: Mapping[str, Decimal]  # corporate units per unit, in force on `day`

    @classmethod
    def of(cls, provider: RateProvider, currencies: Any, corporate: str,
           day: date) -> OpenPipeline:
        """`provider`'s rates on `day` for each of `currencies` it knows."""
        corporate = corporate.upper()
        known: dict[str, Decimal] = {}
        for code in {str(c).upper() for c in currencies if c}:
            rate = convert_on(provider, code, corporate, day).rate
            if code != corporate and rate is not None:
                known[code] = rate
        return cls(corporate, day, known)

    def corporate_amount(self, amount: Any, currency: Any) -> Any:
        """SQL: `amount` in the corporate currency, to the cent; NULL without a rate."""
        code = func.upper(currency)
        whens: list[Any] = [(currency.is_(None), amount), (code == self.corporate, amount)]
        whens += [(code == c, amount * literal(r, _RATE)) for c, r in sorted(self.rates.items())]
        return func.round(case(*whens, else_=null()), 2, type_=_CENTS)

    def by_account(self) -> Any:
        """SQL subquery: per (source, account_external_id) of live open opportunities, `n`,
        `amount` (the converted sum) and `unconverted` (amounts without a rate today)."""
        converted = self.corporate_amount(Opportunity.amount, Opportunity.currency)
        return (
            select(Opportunity.source, Opportunity.account_external_id,
                   func.count().label("n"), func.sum(converted, type_=_CENTS).label("amount"),
                   func.sum(case((and_(converted.is_(None), Opportunity.amount.is_not(None)),
                                  1), else_=0)).label("unconverted"))
            .where(Opportunity.status == "open", Opportunity.is_deleted == false())
            .group_by(Opportunity.source, Opportunity.account_external_id)
            .subquery("open_pipeline"))


def open_pipeline(session: Session, config: AttributionConfig, day: date) -> OpenPipeline:
    """The rates attribution uses (kept CRM rates, then static), in force on `day`."""
    corporate = config.corporate_currency.upper()
    crm = kept_crm_rates(session, corporate)  # one read of exchange_rates, codes and rates
    codes = crm.currencies() | {k.upper() for k in config.static_rates}
    return OpenPipeline.of(ChainedRates((crm, StaticRates.from_config(config))), codes,
                           corporate, day)
