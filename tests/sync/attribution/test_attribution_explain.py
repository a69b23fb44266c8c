"""Restamp on request and explain: the ledger as a reader sees it, under sharing."""

from __future__ import annotations

import pytest
from attribution_world import World, day
from sqlalchemy.orm import Session

from sync.attribution.explain import POOLED, explain, restamp
from sync.config import AttributionConfig
from sync.errors import UserError


def given_stamped(world: World) -> None:
    world.partner("alpha", "Alpha Cloud")
    world.partner("beta", "Beta Consulting", share={"prospect": "counts"})
    world.partner("gamma", "Gamma Secret", share={"customer": "hidden"})
    acc = world.account("A1")
    world.overlap(acc, "alpha", first=day(-200), population="customer")
    world.overlap(acc, "beta", first=day(-10), population="prospect")
    world.overlap(acc, "gamma", first=day(-10), population="customer")
    world.opportunity("O1", "A1", amount="900.00", lead_source="Partner Referral")
    world.stamp(AttributionConfig(sourced_lead_sources=["partner referral"]))


def test_restamp_makes_a_new_version_with_the_reason(world: World) -> None:
    given_stamped(world)
    with Session(world.engine) as s, s.begin():
        restamp(s, AttributionConfig(amount_model="sourced_first",
                                    sourced_lead_sources=["Partner Referral"]),
                "O1", "model changed",
                now=day(45))
    old, new = world.stamps("O1")
    assert old.superseded_at == day(45)
    assert (new.version, new.supersedes_id, new.reason) == (2, old.id, "model changed")
    assert new.close_key == old.close_key
    assert new.amount_model == "sourced_first"
    assert world.credits(new.id)["alpha"] == ("sourced", pytest.approx(450))
    assert world.queued_for_plan("O1")


def test_restamp_refuses_open_or_unknown_opportunities(world: World) -> None:
    given_stamped(world)
    world.opportunity("O2", "A1", status="open")
    with Session(world.engine) as s:
        with pytest.raises(UserError, match="open"):
            restamp(s, AttributionConfig(), "O2", "why", now=day(45))
        with pytest.raises(UserError, match="no opportunity"):
            restamp(s, AttributionConfig(), "nope", "why", now=day(45))
        with pytest.raises(UserError, match="reason"):
            restamp(s, AttributionConfig(), "O1", "  ", now=day(45))


def test_explain_shows_active_and_history_under_sharing(world: World) -> None:
    given_stamped(world)
    with Session(world.engine) as s, s.begin():
        restamp(s, AttributionConfig(), "salesforce:O1", "check", now=day(45))
    with Session(world.engine) as s:
        ex = explain(s, "O1")
    assert ex.active is not None and ex.active.version == 2
    assert [v.version for v in ex.history] == [1]
    shown = {c.partner for c in ex.active.credits}
    assert shown == {"Alpha Cloud", POOLED}  # gamma hidden, beta counts-only
    text = ex.text()
    assert "Gamma" not in text and "Beta" not in text and "beta" not in text
    assert "Alpha Cloud" in text and "reason: check" in text
    assert ex.as_dict()["active"]["version"] == 2
