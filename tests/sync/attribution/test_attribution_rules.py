"""The pure rules of DESIGN.md 6 on hand-made inputs: window, sourced rules, amount models."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from sync.attribution.rules import (
    RULE_LEAD_SOURCE,
    RULE_REFERRING_FIELD,
    OppFacts,
    OverlapSpan,
    allocate,
    attribute,
    config_version,
    influence_window,
)
from sync.config import AttributionConfig

CREATED = datetime(2026, 3, 1, tzinfo=UTC)
CLOSE = date(2026, 4, 30)
PARTNERS = {"alpha": "Alpha Cloud", "beta": "Beta Consulting", "gamma": "Gamma Resale"}


def span(i: int, pid: str, first: datetime, ended: datetime | None = None,
         population: str = "customer") -> OverlapSpan:
    return OverlapSpan(i, pid, PARTNERS[pid], population, first, ended)


def facts(amount: str = "1000.00", *, lead: str | None = None,
          ref: str | None = None) -> OppFacts:
    return OppFacts(Decimal(amount), CREATED, CLOSE, lead, ref)


def test_window_runs_from_lookback_before_creation_to_the_end_of_the_close_day() -> None:
    start, end = influence_window(CREATED, CLOSE, 90)
    assert start == CREATED - timedelta(days=90)
    assert end == datetime(2026, 5, 1, tzinfo=UTC)


def test_influence_is_any_overlap_active_in_the_window() -> None:
    start = CREATED - timedelta(days=90)
    spans = [
        span(1, "alpha", start - timedelta(days=300), ended=start + timedelta(hours=1)),
        span(2, "beta", start - timedelta(days=300), ended=start),  # ended as the window opens
        span(3, "gamma", datetime(2026, 5, 1, tzinfo=UTC)),  # first seen the day after close
    ]
    result = attribute(facts(), spans, PARTNERS, AttributionConfig())
    assert [c.partner_id for c in result.credits] == ["alpha"]


def test_referring_field_names_a_partner_by_id_or_name_case_insensitively() -> None:
    spans = [span(1, "alpha", CREATED - timedelta(days=5))]
    by_name = attribute(facts(ref="  beta CONSULTING "), spans, PARTNERS, AttributionConfig())
    assert (by_name.sourcing_partner_id, by_name.sourced_rule) == ("beta",
                                                                   RULE_REFERRING_FIELD)
    # The referrer has no overlap: credited as source, without a population.
    beta = next(c for c in by_name.credits if c.partner_id == "beta")
    assert (beta.kind, beta.population, beta.overlap_id) == ("sourced", None, None)
    by_id = attribute(facts(ref="ALPHA"), spans, PARTNERS, AttributionConfig())
    assert by_id.sourcing_partner_id == "alpha"


def test_lead_source_credits_the_earliest_overlap_before_creation() -> None:
    spans = [span(1, "alpha", CREATED - timedelta(days=10)),
             span(2, "beta", CREATED - timedelta(days=40)),
             span(3, "gamma", CREATED + timedelta(days=1))]
    config = AttributionConfig(sourced_lead_sources=["Partner Referral"])
    result = attribute(facts(lead="partner referral"), spans, PARTNERS, config)
    assert (result.sourcing_partner_id, result.sourced_rule) == ("beta", RULE_LEAD_SOURCE)
    assert attribute(facts(lead="Web"), spans, PARTNERS, config).sourcing_partner_id is None
    late_only = attribute(facts(lead="Partner Referral"), spans[2:], PARTNERS, config)
    assert late_only.sourcing_partner_id is None  # no overlap began before creation


def test_amount_models() -> None:
    spans = [span(1, "alpha", CREATED, population="customer"),
             span(2, "beta", CREATED, population="prospect"),
             span(3, "gamma", CREATED, population="prospect")]

    def amounts(amount: str, **config: object) -> dict[str, Decimal | None]:
        result = attribute(facts(amount, ref="gamma"), spans, PARTNERS,
                           AttributionConfig(**config))  # type: ignore[arg-type]
        return {c.partner_id: c.amount for c in result.credits}

    assert amounts("100.00") == {"gamma": Decimal("33.34"), "alpha": Decimal("33.33"),
                                 "beta": Decimal("33.33")}
    assert amounts("1000.00", amount_model="sourced_first", sourced_share=0.5) == {
        "gamma": Decimal("500.00"), "alpha": Decimal("250.00"), "beta": Decimal("250.00")}
    assert amounts("500.00", amount_model="population_weighted") == {
        "gamma": Decimal("100.00"), "alpha": Decimal("300.00"), "beta": Decimal("100.00")}


def test_sourced_first_gives_a_lone_source_everything() -> None:
    result = attribute(facts("99.99", ref="alpha"), [span(1, "alpha", CREATED)], PARTNERS,
                       AttributionConfig(amount_model="sourced_first", sourced_share=0.3))
    assert [(c.partner_id, c.amount) for c in result.credits] == [("alpha", Decimal("99.99"))]


@pytest.mark.parametrize(("total", "weights", "expected"), [
    ("0.02", [1, 1, 1], ["0.01", "0.01", "0.00"]),
    ("-0.02", [1, 1, 1], ["-0.01", "-0.01", "0.00"]),
    ("10.00", [0, 0], ["5.00", "5.00"]),
    ("1.00", [2, 1], ["0.67", "0.33"]),
])
def test_allocate_is_exact_and_deterministic(total: str, weights: list[int],
                                             expected: list[str]) -> None:
    assert allocate(Decimal(total), [Decimal(w) for w in weights]) == [
        Decimal(e) for e in expected]


def test_config_version_changes_with_the_rules_only() -> None:
    assert config_version(AttributionConfig()) == config_version(AttributionConfig())
    assert config_version(AttributionConfig()) != config_version(
        AttributionConfig(amount_model="sourced_first"))
    assert len(config_version(AttributionConfig())) == 12
