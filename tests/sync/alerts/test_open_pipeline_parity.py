"""One account, one open-pipeline figure: `report accounts`, `report next-accounts`, a
delivered alert body and the web's Accounts API all convert with sync.attribution.open_pipeline
(the CRM rates kept in the warehouse, dated, in force today; the static config rates only
for a currency the CRMs gave none; each opportunity to the cent)."""

from __future__ import annotations

import json
import tomllib
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from alerts_support import ENV, Clock, Warehouse, receivers
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from schema.models import ExchangeRate
from sync.alerts.deliver import deliver_alerts
from sync.cli import cli
from sync.config import parse_config
from sync.config.alerts import EventKind
from sync.web.app import create_app

CENT = Decimal("0.01")
# EUR: the CRM's dated rates (an old one, the one in force, one not in force yet) win over
# the static 1.20; GBP: static only; JPY: no rate at all.
EUR_TODAY = Decimal("1.0865")
OPPS = [("O1", "10.01", "EUR"), ("O2", "10.01", "EUR"), ("O3", "10.01", "EUR"),
        ("O4", "333.33", "GBP"), ("O5", "5000", "JPY"), ("O6", "99.99", "USD")]


def _expected() -> Decimal:
    rate = {"EUR": EUR_TODAY, "GBP": Decimal("1.25"), "USD": Decimal(1)}
    # Each opportunity to the cent, then summed: 3 x 10.88 + 416.66 + 99.99 (not 10.01 x 3 x
    # 1.0865 = 32.63 rounded once).
    return sum(((Decimal(a) * rate[c]).quantize(CENT, ROUND_HALF_UP)
                for _e, a, c in OPPS if c in rate), Decimal(0))


def _toml(url: str, hook_url: str, ca: Path) -> str:
    return (f'[warehouse]\nurl = "{url}"\n\n[attribution]\ncorporate_currency = "USD"\n'
            'static_rates = { EUR = 1.20, GBP = 1.25 }\n\n'
            '[[partners]]\nid = "acme"\nname = "Acme Cloud"\nsource = "manual"\n'
            'share = { customer = "full", open_opportunity = "full", prospect = "full" }\n\n'
            '[[alerts]]\nname = "hook"\nkind = "webhook"\nwebhook_url = "${HOOK_URL}"\n'
            f'secret = "${{HOOK_SECRET}}"\nca_bundle = "{ca}"\n'
            f'events = ["{EventKind.NEW_ON_OPEN_OPPORTUNITY.value}"]\n')


def test_same_open_pipeline_in_every_output(wh: Warehouse, tmp_path: Path) -> None:
    today = date.today()
    expected = _expected()
    assert expected == Decimal("549.29")
    url = wh.engine.url.render_as_string(hide_password=False)
    with receivers(tmp_path, ("ok", False)) as ((hook,), ca):
        text = _toml(url, hook.url, ca)
        config = parse_config(tomllib.loads(text), "<test>", {**ENV, "HOOK_URL": hook.url})
        path = tmp_path / "ecosync.toml"
        path.write_text(text, encoding="utf-8")
        wh.now = wh.now.replace(year=today.year, month=today.month, day=today.day)
        assert wh.tick(config).queued == 0  # alerts armed: what exists now is history
        with Session(wh.engine) as s, s.begin():
            for start, rate in ((today - timedelta(days=700), "0.5"),
                                (today - timedelta(days=30), str(EUR_TODAY)),
                                (today + timedelta(days=1), "9")):
                s.add(ExchangeRate(corporate_currency="USD", currency="EUR",
                                   effective_from=start, corporate_per_unit=Decimal(rate),
                                   read_at=wh.now))
        wh.partner("acme", "Acme Cloud")
        wh.account("A1", "one.example", name="Initech")
        for ext, amount, currency in OPPS:
            wh.opportunity(ext, "A1", amount=amount, currency=currency)
        wh.partner_account("acme", "one.example", "customer")
        assert wh.tick(config).queued == 1
        clock = Clock()
        assert deliver_alerts(wh.engine, config, now=wh.now, clock=clock,
                              sleep=clock.sleep).sent == 1
        (body,) = hook.bodies()
    alert = Decimal(body["data"]["open_pipeline"]["amount"])
    assert body["data"]["open_pipeline"]["unconverted"] == ["JPY"]

    env = {**ENV, "HOOK_URL": "https://127.0.0.1:1/unused"}
    report = CliRunner(env=env).invoke(cli, ["--config", str(path), "report", "accounts",
                                             "--format", "json"])
    assert report.exit_code == 0, report.output
    (row,) = json.loads(report.stdout)
    assert row["unconverted"] == 1

    nxt = CliRunner(env=env).invoke(cli, ["--config", str(path), "report", "next-accounts",
                                          "--format", "json"])
    assert nxt.exit_code == 0, nxt.output
    (ranked,) = json.loads(nxt.stdout)
    assert "no rate today for JPY" in ranked["why"]

    with TestClient(create_app(wh.engine, config)) as client:
        answer = client.get("/api/v1/accounts")
        assert answer.status_code == 200, answer.text
        (web,) = answer.json()["tables"][0]["rows"]
        page = client.get("/api/v1/accounts/salesforce/A1").json()
    assert web["unconverted_opportunities"] == 1
    opps = {t["name"]: t for t in page["tables"]}["opportunities"]["rows"]
    lines = sum(Decimal(str(o["corporate_amount"])) for o in opps
                if o["corporate_amount"] is not None)

    figures = {"alert": alert, "report accounts": Decimal(row["open_pipeline"]),
               "next-accounts": Decimal(str(ranked["open_pipeline"])),
               "web accounts": Decimal(str(web["open_pipeline"])), "web account lines": lines}
    assert figures == dict.fromkeys(figures, expected)
