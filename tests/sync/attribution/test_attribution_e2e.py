"""On the Salesforce sandbox through the real tick: a close between two ticks is stamped and
its fields written in the same tick; reopening keeps the stamp; re-closing supersedes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sandbox.world import World, running_world
from schema.models import Account, AttributionStamp, Opportunity, Overlap
from schema.owned_fields import OWNED_FIELDS
from schema.records import Stream
from sync.config import Config
from sync.logs import MASKER
from sync.tick import TickOptions, run_tick
from sync.wiring import build_connectors

pytestmark = pytest.mark.slow

OPP_FIELDS = {f.logical: f.salesforce for f in OWNED_FIELDS if f.stream is Stream.OPPORTUNITIES}


@pytest.fixture
def env(tmp_path: Path, warehouse: Engine) -> Iterator[tuple[World, Config, Engine]]:
    with running_world(tmp_path / "world", seed=5, accounts=120, opportunities=240,
                       partners=3, salesforce=True, hubspot=False) as world:
        MASKER.add(world.env().values())
        config = world.config(warehouse.url.render_as_string(hide_password=False))
        yield world, config, warehouse


def tick(world: World, config: Config, engine: Engine, **options: object) -> None:
    world.advance_clocks(1)  # a tick reads up to the org's clock, in whole seconds
    connectors = build_connectors(config)
    for connector in connectors:
        connector.ensure_fields(check_only=False)
    run_tick(engine, config, connectors, options=TickOptions(**options))  # type: ignore[arg-type]
    world.advance_clocks(1)  # Salesforce keeps whole seconds: let our own writes' second pass


def stamps_of(engine: Engine, external_id: str) -> list[AttributionStamp]:
    with Session(engine, expire_on_commit=False) as s:
        return list(s.scalars(
            select(AttributionStamp).join(Opportunity,
                                          Opportunity.id == AttributionStamp.opportunity_id)
            .where(Opportunity.external_id == external_id)
            .order_by(AttributionStamp.version)))


def test_close_stamps_and_writes_in_the_same_tick_and_reclose_supersedes(
    env: tuple[World, Config, Engine],
) -> None:
    world, config, engine = env
    sf = world.salesforce
    assert sf is not None
    tick(world, config, engine, backfill=True, kind="backfill")
    tick(world, config, engine)
    with Session(engine) as s:
        overlapping = set(s.scalars(
            select(Account.external_id).join(Overlap, Overlap.account_id == Account.id)
            .where(Overlap.ended_at.is_(None))))
    opp = next(o for o in sf.records("Opportunity")
               if not o.get("IsClosed") and o.get("AccountId") in overlapping)
    assert stamps_of(engine, opp["Id"]) == []

    sf.close_opportunity(opp["Id"], won=True)
    tick(world, config, engine)

    [stamp] = stamps_of(engine, opp["Id"])
    assert (stamp.outcome, stamp.version, stamp.stamped_late) == ("won", 1, False)
    record = sf.get("Opportunity", opp["Id"])
    assert record is not None
    assert record[OPP_FIELDS["attribution_stamped_at"]]  # written by the tick that stamped
    assert record[OPP_FIELDS["partner_influenced"]] in (True, "true")

    sf.reopen_opportunity(opp["Id"])
    tick(world, config, engine)
    [still] = stamps_of(engine, opp["Id"])
    assert still.superseded_at is None

    sf.close_opportunity(opp["Id"], won=False)
    tick(world, config, engine)
    old, new = stamps_of(engine, opp["Id"])
    assert old.superseded_at is not None
    assert (new.version, new.supersedes_id, new.outcome) == (2, old.id, "lost")
