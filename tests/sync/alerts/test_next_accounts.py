"""`ecosync report next-accounts`: per partner, the named accounts to work jointly, ranked by
the documented score, each row explaining its points."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from alerts_support import Warehouse, make_config
from click.testing import CliRunner
from sqlalchemy.orm import Session

from sync.attribution.currency import StaticRates
from sync.attribution.open_pipeline import OpenPipeline
from sync.cli import cli
from sync.reports.next_accounts import Pipeline, next_accounts, score


def build(wh: Warehouse) -> None:
    wh.partner("acme", "Acme Cloud")
    wh.partner("namey", "Namey", {"customer": "names", "open_opportunity": "names",
                                  "prospect": "counts"})
    wh.partner("countsy", "Countsy", {p: "counts" for p in
                                      ("customer", "open_opportunity", "prospect")})
    wh.account("BIG", "big.example", name="Big Deal Inc")
    wh.opportunity("O-BIG", "BIG", amount="900000", stage="Negotiation/Review")
    wh.account("SMALL", "small.example", name="Small Co")
    wh.opportunity("O-SMALL", "SMALL", amount="5000", stage="Prospecting")
    wh.account("PROS", "pros.example", name="Prospect Ltd")
    wh.account("EURO", "euro.example", name="Euro GmbH")
    wh.opportunity("O-EURO", "EURO", amount="100000", currency="EUR")
    for pid in ("acme", "namey", "countsy"):
        wh.partner_account(pid, "big.example", "customer")
        wh.partner_account(pid, "small.example", "prospect")
        wh.partner_account(pid, "pros.example", "customer")
        wh.partner_account(pid, "euro.example", "open_opportunity")
    wh.tick(make_config(wh.engine, [], {}))


def test_score_parts_add_up_and_are_explained() -> None:
    pipe = Pipeline(1, Decimal(100000), Decimal(90000), "Negotiation/Review", ())
    sc = score("customer", pipe, 9, True, True, "USD")
    assert sc.why == ("their customer 30.0 + open pipeline 100,000 USD (90,000 stage-weighted, "
                      "largest at Negotiation/Review) 24.8 + overlap 9 days old 13.5 + "
                      "owner shared 10.0 + in joint pursuit this quarter 15.0 = 93.3")
    assert sc.total == 93.3
    bare = score("prospect", Pipeline(0, Decimal(0), Decimal(0), None, ()), 200, False, False,
                 "USD")
    assert bare.total == 10.0 and "no open pipeline 0.0" in bare.why


def test_ranked_per_named_partner_with_sharing_applied(wh: Warehouse) -> None:
    build(wh)
    today = (wh.now + timedelta(days=3)).date()
    with Session(wh.engine) as s:
        rows = next_accounts(s, today=today, pipeline=OpenPipeline.of(
            StaticRates({"EUR": Decimal("1.10")}), ["EUR"], "usd", today))
    by = {}
    for r in rows:
        by.setdefault(r.partner, []).append(r)
    # A counts-only partner has no list: a list per partner would name it.
    assert set(by) == {"Acme Cloud", "Namey"}
    acme = by["Acme Cloud"]
    # Small Co's small early deal, in joint pursuit, outranks a customer with no pipeline.
    assert [r.account for r in acme] == ["Big Deal Inc", "Euro GmbH", "Small Co",
                                         "Prospect Ltd"]
    assert [r.rank for r in acme] == [1, 2, 3, 4]
    assert acme[0].contact == "Pat Partner <pat@partner.example>"
    assert acme[0].joint_pursuit and acme[0].open_pipeline == Decimal("900000.00")
    assert acme[1].open_pipeline == Decimal("110000.00") and acme[1].currency == "USD"
    assert all(r.why.endswith(f"= {r.score:.1f}") for r in acme)
    assert acme[0].score > acme[1].score > acme[2].score > acme[3].score
    # Names level: no owner; its counts-only prospects are not listed under its name.
    namey = by["Namey"]
    assert {r.account for r in namey} == {"Big Deal Inc", "Prospect Ltd", "Euro GmbH"}
    assert all(r.contact is None for r in namey)


def test_unknown_rate_is_left_out_and_said(wh: Warehouse) -> None:
    build(wh)
    with Session(wh.engine) as s:
        rows = next_accounts(s, today=wh.now.date(), partner="acme", limit=2)
    assert [r.account for r in rows] == ["Big Deal Inc", "Small Co"]
    with Session(wh.engine) as s:
        euro = [r for r in next_accounts(s, today=wh.now.date(), partner="acme")
                if r.account == "Euro GmbH"]
    assert "no rate today for EUR" in euro[0].why


def test_cli_next_accounts(wh: Warehouse, tmp_path: Path) -> None:
    build(wh)
    url = wh.engine.url.render_as_string(hide_password=False)
    config = tmp_path / "ecosync.toml"
    config.write_text(f'[warehouse]\nurl = "{url}"\n\n[[partners]]\nid = "acme"\n'
                      'name = "Acme Cloud"\nsource = "manual"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "report", "next-accounts",
                                      "--partner", "acme", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["partner"] == "Acme Cloud" and rows[0]["account"] == "Big Deal Inc"
    assert "their customer 30.0" in rows[0]["why"]
    bad = CliRunner().invoke(cli, ["--config", str(config), "report", "next-accounts",
                                   "--partner", "nobody"])
    assert bad.exit_code != 0 and "--partner nobody: no such partner" in bad.output


@pytest.mark.parametrize("limit", [1, 3])
def test_limit_keeps_the_best(wh: Warehouse, limit: int) -> None:
    build(wh)
    with Session(wh.engine) as s:
        full = next_accounts(s, today=wh.now.date(), partner="acme")
        cut = next_accounts(s, today=wh.now.date(), partner="acme", limit=limit)
    assert [r.account for r in cut] == [r.account for r in full][:limit]
