"""Company country from the emulated portal, through the real client, into the warehouse."""

from __future__ import annotations

from hs_support import companies, land_all
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.base import Watermark
from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox
from schema.models import Account
from schema.records import Stream

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

