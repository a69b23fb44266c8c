"""`report accounts` compares like with like (issue 17.6): open pipeline in the corporate
currency at the rates attribution uses (the org's rates the last tick read, then the static
config rates), ranked on that, the original currencies beside it; domains in Unicode."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from matching_world import World
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceSandbox
from schema.models import ExchangeRate, Opportunity
from sync.attribution.currency import StaticRates
from sync.attribution.open_pipeline import OpenPipeline
from sync.cli import cli
from sync.config import parse_config
from sync.reports.accounts import accounts_report
from sync.tick import TickOptions, run_tick

CSV = "external_id,name,domain,population\nP1,Globex,globex.de,customer\n" \
      "P2,Initech,initech.com,customer\nP3,Bücher,bücher.de,customer\n" \
      "P4,Umbrella,umbrella.co.uk,customer\n"


def test_open_pipeline_ranks_in_the_corporate_currency(tmp_path: Path,
                                                       warehouse: Engine) -> None:
    partners = tmp_path / "partner.csv"
    partners.write_text(CSV, encoding="utf-8")
    url = warehouse.url.render_as_string(hide_password=False)
    base = {"warehouse": {"url": url},
            "attribution": {"corporate_currency": "USD", "static_rates": {"GBP": 1.25}},
            "partners": [{"id": "p-one", "name": "Partner One", "path": str(partners)}]}
    with SalesforceSandbox(multi_currency=True, tls_dir=tmp_path / "tls") as sf:
        globex, initech, buecher, umbrella = sf.load("Account", [
            {"Name": "Globex GmbH", "Website": "https://globex.de"},
            {"Name": "Initech", "Website": "https://initech.com"},
            {"Name": "Bücher AG", "Website": "https://www.bücher.de/"},
            {"Name": "Umbrella", "Website": "https://umbrella.co.uk"}])
        sf.load("Opportunity", [  # EUR 10,000 is worth more than USD 10,500 (EUR 0.92 per USD)
            {"AccountId": globex, "Name": "G", "StageName": "Prospecting", "Amount": 10000,
             "CurrencyIsoCode": "EUR", "CloseDate": "2030-01-01"},
            {"AccountId": initech, "Name": "I", "StageName": "Prospecting", "Amount": 10500,
             "CurrencyIsoCode": "USD", "CloseDate": "2030-01-01"},
            {"AccountId": buecher, "Name": "B", "StageName": "Prospecting", "Amount": 100,
             "CurrencyIsoCode": "USD", "CloseDate": "2030-01-01"},
            {"AccountId": buecher, "Name": "B2", "StageName": "Prospecting", "Amount": 50,
             "CurrencyIsoCode": "JPY", "CloseDate": "2030-01-01"},
            {"AccountId": umbrella, "Name": "U", "StageName": "Prospecting", "Amount": 1000,
             "CurrencyIsoCode": "GBP", "CloseDate": "2030-01-01"}])
        sf.clock.advance(2)  # the tick reads up to the org's clock, in whole seconds
        config = parse_config({**base, "crm": {"salesforce": {
            "enabled": True, "instance_url": sf.url, "login_url": sf.url,
            "client_id": sf.client_id, "client_secret": sf.client_secret,
            "ca_bundle": str(sf.ca_file)}}}, "<test>")
        connector = SalesforceConnector(config.crm.salesforce)
        connector.ensure_fields(check_only=False)
        run_tick(warehouse, config, [connector],
                 options=TickOptions(backfill=True, kind="backfill"))
    with Session(warehouse) as s:
        kept = {r.currency: r.corporate_per_unit for r in s.scalars(select(ExchangeRate))}
    eur = kept["EUR"]
    assert abs(eur - Decimal(1) / Decimal("0.92")) < Decimal("0.0001")

    # The report needs no CRM: the config names the warehouse and the partners only.
    config_path = tmp_path / "report.toml"
    config_path.write_text(
        f'[warehouse]\nurl = "{url}"\n[attribution]\ncorporate_currency = "USD"\n'
        'static_rates = { GBP = 1.25, JPY = 0.0068 }\n'
        f'[[partners]]\nid = "p-one"\nname = "Partner One"\npath = "{partners}"\n',
        encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config_path), "report", "accounts",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert [r["name"] for r in json.loads(result.stdout)] == [
        "Globex GmbH", "Initech", "Umbrella", "Bücher AG"]
    assert rows["Globex GmbH"]["open_pipeline"] == str((Decimal(10000) * eur).quantize(
        Decimal("0.01")))
    assert rows["Globex GmbH"]["original"] == "10000.00 EUR"
    # The org's own GBP rate (the last tick read it) wins over the static config rate.
    assert rows["Umbrella"]["open_pipeline"] == str((Decimal(1000) * kept["GBP"]).quantize(
        Decimal("0.01")))
    # JPY: the org's rate, and the static one only where the org has none.
    assert rows["Bücher AG"]["original"] == "50.00 JPY; 100.00 USD"
    assert rows["Bücher AG"]["domain"] == "bücher.de"
    assert {r["corporate_currency"] for r in rows.values()} == {"USD"}
    table = CliRunner().invoke(cli, ["--config", str(config_path), "report", "accounts"])
    assert "bücher.de" in table.stdout and "xn--" not in table.stdout


def test_an_amount_without_a_rate_is_counted_not_converted(world: World) -> None:
    world.partner("p-full")
    world.account("A1", "Acme", "https://acme.com")
    world.partner_account("p-full", "Acme", "acme.com", "customer")
    world.opportunity("O1", "A1", amount="100")
    world.opportunity("O2", "A1", amount="700")
    with Session(world.engine) as s, s.begin():
        s.execute(update(Opportunity).where(Opportunity.external_id == "O2")
                  .values(currency="XTS"))
    world.match()
    with Session(world.engine) as s:
        [row] = accounts_report(s, pipeline=OpenPipeline.of(
            StaticRates({"EUR": Decimal("1.1")}), ["EUR", "XTS"], "USD", date.today()))
    assert (row.open_pipeline, row.unconverted, row.original) == (
        Decimal("100.00"), 1, "100.00 USD; 700.00 XTS")
