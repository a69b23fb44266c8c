"""A pager that stops making progress fails loudly (issue 14.7).

The sandbox's `repeat_page` fault is a stuck cursor: a next-page request is answered with the
previous page again. Without a guard the pull would ask for that page until the API budget ran
out; with it the stream stops at once with a clear error, and its watermark stays where the
last good page left it.
"""

from __future__ import annotations

import pytest
from sf_support import ConnectorFactory, land, later, load_accounts, load_opportunities, watermark
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.base import PagingStalled, Watermark
from connectors.salesforce import SalesforceConnector, bulk
from sandbox.salesforce import SalesforceSandbox
from schema.records import Stream
from sync.ingest import live_count


def _landed(engine: Engine, source: str, stream: Stream) -> int:
    with Session(engine) as session:
        return live_count(session, source, stream)


def _stalled_pull(connector: SalesforceConnector, warehouse: Engine, stream: Stream) -> None:
    pages = connector.pull(stream, None, later(1))
    with pytest.raises(PagingStalled, match="stopped making progress") as err:
        land(warehouse, connector.name, pages)
    assert "watermark stays" in str(err.value)


def test_given_a_stuck_query_cursor_then_the_rest_pull_stops_at_its_last_good_page(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    acc = load_accounts(sandbox, 1)
    opps = sorted(load_opportunities(sandbox, acc * 7000))  # 4 REST pages of up to 2,000
    sandbox.faults.configure(repeat_page=1.0)

    _stalled_pull(connector, warehouse, Stream.OPPORTUNITIES)

    # Page 1 came with the count, page 2 by queryMore; the third request got page 2 again.
    assert sandbox.faults.fired["repeat_page"] == 1
    assert sandbox.traffic.calls["queryMore"] == 2  # never asked again
    assert _landed(warehouse, connector.name, Stream.OPPORTUNITIES) == 4000
    # All rows share one SystemModstamp: the watermark is the 4,000th (stamp, id).
    mark = watermark(warehouse, connector.name, Stream.OPPORTUNITIES)
    assert mark is not None and mark.last_id == opps[3999]


def test_given_a_stuck_split_page_walk_then_the_pull_stops_at_the_same_bound(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    accounts = sorted(load_accounts(sandbox, 5000))  # Account: two long text fields, split pages
    sandbox.faults.configure(repeat_page=1.0)

    _stalled_pull(connector, warehouse, Stream.ACCOUNTS)

    assert sandbox.traffic.calls["composite"] == 2  # the first page, then its replay: stop
    assert _landed(warehouse, connector.name, Stream.ACCOUNTS) == 2000
    mark = watermark(warehouse, connector.name, Stream.ACCOUNTS)
    assert mark is not None and mark.last_id == accounts[1999]


def test_given_stuck_bulk_results_then_the_job_stops_and_the_watermark_stays(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accounts = sorted(load_accounts(sandbox, 5000))
    connector = make_connector(bulk_threshold=1000)
    monkeypatch.setattr(bulk, "RESULT_PAGE", 500)  # the 3,000 rows past the first page: 6
    sandbox.faults.configure(repeat_page=1.0)

    _stalled_pull(connector, warehouse, Stream.ACCOUNTS)

    assert sandbox.traffic.calls["bulk2.query.results"] == 2
    # The REST page that came with the count landed with its watermark; the unordered Bulk
    # rows carry none until the job's end, which never came.
    mark = watermark(warehouse, connector.name, Stream.ACCOUNTS)
    assert mark is not None and mark.last_id == accounts[1999]


def test_given_an_incremental_pull_that_stalls_then_the_watermark_stays_at_the_last_good_page(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    acc = load_accounts(sandbox, 1)
    load_opportunities(sandbox, acc * 10)
    land(warehouse, connector.name, connector.pull(Stream.OPPORTUNITIES, None, later(1)))
    before = watermark(warehouse, connector.name, Stream.OPPORTUNITIES)
    sandbox.clock.advance(3600)
    new = sorted(load_opportunities(sandbox, acc * 5000))
    sandbox.faults.configure(repeat_page=1.0)

    pages = connector.pull(Stream.OPPORTUNITIES, before, later(3601))
    with pytest.raises(PagingStalled):
        land(warehouse, connector.name, pages)

    # The first page (the lookback's 10 old rows, then 1,990 new ones) landed; its replay did
    # not: the watermark is that page's last row, and the next tick resumes from there.
    assert _landed(warehouse, connector.name, Stream.OPPORTUNITIES) == 2000
    assert watermark(warehouse, connector.name, Stream.OPPORTUNITIES) == Watermark(
        later(3600), new[1989])
