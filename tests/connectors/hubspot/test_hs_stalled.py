"""A pager that stops making progress fails loudly (issue 14.7).

The emulator's `repeat_page` fault is a stuck cursor: a next-page request of the list or the
search endpoint is answered with that endpoint's previous answer again. The pull stops at
once with a clear error instead of asking for the same page until the budget runs out, and
the stream's watermark stays where the last committed page left it.
"""

from __future__ import annotations

import pytest
from hs_support import T0, companies, deals, land_all
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.base import PagingStalled, Watermark
from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox
from schema.models import Account, Opportunity
from schema.records import Stream
from sync.ingest import read_watermark

LIST_COMPANIES = "GET /crm/v3/objects/companies"
SEARCH_DEALS = "POST /crm/v3/objects/deals/search"


def _count(engine: Engine, model: type[Account] | type[Opportunity]) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _mark(engine: Engine, stream: Stream) -> Watermark | None:
    with Session(engine) as session:
        return read_watermark(session, "hubspot", stream)


def test_given_a_stuck_list_cursor_when_backfilling_then_the_pull_stops_without_a_watermark(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine
) -> None:
    sandbox.load("companies", companies(450))  # five list pages
    sandbox.faults.configure(repeat_page=1.0)

    with pytest.raises(PagingStalled, match="companies list: the API stopped making progress"):
        land_all(warehouse, "hubspot", connector.pull(Stream.ACCOUNTS, None, T0))

    assert sandbox.traffic.calls[LIST_COMPANIES] == 2  # page 1, then page 1 again: stop
    assert sandbox.faults.fired["repeat_page"] == 1
    assert _count(warehouse, Account) == 0  # page 1 was held back for the final watermark
    assert _mark(warehouse, Stream.ACCOUNTS) is None  # the backfill did not complete


def test_given_a_stuck_search_when_pulling_incrementally_then_the_watermark_stays(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine
) -> None:
    sandbox.load("deals", deals(5))
    land_all(warehouse, "hubspot", connector.pull(Stream.OPPORTUNITIES, None, T0))
    sandbox.clock.advance(3600)
    new = sandbox.load("deals", deals(500, start=5))  # three search pages
    sandbox.clock.advance(1)
    since = Watermark(T0, "")
    sandbox.faults.configure(repeat_page=1.0)

    with pytest.raises(PagingStalled, match="deals search: the API stopped making progress"):
        land_all(warehouse, "hubspot",
                 connector.pull(Stream.OPPORTUNITIES, since, sandbox.clock.now()))

    assert sandbox.traffic.calls[SEARCH_DEALS] == 2  # page 1, then page 1 again: stop
    # Search pages wait for their group's one association read (1,000 deals), so the first
    # page was not landed either: nothing new, and the watermark is where it was.
    assert _count(warehouse, Opportunity) == 5 and len(new) == 500
    assert _mark(warehouse, Stream.OPPORTUNITIES) == Watermark(T0, "")
