"""The attribution and working-set reports on a small hand-built warehouse, against figures
computed by hand (see the comments), with sharing applied."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from attribution_world import World
from sqlalchemy.orm import Session

from sync.attribution.periods import Quarter
from sync.reports.attribution import POOLED_NAME, Section, attribution_report
from sync.reports.working_set import classify, working_set_report

D = Decimal
ALL = ("customer", "open_opportunity", "prospect")
JAN1 = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 31, 12, tzinfo=UTC)


def ts(y: int, mo: int, d: int) -> datetime:
    return datetime(y, mo, d, 12, tzinfo=UTC)


@pytest.fixture
def dataset(world: World) -> World:
    """alpha shares in full, beta counts only, gamma hides everything.

    A, B, C, E Enterprise, D SMB. Overlaps from 2025-01-01: alpha-A, beta-B, gamma-C,
    alpha-E, gamma-E; alpha-F from 2025-05-01, ended 2026-02-15.
    O1 A won 1000 (30 d), O2 A lost 2000, O3 B won 3000 (30 d), O4 C won 4000 (60 d),
    O5 D lost 500, O6 D won 600 in 2025Q4 (30 d), O7 E won 1000 (30 d; alpha 500 + gamma 500),
    O8 F open.
    """
    world.partner("alpha", "Alpha Cloud")
    world.partner("beta", "Beta Consulting", share=dict.fromkeys(ALL, "counts"))
    world.partner("gamma", "Gamma Secret", share=dict.fromkeys(ALL, "hidden"))
    acc = {x: world.account(x, account_type="Enterprise" if x != "D" else "SMB")
           for x in "ABCDEF"}
    for x, pid in (("A", "alpha"), ("B", "beta"), ("C", "gamma"), ("E", "alpha"),
                   ("E", "gamma")):
        world.overlap(acc[x], pid, first=JAN1,
                      population="prospect" if pid == "beta" else "customer")
    world.overlap(acc["F"], "alpha", first=ts(2025, 5, 1), ended=ts(2026, 2, 15))
    opps: list[tuple[str, str, str, str, datetime, date | None]] = [
        ("O1", "A", "won", "1000", ts(2026, 1, 5), date(2026, 2, 4)),
        ("O2", "A", "lost", "2000", ts(2026, 1, 10), date(2026, 3, 1)),
        ("O3", "B", "won", "3000", ts(2026, 1, 1), date(2026, 1, 31)),
        ("O4", "C", "won", "4000", ts(2026, 1, 1), date(2026, 3, 2)),
        ("O5", "D", "lost", "500", ts(2026, 1, 1), date(2026, 1, 11)),
        ("O6", "D", "won", "600", ts(2025, 11, 1), date(2025, 12, 1)),
        ("O7", "E", "won", "1000", ts(2026, 2, 1), date(2026, 3, 3)),
        ("O8", "F", "open", "100", ts(2026, 1, 20), None),
    ]
    for ext, account, status, amount, created, close in opps:
        world.opportunity(ext, account, status=status, amount=amount, created=created,
                          close=close)
    world.stamp(now=NOW)
    return world


def sections(world: World) -> dict[str, Section]:
    with Session(world.engine) as s:
        out = attribution_report(s, anchor=Quarter(2026, 1), today=NOW.date(),
                                 corporate_currency="USD", min_sample=2)
    return {x.name: x for x in out}


def by(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    [row] = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return row


def test_revenue_counts_each_won_deal_once(dataset: World) -> None:
    rows = sections(dataset)["revenue"].rows
    assert [r["period"] for r in rows] == ["2025Q2", "2025Q3", "2025Q4", "2026Q1",
                                          "trailing 12 months"]
    q1 = by(rows, period="2026Q1")
    # won O1 O3 O4 O7 = 9000; influenced O1 O3 O7 = 5000 (O4 only has hidden gamma)
    assert (q1["won_deals"], q1["won_revenue"]) == (4, D("9000.00"))
    assert (q1["influenced_deals"], q1["ecosystem_influenced_revenue"]) == (3, D("5000.00"))
    assert q1["influenced_share_pct"] == D("55.6")
    t = by(rows, period="trailing 12 months")
    assert (t["won_deals"], t["won_revenue"], t["influenced_share_pct"]) == (
        5, D("9600.00"), D("52.1"))
    assert by(rows, period="2025Q2")["influenced_share_pct"] is None


def test_partner_revenue_pools_counts_only_and_drops_hidden(dataset: World) -> None:
    rows = [r for r in sections(dataset)["partners"].rows if r["period"] == "2026Q1"]
    assert [(r["partner"], r["won_deals"], r["influenced_revenue"], r["attributed_revenue"])
            for r in rows] == [(POOLED_NAME, 1, D("3000.00"), D("3000.00")),
                               ("Alpha Cloud", 2, D("2000.00"), D("1500.00"))]
    assert not any("Gamma" in str(v) or "Beta" in str(v) or v in ("gamma", "beta")
                   for r in sections(dataset)["partners"].rows for v in r.values())


def test_comparison_with_and_without_a_partner(dataset: World) -> None:
    rows = sections(dataset)["comparison"].rows
    w = by(rows, period="trailing 12 months", group="with partner")
    wo = by(rows, period="trailing 12 months", group="without partner")
    # with: O1 O2 O3 O7 (3 won; sizes 1000 3000 1000; 30 days each)
    assert (w["closed"], w["won"], w["win_rate_pct"], w["avg_deal_size"],
            w["avg_days_to_close"]) == (4, 3, D("75.0"), D("1666.67"), D("30.00"))
    # without: O4 (won 4000, 60 d), O5 lost, O6 (won 600, 30 d)
    assert (wo["closed"], wo["won"], wo["win_rate_pct"], wo["avg_deal_size"],
            wo["avg_days_to_close"]) == (3, 2, D("66.7"), D("2300.00"), D("45.00"))
    diff = by(rows, period="trailing 12 months", group="difference")
    assert (diff["win_rate_pct"], diff["avg_days_to_close"]) == (D("8.3"), D("-15.0"))


def test_matched_cohorts_reverse_the_raw_lift(dataset: World) -> None:
    rows = sections(dataset)["cohorts"].rows
    # The only cohort with both kinds: Enterprise, <10k, 2026Q1: O1 O2 O3 O7 against O4.
    cohort = by(rows, segment="Enterprise")
    assert (cohort["band"], cohort["quarter"], cohort["with_closed"],
            cohort["without_closed"]) == ("<10k", "2026Q1", 4, 1)
    assert cohort["win_rate_lift_pp"] == D("-25.0")
    assert by(rows, segment="all, raw")["win_rate_lift_pp"] == D("8.3")
    matched = by(rows, segment="all, matched cohorts (weighted)")
    assert (matched["win_rate_lift_pp"], matched["deal_size_diff"],
            matched["days_to_close_diff"]) == (D("-25.0"), D("-2333.3"), D("-30.0"))


def test_impact_rates_with_sample_sizes(dataset: World) -> None:
    rows = sections(dataset)["impact"].rows
    alpha = by(rows, partner="Alpha Cloud")
    # alpha: O1 O2 O7, 2 of 3 won (66.7 = baseline), size 1000/2300, 30 d against 45 d
    assert (alpha["sample"], alpha["baseline_sample"], alpha["win_rate_lift_pp"],
            alpha["deal_size_ratio"], alpha["cycle_change_pct"], alpha["rating"]) == (
        3, 3, D("0.0"), D("0.43"), D("-33.3"), "medium")
    assert by(rows, partner=POOLED_NAME)["rating"] == "not enough data"


def test_health(dataset: World) -> None:
    rows = sections(dataset)["health"].rows
    q1 = by(rows, period="2026Q1")
    assert (q1["active_partners"], q1["joint_deals"], q1["joint_won"], q1["overlaps_gained"],
            q1["overlaps_lost"]) == (2, 4, 3, 0, 1)
    assert by(rows, period="2025Q2")["overlaps_gained"] == 1
    assert by(rows, period="trailing 12 months")["overlaps_lost"] == 1


def test_working_set(dataset: World) -> None:
    with Session(dataset.engine) as s:
        rows = working_set_report(s, Quarter(2026, 1))
    # alpha: A, E (closed in Q1) and F (open O8, overlap ended mid-quarter) = 3: rolodex
    assert [(r["partner"], r["joint_accounts"], r["classification"], r["passes"],
             r["influenced_revenue"]) for r in rows] == [
        ("Alpha Cloud", 3, "rolodex", False, D("2000.00")),
        (POOLED_NAME, 1, None, None, D("3000.00"))]


@pytest.mark.parametrize(("n", "expected"), [
    (0, ("rolodex", False)), (7, ("rolodex", False)), (8, ("working set", True)),
    (15, ("working set", True)), (16, ("over-extended", False))])
def test_working_set_classification(n: int, expected: tuple[str, bool]) -> None:
    assert classify(n) == expected
