"""Company country and owner (name, e-mail, from the owners API) from the emulated portal,
through the real client, into the warehouse."""

from __future__ import annotations

import io

from hs_support import companies, hubspot_config, land_all
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.base import Watermark
from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox
from schema.models import Account, CrmOwner
from schema.records import Stream
from sync.config import Config, CrmConfig
from sync.doctor import check_connector
from sync.logs import configure_logging

LIST_COMPANIES = "GET /crm/v3/objects/companies"
SEARCH_COMPANIES = "POST /crm/v3/objects/companies/search"


def _countries(engine: Engine) -> dict[str, str | None]:
    with Session(engine) as session:
        return {r.external_id: r.country for r in session.scalars(select(Account))}


def test_country_lands_from_backfill_and_incremental_reads(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine,
) -> None:
    rows = companies(3)
    rows[0]["country"] = "Germany"
    rows[1]["country"] = "  "
    ids = sandbox.load("companies", rows)
    until = sandbox.clock.now()

    land_all(warehouse, "hubspot", connector.pull(Stream.ACCOUNTS, None, until, deleted=False))

    assert _countries(warehouse) == {ids[0]: "Germany", ids[1]: None, ids[2]: None}
    assert sandbox.traffic.calls == {LIST_COMPANIES: 1}  # the list read carries it

    sandbox.clock.advance(300)
    sandbox.update("companies", ids[2], {"country": "Japan"})
    sandbox.clock.advance(300)
    pages = connector.pull(Stream.ACCOUNTS, Watermark(until, ""), sandbox.clock.now(),
                           deleted=False)
    land_all(warehouse, "hubspot", pages)
    assert _countries(warehouse)[ids[2]] == "Japan"
    assert sandbox.traffic.calls[SEARCH_COMPANIES] == 1



OWNERS = "GET /crm/v3/owners"


def _owners(engine: Engine) -> dict[str, tuple[str | None, str | None]]:
    with Session(engine) as session:
        return {o.owner_id: (o.name, o.email) for o in session.scalars(select(CrmOwner))}


def _owned(sandbox: HubSpotSandbox, owner_ids: list[str], n: int) -> list[str]:
    rows = companies(n)
    for i, row in enumerate(rows):
        row["hubspot_owner_id"] = owner_ids[i % len(owner_ids)]
    return sandbox.load("companies", rows)


def test_owner_names_come_from_the_owners_list_read_once_per_page_of_owners(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine,
) -> None:
    ids = [sandbox.add_owner(f"Rep{i}", "Seller", f"rep{i}@ourco.example")
           for i in range(150)]
    gone = sandbox.add_owner("Old", "Timer", "old@ourco.example", archived=True)
    _owned(sandbox, [*ids, gone], 500)
    until = sandbox.clock.now()

    land_all(warehouse, "hubspot", connector.pull(Stream.ACCOUNTS, None, until, deleted=False))

    # 5 list pages of companies; the owners list read once, 2 pages of 100; the deactivated
    # owner (still named on companies) from one read of the archived list.
    assert sandbox.traffic.calls == {LIST_COMPANIES: 5, OWNERS: 3}
    owners = _owners(warehouse)
    assert len(owners) == 151
    assert owners[ids[7]] == ("Rep7 Seller", "rep7@ourco.example")
    assert owners[gone] == ("Old Timer", "old@ourco.example")

    # A new rep: the next pull that meets them re-reads the list once.
    sandbox.traffic.reset()
    sandbox.clock.advance(60)
    new = sandbox.add_owner("Nina", "New", "nina@ourco.example")
    (company,) = _owned(sandbox, [new], 1)
    sandbox.clock.advance(60)
    land_all(warehouse, "hubspot", connector.pull(Stream.ACCOUNTS, Watermark(until, ""),
                                                  sandbox.clock.now(), deleted=False))
    assert sandbox.traffic.calls[OWNERS] == 2  # the live list again (2 pages)
    assert _owners(warehouse)[new] == ("Nina New", "nina@ourco.example")
    with Session(warehouse) as session:
        row = session.scalars(select(Account).where(Account.external_id == company)).one()
        assert row.owner_id == new


def test_renamed_owners_are_read_again_after_an_hour(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine,
) -> None:
    ann = sandbox.add_owner("Ann", "Archer", "ann@ourco.example")
    (company,) = _owned(sandbox, [ann], 1)
    start = sandbox.clock.now()
    land_all(warehouse, "hubspot", connector.pull(Stream.ACCOUNTS, None, start, deleted=False))
    sandbox.update_owner(ann, last_name="Archer-Lee", email="ann.lee@ourco.example")

    for minutes in (10, 70):  # within the hour: the cached list; after it: read again
        sandbox.clock.advance(minutes * 60)
        sandbox.update("companies", company, {"country": f"C{minutes}"})
        sandbox.clock.advance(1)
        land_all(warehouse, "hubspot", connector.pull(
            Stream.ACCOUNTS, Watermark(start, ""), sandbox.clock.now(), deleted=False))
        expected = ("Ann Archer", "ann@ourco.example") if minutes == 10 else (
            "Ann Archer-Lee", "ann.lee@ourco.example")
        assert _owners(warehouse)[ann] == expected
    assert sandbox.traffic.calls[OWNERS] == 2


def test_without_the_owners_scope_names_stay_empty_and_doctor_says_which_scope(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine,
) -> None:
    ann = sandbox.add_owner("Ann", "Archer", "ann@ourco.example")
    _owned(sandbox, [ann], 120)
    sandbox.revoke_scope("crm.objects.owners.read")
    out = io.StringIO()
    configure_logging("json", "info", stream=out)

    land_all(warehouse, "hubspot", connector.pull(Stream.ACCOUNTS, None, sandbox.clock.now(),
                                                  deleted=False))

    assert _owners(warehouse) == {}  # not a crash: the accounts landed, owners unknown
    with Session(warehouse) as session:
        owners = set(session.scalars(select(Account.owner_id)))
    assert owners == {ann}
    assert sandbox.traffic.calls[OWNERS] == 1  # asked once, not once per page
    connector.ensure_fields(check_only=False)
    problems = connector.check()
    assert any("lacks the crm.objects.owners.read scope" in p for p in problems)
    config = Config(crm=CrmConfig(hubspot=connector.config))
    lines = [c for c in check_connector(connector, config) if not c.passed]
    assert [(c.name, c.status) for c in lines] == [("readiness", "fail")]
    assert "crm.objects.owners.read" in lines[0].detail
    assert "ann@ourco.example" not in out.getvalue()


def test_a_partners_portal_read_only_makes_no_owners_call(
    sandbox: HubSpotSandbox, warehouse: Engine,
) -> None:
    ann = sandbox.add_owner("Ann", "Archer", "ann@partner.example")
    _owned(sandbox, [ann], 3)
    partner = HubSpotConnector(hubspot_config(sandbox), now=sandbox.clock.now, read_only=True)

    pages = list(partner.pull(Stream.ACCOUNTS, None, sandbox.clock.now(), deleted=False))

    assert [r.owner_name for p in pages for r in p.records] == [None] * 3
    assert sandbox.traffic.calls == {LIST_COMPANIES: 1}
