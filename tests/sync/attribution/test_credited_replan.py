"""Which stamped opportunities are re-planned when overlaps or a sharing policy change
(sync.attribution.credited): their written fields may depend on them (DESIGN.md 5)."""

from __future__ import annotations

from attribution_world import World, day
from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import Opportunity
from sync.attribution.credited import crediting, replanned_on_overlap_change


def _ids(world: World, query: object) -> set[str]:
    with Session(world.engine) as s:
        return set(s.scalars(select(Opportunity.external_id).where(
            Opportunity.id.in_(query))))  # type: ignore[arg-type]


def test_referral_stamps_follow_overlaps_and_every_stamp_follows_its_partners_policy(
    world: World,
) -> None:
    world.partner("alpha")
    world.partner("beta")
    acc = world.account("A1")
    world.overlap(acc, "alpha", first=day(-200))
    world.opportunity("REFERRED", "A1", referring="beta")  # beta: no overlap, by the field
    world.opportunity("INFLUENCED", "A1")  # alpha's overlap only
    world.opportunity("OPEN", "A1", status="open")
    world.stamp()

    with Session(world.engine) as s:
        follow = set(s.scalars(select(Opportunity.external_id).where(
            replanned_on_overlap_change())))
    assert follow == {"REFERRED", "OPEN"}
    assert _ids(world, crediting(["beta"])) == {"REFERRED"}
    assert _ids(world, crediting(["alpha"])) == {"REFERRED", "INFLUENCED"}
