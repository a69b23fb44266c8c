"""A partner's own CRM as its source (issue 19 item 1): a second emulated org / portal, read
with the partner's credentials, never written to; incremental with deletes; a partner whose
CRM fails fails alone; `doctor` checks its credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from partner_support import write_csv
from sqlalchemy import Engine, select

from connectors.base import FieldUpdate, ReadOnlyRefused
from sandbox.hubspot import HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from schema.db import transaction
from schema.models import (
    Account,
    Overlap,
    PartnerAccount,
    PartnerCrmAccount,
    PartnerCrmOpportunity,
)
from schema.records import Stream
from sync.cli import cli
from sync.config import Config, parse_config
from sync.matching.keys import normalize_name, registrable_domain
from sync.partners.crm_source import partner_connector, rebuild_snapshot
from sync.partners.registry import sync_partners_from_config
from sync.tick import TickOptions, run_tick

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BACKFILL = TickOptions(backfill=True, kind="backfill")


@pytest.fixture
def partner_org(tmp_path: Path) -> Iterator[SalesforceSandbox]:
    """The partner's Salesforce org: a second org, nothing to do with ours."""
    with SalesforceSandbox(seed=5, tls_dir=tmp_path / "partner-org") as sf:
        sf.clock.freeze(T0)
        yield sf


@pytest.fixture
def partner_portal() -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(burst_max=1000, search_per_s=50) as hs:
        hs.clock.freeze(T0)
        yield hs


def _sf_crm(sf: SalesforceSandbox, **overrides: str) -> dict[str, Any]:
    return {"auth": "client_credentials", "instance_url": sf.url, "login_url": sf.url,
            "client_id": sf.client_id, "client_secret": sf.client_secret,
            "ca_bundle": str(sf.ca_file), **overrides}


def _hs_crm(hs: HubSpotSandbox) -> dict[str, Any]:
    return {"base_url": hs.url, "access_token": hs.access_token, "ca_bundle": str(hs.ca_file)}


def _config(engine: Engine, *partners: dict[str, Any]) -> Config:
    return parse_config({"warehouse": {"url": engine.url.render_as_string(hide_password=False)},
                         "partners": list(partners)}, "<test>", {})


def _ours(engine: Engine, *domains: str) -> None:
    """Our own accounts (we run no CRM in these tests: the tick has no connector of ours)."""
    with transaction(engine) as session:
        for n, domain in enumerate(domains):
            name = domain.split(".")[0].title()
            session.add(Account(source="salesforce", external_id=f"001OURS{n:08d}", name=name,
                                website=f"https://{domain}", domain_key=registrable_domain(domain),
                                name_key=normalize_name(name), modified_at=T0,
                                ingested_at=T0))


def _partner_rows(engine: Engine, partner_id: str) -> dict[str, str]:
    with transaction(engine) as session:
        return {r.domain_key or r.name_key or "": r.population for r in session.scalars(
            select(PartnerAccount).where(PartnerAccount.partner_id == partner_id))}


def _overlapping(engine: Engine, partner_id: str) -> set[str]:
    with transaction(engine) as session:
        return set(session.scalars(
            select(Account.domain_key).join(Overlap, Overlap.account_id == Account.id)
            .where(Overlap.partner_id == partner_id, Overlap.ended_at.is_(None))))


