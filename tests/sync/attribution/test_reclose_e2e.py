"""Reopen, then close again to the same outcome on the same date (DESIGN.md 6, issue 14.2), on
the HubSpot sandbox through the real tick: the observed reopen makes a new stamp version,
whose time the deal's field then shows; a tick that died after stamping and its retry make
one stamp, not two."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import sync.attribution.stamp as stamp_module
import sync.stages.writeback as writeback_stage
from connectors.base import Connector
from sandbox.seed import SeedData, SeedPartner, hs_time
from sandbox.world import World, running_world
from schema.models import AttributionStamp
from schema.records import Stream
from sync.config import Config
from sync.logs import MASKER
from sync.tick import TickOptions, run_tick
from sync.wiring import build_connectors

pytestmark = pytest.mark.slow

PARTNER = SeedPartner("p-acme", "Acme Cloud", "technology",
                      {"customer": "full", "open_opportunity": "full", "prospect": "full"})
DEAL = "77001"
CLOSED_AT = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _data() -> SeedData:
    created = hs_time(datetime.now(UTC) - timedelta(days=30))
    return SeedData(
        sf_accounts=[], sf_opportunities=[],
        hs_companies=[{"id": "7700", "properties": {"name": "Reclose Inc",
                                                    "domain": "reclose.example",
                                                    "createdate": created}}],
        hs_deals=[{"id": DEAL, "company_id": "7700", "properties": {
            "dealname": "Reclose renewal", "dealstage": "contractsent", "pipeline": "default",
            "amount": "500.00", "deal_currency_code": "USD", "createdate": created}}],
        partners=[PARTNER],
        partner_rows={PARTNER.id: [{"external_id": "AC-1", "name": "Reclose",
                                    "domain": "reclose.example", "website": "",
                                    "population": "customer", "owner_name": "",
                                    "owner_email": ""}]},
        truth=frozenset(), truth_population={}, truth_fuzzy=frozenset())


@pytest.fixture
def env(tmp_path: Path, warehouse: Engine) -> Iterator[tuple[World, Config, list[Connector]]]:
    with running_world(tmp_path / "world", data=_data(), salesforce=False) as world:
        MASKER.add(world.env().values())
        config = world.config(warehouse.url.render_as_string(hide_password=False))
        connectors = build_connectors(config)
        for connector in connectors:
            connector.ensure_fields(check_only=False)
        yield world, config, connectors


class Ticks:
    """Ticks on a virtual clock: the sandbox's clock stands still at each tick's start, and
    a change made between two ticks is stamped at the previous tick's start, so each tick
    reads the changes before it (no waiting on the wall clock)."""

    def __init__(self, world: World, config: Config, connectors: list[Connector],
                 engine: Engine) -> None:
        assert world.hubspot is not None
        self.clock = world.hubspot.clock
        self.args = (engine, config, connectors)
        self.now = datetime.now(UTC)
        self.clock.freeze(self.now)

    def __call__(self, **options: Any) -> None:
        self.now += timedelta(seconds=10)
        self.clock.freeze(self.now)
        run_tick(*self.args, options=TickOptions(**options), now=self.now)


def _stamps(engine: Engine) -> list[AttributionStamp]:
    with Session(engine, expire_on_commit=False) as s:
        return list(s.scalars(select(AttributionStamp).order_by(AttributionStamp.version)))


def _stamped_at_field(world: World) -> datetime:
    assert world.hubspot is not None
    value = world.hubspot.get("deals", DEAL)["partner_attribution_stamped_at"]
    assert value, "the stamp time was never written"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_observed_reopen_and_same_reclose_is_a_new_version_written_to_the_crm(
    env: tuple[World, Config, list[Connector]], warehouse: Engine,
) -> None:
    world, config, connectors = env
    hs = world.hubspot
    assert hs is not None
    tick = Ticks(world, config, connectors, warehouse)
    tick(backfill=True, kind="backfill")

    hs.close_deal(DEAL, won=True, at=CLOSED_AT)
    tick()
    [first] = _stamps(warehouse)
    assert abs(_stamped_at_field(world) - first.stamped_at) < timedelta(seconds=1)

    hs.reopen_deal(DEAL)
    tick()
    [still] = _stamps(warehouse)
    assert still.superseded_at is None  # a reopened deal keeps showing its stamp

    hs.close_deal(DEAL, won=True, at=CLOSED_AT)  # same outcome, same close date
    tick()
    old, new = _stamps(warehouse)
    assert (new.version, new.supersedes_id, new.outcome, new.close_date) == (
        2, old.id, "won", old.close_date)
    assert old.superseded_at is not None and new.superseded_at is None
    assert abs(_stamped_at_field(world) - new.stamped_at) < timedelta(seconds=1)
    assert hs.get("deals", DEAL).get("sourcing_partner") is None
    assert hs.get("deals", DEAL)["influencing_partners"] == "Acme Cloud (customer)"

    # Quiet ticks change nothing.
    tick()
    assert len(_stamps(warehouse)) == 2


def _crashing(real: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)  # the real stage runs, then the process "dies"
        if isinstance(result, Iterator):
            next(result, None)
        raise KeyboardInterrupt("killed")
    return run


def test_ticks_that_die_around_stamping_a_reclose_and_their_retries_stamp_once(
    env: tuple[World, Config, list[Connector]], warehouse: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, config, connectors = env
    hs = world.hubspot
    assert hs is not None
    tick = Ticks(world, config, connectors, warehouse)
    tick(backfill=True, kind="backfill")
    hs.close_deal(DEAL, won=True, at=CLOSED_AT)
    tick()
    hs.reopen_deal(DEAL)
    tick()
    hs.close_deal(DEAL, won=True, at=CLOSED_AT)

    # Killed inside the stamp stage, before its commit: nothing of it is kept.
    with monkeypatch.context() as m:
        m.setattr(stamp_module, "stamp_closed", _crashing(stamp_module.stamp_closed))
        with pytest.raises(KeyboardInterrupt):
            tick()
    assert len(_stamps(warehouse)) == 1
    # Killed after the stamp stage committed, before the fields were planned and pushed.
    with monkeypatch.context() as m:
        m.setitem(writeback_stage._PLANNERS, Stream.OPPORTUNITIES,
                  _crashing(writeback_stage._PLANNERS[Stream.OPPORTUNITIES]))
        with pytest.raises(KeyboardInterrupt):
            tick()
    assert [s.version for s in _stamps(warehouse)] == [1, 2]

    tick()  # the retry
    tick()

    stamps = _stamps(warehouse)
    assert [s.version for s in stamps] == [1, 2]
    assert abs(_stamped_at_field(world) - stamps[1].stamped_at) < timedelta(seconds=1)
