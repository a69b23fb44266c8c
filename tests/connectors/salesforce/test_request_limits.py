"""REQUEST_LIMIT_EXCEEDED is several limits: only the daily allocation stops the run.

Both bodies come from the sandbox (`TotalRequests Limit exceeded.` and
`ConcurrentPerOrgLongTxn Limit exceeded.`); each test runs a whole tick and asserts its
outcome: the run's status, what landed, and how long ecosync waits (inside the tick, or
before the next one).
"""

from __future__ import annotations

import pytest
from sf_support import Sleeps, load_accounts
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.base import JITTER, WAIT_INITIAL_S, Action, RateLimited, TransientError
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.errors import request_limit
from sandbox.salesforce import SalesforceSandbox
from schema.models import SyncRun
from schema.records import Stream
from sync.config import Config, CrmConfig
from sync.ingest import live_count
from sync.tick import run_tick


def _tick(sandbox: SalesforceSandbox, connector: SalesforceConnector,
          warehouse: Engine) -> None:
    config = Config(crm=CrmConfig(salesforce=connector.config))
    sandbox.clock.advance(1)  # a tick reads up to the org's clock, frozen with the records
    run_tick(warehouse, config, [connector])


def _run(warehouse: Engine) -> SyncRun:
    with Session(warehouse) as session:
        return session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()  # type: ignore[return-value]


def test_given_the_daily_allocation_is_spent_then_the_run_stops_and_waits_an_hour(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine,
    sleeps: Sleeps,
) -> None:
    load_accounts(sandbox, 20)
    sandbox.faults.next(rate_limit=1)  # the next call gets `TotalRequests Limit exceeded.`

    with pytest.raises(RateLimited) as err:
        _tick(sandbox, connector, warehouse)

    assert err.value.retry_after_s == 3600  # the daemon's wait before the next tick
    assert "TotalRequests Limit exceeded." in str(err.value)
    assert not sleeps  # never retried inside the tick
    run = _run(warehouse)
    assert run.status == "failed" and "TotalRequests" in (run.error or "")
    with Session(warehouse) as session:
        assert live_count(session, connector.name, Stream.ACCOUNTS) == 0


def test_given_the_concurrent_long_request_limit_then_the_tick_backs_off_and_completes(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine,
    sleeps: Sleeps,
) -> None:
    load_accounts(sandbox, 20)
    # The org's usage is far below its allocation: this refusal clears in seconds.
    sandbox.faults.next(concurrent_limit=2)

    _tick(sandbox, connector, warehouse)

    assert sandbox.faults.fired["concurrent_limit"] == 2
    # DESIGN 8's backoff inside the tick: 0.5 s, then 1 s, each plus up to 25% jitter.
    assert len(sleeps) == 2
    assert WAIT_INITIAL_S <= sleeps[0] <= WAIT_INITIAL_S * (1 + JITTER)
    assert 2 * WAIT_INITIAL_S <= sleeps[1] <= 2 * WAIT_INITIAL_S * (1 + JITTER)
    run = _run(warehouse)
    assert run.status == "succeeded" and run.error is None
    with Session(warehouse) as session:
        assert live_count(session, connector.name, Stream.ACCOUNTS) == 20


def test_given_a_concurrent_limit_that_persists_then_the_run_fails_without_an_hour_pause(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine,
    sleeps: Sleeps,
) -> None:
    load_accounts(sandbox, 20)
    sandbox.faults.configure(concurrent_limit=1.0)

    with pytest.raises(TransientError, match="ConcurrentPerOrgLongTxn"):
        _tick(sandbox, connector, warehouse)

    assert len(sleeps) == 5  # six attempts, then the next tick (one interval) tries again
    assert _run(warehouse).status == "failed"


@pytest.mark.parametrize(("message", "used", "limit", "action"), [
    ("TotalRequests Limit exceeded.", 10, 100_000, Action.RATE_LIMITED),  # the message wins
    ("ConcurrentPerOrgLongTxn Limit exceeded.", 100_000, 100_000, Action.RETRY),
    ("ConcurrentRequests Limit exceeded.", None, None, Action.RETRY),
    ("Request limit exceeded", 99_990, 100_000, Action.RETRY),  # unknown wording: usage says
    ("Request limit exceeded", 100_000, 100_000, Action.RATE_LIMITED),
    ("", None, None, Action.RATE_LIMITED),  # nothing to go on: stopping is the safe choice
])
def test_request_limit_is_told_apart_by_message_then_by_the_orgs_usage(
    message: str, used: int | None, limit: int | None, action: Action
) -> None:
    assert request_limit(message, used, limit) is action
