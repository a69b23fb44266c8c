"""HubSpot exchange rates (issue 14.5, DESIGN.md 6): a closed deal's corporate amount uses the
portal's rate in force on its close date, never today's and never the static config rate when
the portal has one; without the settings.currencies.read scope the tick still runs (static
rates apply) and `check()` / `doctor` name the scope."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hs_support import connector_for
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox
from schema.models import AttributionStamp, Opportunity
from sync.config import AttributionConfig, Config, CrmConfig
from sync.doctor import check_connector
from sync.tick import TickOptions, run_tick

STATIC_EUR = 9.0  # present in the config, and wrong: the portal's dated rates come first


def _deals(sandbox: HubSpotSandbox) -> tuple[str, str]:
    old, new = sandbox.load("deals", [
        {"dealname": "Old deal", "amount": "1000", "deal_currency_code": "EUR",
         "closedate": "2023-06-01T00:00:00.000Z"},
        {"dealname": "New deal", "amount": "1000", "deal_currency_code": "EUR",
         "closedate": "2024-02-01T00:00:00.000Z"}])
    for deal in (old, new):
        sandbox.update("deals", deal, {"dealstage": "closedwon"})
    return old, new


def _stamp(connector: HubSpotConnector, sandbox: HubSpotSandbox, warehouse: Engine,
           corporate: str = "USD") -> dict[str, tuple[Decimal | None, Decimal | None]]:
    config = Config(crm=CrmConfig(hubspot=connector.config), attribution=AttributionConfig(
        corporate_currency=corporate, static_rates={"EUR": STATIC_EUR}))
    connector.ensure_fields(check_only=False)
    run_tick(warehouse, config, [connector], now=sandbox.clock.now(),
             options=TickOptions(backfill=True, kind="backfill"))
    with Session(warehouse) as session:
        rows = session.execute(
            select(Opportunity.external_id, AttributionStamp.corporate_amount,
                   AttributionStamp.exchange_rate)
            .join(AttributionStamp, AttributionStamp.opportunity_id == Opportunity.id)).all()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_a_stamps_corporate_amount_uses_the_portals_rate_on_the_close_date(
    sandbox: HubSpotSandbox, warehouse: Engine
) -> None:
    sandbox.add_exchange_rate("EUR", "1.05", datetime(2023, 1, 1, tzinfo=UTC))
    sandbox.add_exchange_rate("EUR", "1.10", datetime(2024, 1, 1, tzinfo=UTC))
    sandbox.add_exchange_rate("EUR", "1.20", datetime(2024, 3, 1, tzinfo=UTC))  # today's
    old, new = _deals(sandbox)
    connector = connector_for(sandbox)

    stamps = _stamp(connector, sandbox, warehouse)

    assert stamps[old] == (Decimal("1050.00"), Decimal("1.05"))
    assert stamps[new] == (Decimal("1100.00"), Decimal("1.10"))
    assert sandbox.traffic.calls["GET /settings/v3/currencies/exchange-rates"] == 1
    connector.exchange_rates()  # within the hour: no second read
    assert sandbox.traffic.calls["GET /settings/v3/currencies/exchange-rates"] == 1


def test_rates_span_pages_and_rates_to_another_currency_are_not_used(
    sandbox: HubSpotSandbox, warehouse: Engine
) -> None:
    for year in range(1900, 2024):  # 124 historical rates: two pages of 100
        sandbox.add_exchange_rate("EUR", "1.01", datetime(year, 1, 1, tzinfo=UTC))
    sandbox.add_exchange_rate("EUR", "1.10", datetime(2024, 1, 1, tzinfo=UTC))
    old, new = _deals(sandbox)
    connector = connector_for(sandbox)

    rates = connector.exchange_rates()
    assert len(rates) == 125 and rates[-1].corporate_per_unit == Decimal("1.10")
    assert sandbox.traffic.calls["GET /settings/v3/currencies/exchange-rates"] == 2
    # ecosync's corporate currency is GBP, the portal's company currency USD: its rates
    # convert to the wrong currency, so only the config's static rate may apply.
    stamps = _stamp(connector, sandbox, warehouse, corporate="GBP")
    assert stamps[old] == stamps[new] == (Decimal("9000.00"), Decimal("9"))


def test_without_the_currencies_scope_the_tick_uses_static_rates_and_doctor_says_why(
    sandbox: HubSpotSandbox, warehouse: Engine
) -> None:
    sandbox.add_exchange_rate("EUR", "1.10", datetime(2024, 1, 1, tzinfo=UTC))
    sandbox.revoke_scope("settings.currencies.read")
    old, new = _deals(sandbox)
    connector = connector_for(sandbox)

    stamps = _stamp(connector, sandbox, warehouse)

    # Not a crash: the static rate applies to both.
    assert stamps[old] == stamps[new] == (Decimal("9000.00"), Decimal("9"))
    problems = connector.check()
    assert any("lacks the settings.currencies.read scope" in p for p in problems)
    config = Config(crm=CrmConfig(hubspot=connector.config))
    lines = [c for c in check_connector(connector, config) if not c.passed]
    assert [(c.name, c.status) for c in lines] == [("readiness", "fail")]
    assert "settings.currencies.read" in lines[0].detail
