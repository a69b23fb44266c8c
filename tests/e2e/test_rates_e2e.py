"""Amounts are converted at the rate in force on the close date, read from the org's dated
exchange rates (DESIGN.md 6), never at today's rate."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceSandbox
from schema.models import AttributionStamp, Opportunity
from sync.config import parse_config
from sync.tick import TickOptions, run_tick


def test_close_dates_pick_the_dated_rate_in_force(tmp_path: Path, warehouse: Engine) -> None:
    with SalesforceSandbox(multi_currency=True, tls_dir=tmp_path / "tls") as sf:
        (account,) = sf.load("Account", [{"Name": "Globex GmbH", "Website": "globex.de"}])
        old, new = sf.load("Opportunity", [
            {"AccountId": account, "Name": "Old deal", "StageName": "Closed Won",
             "Amount": 1000, "CurrencyIsoCode": "EUR", "CloseDate": "2023-06-01"},
            {"AccountId": account, "Name": "New deal", "StageName": "Closed Won",
             "Amount": 1000, "CurrencyIsoCode": "EUR", "CloseDate": "2025-06-01"},
        ])
        config = parse_config({
            "warehouse": {"url": engine_url(warehouse)},
            "crm": {"salesforce": {
                "enabled": True, "instance_url": sf.url, "login_url": sf.url,
                "client_id": sf.client_id, "client_secret": sf.client_secret,
                "ca_bundle": str(sf.ca_file)}},
            # A static EUR rate that must NOT be used: the org has dated rates.
            "attribution": {"corporate_currency": "USD", "static_rates": {"EUR": 9.0}},
        }, "<test>")
        connector = SalesforceConnector(config.crm.salesforce)
        connector.ensure_fields(check_only=False)
        sf.clock.advance(1)  # a tick reads up to the org's clock, in whole seconds
        run_tick(warehouse, config, [connector],
                 options=TickOptions(backfill=True, kind="backfill"))
        rates = {r.effective_from: r.corporate_per_unit for r in connector.exchange_rates()
                 if r.currency == "EUR"}
    assert len(rates) == 2
    with Session(warehouse) as s:
        stamps = dict(s.execute(
            select(Opportunity.external_id, AttributionStamp.corporate_amount)
            .join(AttributionStamp, AttributionStamp.opportunity_id == Opportunity.id)).all())
    before_2024 = next(v for k, v in rates.items() if k is None)
    since_2024 = next(v for k, v in rates.items() if k is not None)
    assert before_2024 != since_2024
    assert stamps[old] == (Decimal(1000) * before_2024).quantize(Decimal("0.01"))
    assert stamps[new] == (Decimal(1000) * since_2024).quantize(Decimal("0.01"))


def engine_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)