def test_a_partner_salesforce_org_is_read_through_backfill_and_ticks(
    warehouse: Engine, partner_org: SalesforceSandbox
) -> None:
    sf = partner_org
    typed, won, open_, plain, gone = sf.load("Account", [
        {"Name": "Typed Co", "Website": "https://typed.com", "Type": "Customer - Direct"},
        {"Name": "Won Co", "Website": "won.com"},
        {"Name": "Open Co", "Website": "open.com"},
        {"Name": "Plain Co", "Website": "plain.com"},
        {"Name": "Gone Co", "Website": "gone.com", "Type": "Customer - Channel"}])
    sf.load("Opportunity", [
        {"AccountId": won, "Name": "W", "StageName": "Closed Won", "CloseDate": "2026-01-10"},
        {"AccountId": open_, "Name": "O", "StageName": "Prospecting",
         "CloseDate": "2026-06-01"}])
    sf.clock.advance(20 * 60)  # the backfill's window ends well past the loads' lookback
    _ours(warehouse, "typed.com", "won.com", "open.com", "plain.com", "gone.com", "ours.com")
    config = _config(warehouse, {"id": "p-sf", "name": "Partner SF", "source": "salesforce",
                                 "crm": _sf_crm(sf)})
    report = run_tick(warehouse, config, [], options=BACKFILL, now=T0 + timedelta(minutes=20))
    assert report.status == "succeeded", report.errors
    assert _partner_rows(warehouse, "p-sf") == {
        "typed.com": "customer", "won.com": "customer", "open.com": "open_opportunity",
        "plain.com": "prospect", "gone.com": "customer"}
    assert _overlapping(warehouse, "p-sf") == {"typed.com", "won.com", "open.com", "plain.com",
                                               "gone.com"}
    assert report.counts.tick["partner_crm_api_calls"] > 0

    # In the partner's org: a deal opens on Plain Co, Gone Co is deleted, and a transaction
    # that committed late lands on Open Co stamped before the watermark (inside the
    # lookback). The next tick reads those, and nothing older.
    sf.clock.advance(10 * 60)
    sf.load("Opportunity", [{"AccountId": plain, "Name": "P", "StageName": "Prospecting",
                             "CloseDate": "2026-07-01"}])
    sf.delete(gone)
    sf.update("Account", open_, {"Name": "Open Company"}, modstamp=T0 + timedelta(minutes=15))
    sf.clock.advance(60)
    tick = run_tick(warehouse, config, [], now=T0 + timedelta(minutes=31))
    assert tick.status == "succeeded", tick.errors
    assert _partner_rows(warehouse, "p-sf") == {
        "typed.com": "customer", "won.com": "customer", "open.com": "open_opportunity",
        "plain.com": "open_opportunity"}
    # the deleted and the late one
    assert tick.counts.of("partner:p-sf", Stream.ACCOUNTS).pulled == 2
    with transaction(warehouse) as session:
        names = set(session.scalars(select(PartnerCrmAccount.name)
                                    .where(PartnerCrmAccount.is_deleted.is_(False))))
        assert "Open Company" in names and "Gone Co" not in names
    assert _overlapping(warehouse, "p-sf") == {"typed.com", "won.com", "open.com", "plain.com"}
    # Quiet for longer than the lookback: a tick reads nothing.
    for minutes in (60, 120):
        sf.clock.advance(3600)
        quiet = run_tick(warehouse, config, [], now=T0 + timedelta(minutes=minutes))
    assert quiet.counts.of("partner:p-sf", Stream.ACCOUNTS).pulled == 0
    assert quiet.counts.of("partner:p-sf", Stream.OPPORTUNITIES).pulled == 0
    # Never a write call to the partner's org, not one, in all of it.
    assert sf.write_calls.total() == 0, dict(sf.write_calls.calls)
    assert typed  # (loaded, read, never touched)


def test_a_partner_hubspot_portal_is_read_only_with_deletes_within_the_sweep_cadence(
    warehouse: Engine, partner_portal: HubSpotSandbox
) -> None:
    hs = partner_portal
    lifecycle, won_co, plain = hs.load("companies", [
        {"name": "Life Co", "domain": "life.com", "lifecyclestage": "customer"},
        {"name": "Deal Co", "domain": "deal.com", "lifecyclestage": "lead"},
        {"name": "Plain Co", "domain": "plainhs.com", "lifecyclestage": "lead"}])
    (deal,) = hs.load("deals", [{"dealname": "D", "amount": "100",
                                 "closedate": "2026-05-01T00:00:00.000Z"}])
    hs.associate(deal, won_co)
    hs.close_deal(deal, won=True)
    hs.clock.advance(60)
    _ours(warehouse, "life.com", "deal.com", "plainhs.com")
    config = _config(warehouse, {"id": "p-hs", "name": "Partner HS", "source": "hubspot",
                                 "crm": _hs_crm(hs)})
    first = run_tick(warehouse, config, [], options=BACKFILL, now=T0 + timedelta(minutes=1))
    assert first.status == "succeeded", first.errors
    assert _partner_rows(warehouse, "p-hs") == {
        "life.com": "customer", "deal.com": "customer", "plainhs.com": "prospect"}
    hs.clock.advance(60)
    hs.archive("companies", plain)
    hs.clock.advance(60)
    before = dict(hs.traffic.calls)
    soon = run_tick(warehouse, config, [], now=T0 + timedelta(minutes=5))
    assert soon.status == "succeeded", soon.errors
    # Each tick opens the partner's portal afresh, yet the archive is listed at most every 15
    # minutes (the backfill's sweep is kept with the watermarks), and no call reads a clock.
    calls = {k: n - before.get(k, 0) for k, n in hs.traffic.calls.items()
             if n != before.get(k, 0)}
    assert calls["POST /crm/v3/objects/companies/search"] == 1, calls
    assert not {"GET /crm/v3/objects/companies", "GET /crm/v3/objects/deals",
                "GET /crm/v3/properties/companies/{name}"} & set(calls), calls
    assert "plainhs.com" in _partner_rows(warehouse, "p-hs")
    hs.clock.advance(15 * 60)  # the next sweep is due: the archived company leaves the list
    later = run_tick(warehouse, config, [], now=T0 + timedelta(minutes=20))
    assert later.status == "succeeded", later.errors
    assert _partner_rows(warehouse, "p-hs") == {"life.com": "customer", "deal.com": "customer"}
    assert _overlapping(warehouse, "p-hs") == {"life.com", "deal.com"}
    # Through the API, nothing was written (the helper's own edits above are the only ones).
    assert [e for e in hs.write_log if e.source != "helper"] == []
    writes = {k: n for k, n in hs.traffic.calls.items()
              if k.split(" ")[0] in ("PATCH", "PUT", "DELETE")
              or (k.startswith("POST") and "/search" not in k and "/read" not in k)}
    assert writes == {}
    assert lifecycle


