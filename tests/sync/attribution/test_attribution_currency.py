"""Rates in force on the close date, from dated CRM rates before the static config rates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from attribution_world import World, day
from sqlalchemy.orm import Session

from sync.attribution.currency import ChainedRates, DatedRates, StaticRates, convert_on
from sync.attribution.stamp import stamp_closed
from sync.config import AttributionConfig


def dated() -> DatedRates:
    rates = DatedRates(name="salesforce DatedConversionRate")
    # Salesforce rates are units of the currency per corporate unit: 0.8 EUR per USD.
    rates.add_salesforce("EUR", date(2026, 1, 1), Decimal("0.8"))
    rates.add_salesforce("EUR", date(2026, 3, 1), Decimal("0.5"))
    return rates


def test_the_rate_in_force_on_the_day_not_the_latest() -> None:
    rates = dated()
    assert rates.rate("eur", date(2026, 2, 28)) == Decimal("1.25")
    assert rates.rate("EUR", date(2026, 3, 1)) == Decimal(2)
    assert rates.rate("EUR", date(2025, 12, 31)) is None  # before any rate: unknown
    assert rates.rate("GBP", date(2026, 2, 1)) is None


def test_chained_falls_back_to_static_and_names_the_source() -> None:
    chain = ChainedRates((dated(), StaticRates.from_config(
        AttributionConfig(static_rates={"EUR": 1.08, "GBP": 1.27}))))
    eur = convert_on(chain, "EUR", "USD", date(2026, 2, 1))
    assert (eur.rate, eur.source) == (Decimal("1.25"), "salesforce DatedConversionRate")
    gbp = convert_on(chain, "GBP", "USD", date(2026, 2, 1))
    assert (gbp.rate, gbp.source) == (Decimal("1.27"), "static")
    same = convert_on(chain, "usd", "USD", date(2026, 2, 1))
    assert (same.rate, same.source) == (Decimal(1), "same currency")
    assert convert_on(chain, "JPY", "USD", date(2026, 2, 1)).rate is None


def test_stamp_converts_at_the_close_date_and_splits_corporate_amounts_exactly(
    world: World,
) -> None:
    world.partner("alpha")
    world.partner("beta")
    acc = world.account("A1")
    world.overlap(acc, "alpha", first=day(-100))
    world.overlap(acc, "beta", first=day(-100))
    world.opportunity("O1", "A1", amount="100.01", currency="EUR", close=date(2026, 2, 4))
    with Session(world.engine) as s, s.begin():
        stamp_closed(s, AttributionConfig(), now=day(80), rates=dated())  # day 80: March
    [stamp] = world.stamps("O1")
    assert (stamp.exchange_rate, stamp.corporate_amount) == (Decimal("1.25"), Decimal("125.01"))
    assert stamp.evidence["rate_source"] == "salesforce DatedConversionRate"
    parts = [Decimal(p["corporate_amount"]) for p in stamp.evidence["partners"]]
    assert sum(parts) == Decimal("125.01")


def test_no_rate_leaves_the_corporate_amount_empty(world: World) -> None:
    world.opportunity("O1", None, amount="10.00", currency="JPY")
    world.stamp()
    [stamp] = world.stamps("O1")
    assert (stamp.corporate_amount, stamp.exchange_rate, stamp.amount) == (
        None, None, Decimal("10.00"))
