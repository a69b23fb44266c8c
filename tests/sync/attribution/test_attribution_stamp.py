"""The stamp stage on a warehouse: one stamp per close, reopen/re-close, restamp, late."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from attribution_world import World, day
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schema.models import AttributionStamp
from sync.config import AttributionConfig, attribution_problems


def given_two_partner_account(world: World) -> int:
    world.partner("alpha", "Alpha Cloud")
    world.partner("beta", "Beta Consulting")
    acc = world.account("A1")
    world.overlap(acc, "alpha", first=day(-200), population="customer")
    world.overlap(acc, "beta", first=day(-10), population="prospect")
    return acc


def test_closed_opportunity_gets_one_stamp_with_credits_that_sum(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1", amount="1000.01")

    stats = world.stamp()

    assert stats.stamped == 1
    [stamp] = world.stamps("O1")
    assert (stamp.version, stamp.superseded_at, stamp.outcome) == (1, None, "won")
    assert stamp.close_key == "salesforce:O1:won:2026-02-04"
    credits = world.credits(stamp.id)
    assert set(credits) == {"alpha", "beta"}
    assert sum(a for _, a in credits.values() if a is not None) == Decimal("1000.01")
    assert {p["partner_id"]: p["population"] for p in stamp.evidence["partners"]} == {
        "alpha": "customer", "beta": "prospect"}
    opp = world.opp("O1")
    assert opp.closed_seen_at == day(31) and world.queued_for_plan("O1")


def test_stamping_again_changes_nothing(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    stats = world.stamp(now=day(32))
    assert stats.stamped == 0
    assert world.count_stamps() == 1


def test_crash_after_insert_before_closed_seen_at_is_recovered(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    world.update_opp("O1", closed_seen_at=None)  # the sighting was lost, the stamp was not

    stats = world.stamp(now=day(33))

    assert (stats.stamped, stats.recovered) == (0, 1)
    assert world.count_stamps() == 1
    assert world.opp("O1").closed_seen_at == day(33)


def test_reopen_keeps_stamp_until_reclose_which_supersedes(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    world.update_opp("O1", status="open")
    stats = world.stamp(now=day(40))
    assert stats.reopened == 1
    [still] = world.stamps("O1")
    assert still.superseded_at is None
    assert world.opp("O1").closed_seen_at is None

    world.update_opp("O1", status="lost", close_date=date(2026, 3, 1))
    stats = world.stamp(now=day(60))

    assert (stats.stamped, stats.superseded) == (1, 1)
    old, new = world.stamps("O1")
    assert old.superseded_at == day(60)
    assert (new.version, new.supersedes_id, new.outcome) == (2, old.id, "lost")
    assert new.superseded_at is None


def test_reclose_between_ticks_to_other_outcome_is_a_new_close(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    world.update_opp("O1", status="lost")  # reopened and lost again, never seen open
    world.stamp(now=day(50))
    old, new = world.stamps("O1")
    assert old.superseded_at == day(50) and new.version == 2


def test_overlap_changes_after_close_never_change_the_stamp(world: World) -> None:
    acc = given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    world.partner("gamma")
    world.overlap(acc, "gamma", first=day(20))
    world.update_opp("O1", name="renamed")  # the record changes too: still the same close
    world.stamp(now=day(90))
    [stamp] = world.stamps("O1")
    assert set(world.credits(stamp.id)) == {"alpha", "beta"}


def test_late_stamp_says_so(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp(late=True)
    [stamp] = world.stamps("O1")
    assert stamp.stamped_late and stamp.evidence["late"] and "late_note" in stamp.evidence


def test_corporate_amount_at_the_close_date_rate(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1", amount="100.00", currency="EUR")
    world.stamp(AttributionConfig(static_rates={"EUR": 1.08}))
    [stamp] = world.stamps("O1")
    assert (stamp.corporate_amount, stamp.corporate_currency) == (Decimal("108.00"), "USD")
    assert stamp.exchange_rate == Decimal("1.08")


def test_unique_close_key_and_version_rejects_a_second_insert(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    [stamp] = world.stamps("O1")
    with Session(world.engine) as s:
        s.add(AttributionStamp(
            opportunity_id=stamp.opportunity_id, close_key=stamp.close_key, version=1,
            outcome="won", amount_model="even", rule_config_version="x", evidence={},
            stamped_at=day(40)))
        with pytest.raises(IntegrityError):
            s.commit()


def test_rule_validation_names_the_key_and_the_fix() -> None:
    assert attribution_problems(AttributionConfig()) == []
    problems = attribution_problems(AttributionConfig(
        corporate_currency="dollars", static_rates={"EUR": 0.0, "euro": 1.0},
        sourced_lead_sources=[" "], amount_model="population_weighted",
        population_weights={"customer": 0.0}))
    assert len(problems) == 5
    assert any("attribution.static_rates.EUR must be a positive rate" in p for p in problems)


def test_observed_reopen_then_reclose_to_the_same_outcome_and_date_is_a_new_version(
    world: World,
) -> None:
    # The reopen was seen and recorded: a fact, so the re-close is a close of its own.
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    world.update_opp("O1", status="open")
    assert world.stamp(now=day(40)).reopened == 1
    assert world.opp("O1").reopens_seen == 1
    world.update_opp("O1", status="won")
    stats = world.stamp(now=day(41))
    assert (stats.stamped, stats.superseded, stats.recovered) == (1, 1, 0)
    old, new = world.stamps("O1")
    assert (old.close_key, old.superseded_at) == ("salesforce:O1:won:2026-02-04", day(41))
    assert (new.version, new.supersedes_id, new.superseded_at) == (2, old.id, None)
    assert new.close_key == "salesforce:O1:won:2026-02-04:reopen1"
    assert (new.outcome, new.close_date) == (old.outcome, old.close_date)


def test_retry_of_a_reclose_makes_no_second_stamp(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    world.update_opp("O1", status="open")
    world.stamp(now=day(40))
    world.update_opp("O1", status="won")
    world.stamp(now=day(41))
    world.update_opp("O1", closed_seen_at=None)  # the sighting was lost, the stamp was not

    stats = world.stamp(now=day(42))
    again = world.stamp(now=day(43))

    assert (stats.stamped, stats.recovered, again.stamped) == (0, 1, 0)
    assert [s.version for s in world.stamps("O1")] == [1, 2]
    assert world.opp("O1").reopens_seen == 1


def test_unseen_reopen_and_reclose_to_the_same_outcome_and_date_keeps_the_stamp(
    world: World,
) -> None:
    # Reopened and closed again between two ticks: nothing observed differs from the close.
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    world.update_opp("O1", status="won", name="touched by the reopen")
    stats = world.stamp(now=day(41))
    assert (stats.stamped, stats.reopened) == (0, 0)
    assert len(world.stamps("O1")) == 1


def test_two_observed_reopens_make_three_versions(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    for n in (1, 2):
        world.update_opp("O1", status="open")
        world.stamp(now=day(40 + 2 * n))
        world.update_opp("O1", status="won")
        world.stamp(now=day(41 + 2 * n))
    keys = [(s.version, s.close_key, s.superseded_at is None) for s in world.stamps("O1")]
    assert keys == [(1, "salesforce:O1:won:2026-02-04", False),
                    (2, "salesforce:O1:won:2026-02-04:reopen1", False),
                    (3, "salesforce:O1:won:2026-02-04:reopen2", True)]


def test_won_then_lost_then_won_again_on_the_first_date_is_a_third_close(world: World) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.stamp()
    world.update_opp("O1", status="lost")
    world.stamp(now=day(40))
    world.update_opp("O1", status="won")
    world.stamp(now=day(41))
    keys = [(s.version, s.close_key, s.superseded_at is None) for s in world.stamps("O1")]
    assert keys == [(1, "salesforce:O1:won:2026-02-04", False),
                    (2, "salesforce:O1:lost:2026-02-04", False),
                    (3, "salesforce:O1:won:2026-02-04#2", True)]


def test_missing_close_date_is_the_day_first_seen_and_a_retry_next_day_is_the_same_close(
    world: World,
) -> None:
    given_two_partner_account(world)
    world.opportunity("O1", "A1")
    world.update_opp("O1", close_date=None)
    world.stamp(now=day(31))
    world.update_opp("O1", closed_seen_at=None)  # crashed; retried the next day
    stats = world.stamp(now=day(32))
    assert (stats.stamped, stats.recovered) == (0, 1)
    [stamp] = world.stamps("O1")
    assert stamp.close_date == day(31).date()
    assert stamp.close_key == "salesforce:O1:won:no-close-date"
    assert "close_date_note" in stamp.evidence