def test_the_connector_is_opened_read_only(partner_org: SalesforceSandbox) -> None:
    connector = partner_connector(parse_config(
        {"partners": [{"id": "p-sf", "name": "P", "source": "salesforce",
                       "crm": _sf_crm(partner_org)}]}, "<test>", {}).partners[0])
    with pytest.raises(ReadOnlyRefused, match="read-only; refused"):
        connector.write(Stream.ACCOUNTS, [FieldUpdate(Stream.ACCOUNTS, "001x", {"a": 1})])
    with pytest.raises(ReadOnlyRefused):
        connector.ensure_fields(check_only=False)
    assert partner_org.write_calls.total() == 0 and partner_org.traffic.total() == 0


def test_a_partner_crm_that_fails_fails_that_partner_only(
    warehouse: Engine, partner_org: SalesforceSandbox, tmp_path: Path
) -> None:
    partner_org.load("Account", [{"Name": "Solo", "Website": "solo.com"}])
    partner_org.clock.advance(60)
    _ours(warehouse, "solo.com", "csvco.com")
    csv_path = write_csv(tmp_path / "p.csv", [["C-1", "CSV Co", "csvco.com", "customer", "",
                                               ""]])
    config = _config(
        warehouse,
        {"id": "p-bad", "name": "Bad Creds", "source": "salesforce",
         "crm": _sf_crm(partner_org, client_secret="wrong-secret")},
        {"id": "p-nofield", "name": "No Field", "source": "salesforce",
         "crm": _sf_crm(partner_org, duns_field="DUNS_Number__c")},
        {"id": "p-good", "name": "Good", "source": "salesforce", "crm": _sf_crm(partner_org)},
        {"id": "p-csv", "name": "CSV Partner", "path": str(csv_path)})
    report = run_tick(warehouse, config, [], options=BACKFILL, now=T0 + timedelta(minutes=1))
    assert report.status == "partial"
    bad, nofield = report.errors
    assert bad.startswith("partner p-bad: its salesforce could not be read (")
    assert "[partners.crm] of partner 'p-bad'" in bad and "wrong-secret" not in bad
    assert nofield.startswith("partner p-nofield:") and "DUNS_Number__c" in nofield
    # The others landed and matched, in the same tick.
    assert _overlapping(warehouse, "p-good") == {"solo.com"}
    assert _overlapping(warehouse, "p-csv") == {"csvco.com"}
    assert _partner_rows(warehouse, "p-bad") == {}


def test_the_population_mapping_is_the_partners_to_set(warehouse: Engine) -> None:
    config = _config(warehouse, {
        "id": "p-map", "name": "Mapped", "source": "hubspot",
        "crm": {"access_token": "x"},
        "populations": {"types": {"Former Customer": "prospect", "evangelist": "customer"},
                        "customer_if_won": False, "customer_types": ["client"]}})
    partner = config.partners[0]
    rows = [("a", "Former Customer", None), ("b", "Client - Gold", None), ("c", None, "won"),
            ("d", "EVANGELIST", None), ("e", None, "open"), ("f", "customer", None)]
    with transaction(warehouse) as session:
        sync_partners_from_config(session, config, now=T0)
        for ext, kind, deal in rows:
            session.add(PartnerCrmAccount(partner_id="p-map", external_id=ext,
                                          name=f"Co {ext}", name_key=f"co {ext}",
                                          account_type=kind, modified_at=T0, landed_at=T0))
            if deal:
                session.add(PartnerCrmOpportunity(partner_id="p-map", external_id=f"o-{ext}",
                                                  account_external_id=ext, status=deal,
                                                  modified_at=T0, landed_at=T0))
        session.flush()
        assert rebuild_snapshot(session, partner, now=T0) == (6, 0, 0, 0)
    assert _partner_rows(warehouse, "p-map") == {
        "co a": "prospect", "co b": "customer", "co c": "prospect", "co d": "customer",
        "co e": "open_opportunity", "co f": "prospect"}


def test_doctor_checks_a_partner_crms_credentials(
    warehouse: Engine, partner_org: SalesforceSandbox, tmp_path: Path
) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    sf = partner_org

    def partner(pid: str, secret: str) -> str:
        return (f'[[partners]]\nid = "{pid}"\nname = "{pid}"\nsource = "salesforce"\n'
                f'[partners.crm]\ninstance_url = "{sf.url}"\nlogin_url = "{sf.url}"\n'
                f'client_id = "{sf.client_id}"\nclient_secret = "{secret}"\n'
                f'ca_bundle = "{sf.ca_file}"\n')

    toml = tmp_path / "ecosync.toml"
    toml.write_text(f'[warehouse]\nurl = "{url}"\n' + partner("p-ok", sf.client_secret)
                    + partner("p-ko", "not-the-secret"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(toml), "doctor", "--format", "json"])
    checks = {(c["area"], c["name"]): c for c in json.loads(result.stdout)["checks"]}
    assert checks[("partner p-ok", "crm")]["status"] == "ok"
    failed = checks[("partner p-ko", "crm")]
    assert failed["status"] == "fail" and "[partners.crm]" in failed["fix"]
    assert "not-the-secret" not in result.output
    assert sf.write_calls.total() == 0
