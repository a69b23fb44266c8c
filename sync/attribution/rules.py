"""Attribution rules (DESIGN.md 6) as pure functions: no database, no clock.

The stage (`sync.attribution.stamp`) gathers the facts of one close into an `OppFacts` and a
list of `OverlapSpan`s, calls `attribute`, and writes the `Attribution` it returns as a stamp.
Everything here is deterministic in its inputs, so a retry after a crash computes the same
stamp, and property tests need neither a warehouse nor a clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from schema.records import POPULATION_RANK, Population
from sync.config import AttributionConfig

CENT = Decimal("0.01")
RULE_REFERRING_FIELD = "referring_partner_field"
RULE_LEAD_SOURCE = "lead_source_earliest_overlap"


@dataclass(frozen=True)
class OverlapSpan:
    """One overlap row of the opportunity's account, with its history interval."""

    overlap_id: int
    partner_id: str
    partner_name: str
    population: str
    first_seen_at: datetime
    ended_at: datetime | None
    method: str = ""


@dataclass(frozen=True)
class OppFacts:
    amount: Decimal | None
    created_at: datetime | None
    close_date: date
    lead_source: str | None
    referring_partner: str | None


@dataclass(frozen=True)
class Credit:
    partner_id: str
    partner_name: str
    kind: str  # sourced / influenced
    population: str | None  # None: credited by the CRM field alone, no overlap in the window
    overlap_id: int | None
    amount: Decimal | None


@dataclass(frozen=True)
class Attribution:
    window_start: datetime
    window_end: datetime
    influencers: tuple[OverlapSpan, ...]  # every overlap active in the window (evidence)
    sourcing_partner_id: str | None
    sourced_rule: str | None
    credits: tuple[Credit, ...]  # one per partner; sourcing partner first, then by partner id


def config_version(config: AttributionConfig) -> str:
    """A short, stable hash of the rule config: which rules a stamp was made under."""
    payload = json.dumps(asdict(config), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def influence_window(
    created_at: datetime | None, close_date: date, lookback_days: int
) -> tuple[datetime, datetime]:
    """[created_at − lookback, end of the close date) in UTC.

    The close date is a calendar date, so the whole day counts. Without a creation time the
    window starts lookback days before the close date.
    """
    end = datetime.combine(close_date + timedelta(days=1), time(), tzinfo=UTC)
    anchor = created_at or datetime.combine(close_date, time(), tzinfo=UTC)
    start = min(anchor, end) - timedelta(days=lookback_days)
    return start, end


def active_in(span: OverlapSpan, start: datetime, end: datetime) -> bool:
    """Half-open intervals [first_seen, ended) and [start, end) intersect."""
    return span.first_seen_at < end and (span.ended_at is None or span.ended_at > start)


def _rank(population: str) -> int:
    try:
        return POPULATION_RANK[Population(population)]
    except ValueError:
        return len(POPULATION_RANK)


def strongest(spans: Sequence[OverlapSpan]) -> OverlapSpan:
    """A partner's representative overlap: strongest population, then the earliest."""
    return min(spans, key=lambda s: (_rank(s.population), s.first_seen_at, s.overlap_id))


def referring_partner(value: str | None, partners: Mapping[str, str]) -> str | None:
    """The partner a CRM field names, by id or by name, case-insensitively."""
    wanted = (value or "").strip().casefold()
    if not wanted:
        return None
    for pid in sorted(partners):
        if pid.casefold() == wanted:
            return pid
    for pid in sorted(partners):
        if partners[pid].strip().casefold() == wanted:
            return pid
    return None


def earliest_before(spans: Sequence[OverlapSpan], created_at: datetime) -> str | None:
    """The partner whose overlap began earliest, strictly before the opportunity's creation."""
    before = [s for s in spans if s.first_seen_at < created_at]
    if not before:
        return None
    return min(before, key=lambda s: (s.first_seen_at, s.partner_id, s.overlap_id)).partner_id


def sourced_by(
    facts: OppFacts, influencers: Sequence[OverlapSpan], partners: Mapping[str, str],
    lead_sources: Sequence[str],
) -> tuple[str | None, str | None]:
    """(partner id, rule) of the first sourced rule that fires, else (None, None)."""
    named = referring_partner(facts.referring_partner, partners)
    if named is not None:
        return named, RULE_REFERRING_FIELD
    wanted = {s.strip().casefold() for s in lead_sources}
    if facts.lead_source and facts.lead_source.strip().casefold() in wanted:
        anchor = facts.created_at or datetime.combine(facts.close_date, time(), tzinfo=UTC)
        pid = earliest_before(influencers, anchor)
        if pid is not None:
            return pid, RULE_LEAD_SOURCE
    return None, None


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` (to the cent) by weights so the parts sum exactly to the total.

    Largest remainder: every part gets its floor in cents, and the leftover cents go one by
    one to the largest fractional parts, ties to the earlier position, so the split is
    deterministic. Zero weights everywhere fall back to an even split.
    """
    if not weights:
        return []
    cents = int((total / CENT).to_integral_value(ROUND_HALF_EVEN))
    sign, cents = (-1 if cents < 0 else 1), abs(cents)
    ws = [max(w, Decimal(0)) for w in weights]
    if sum(ws) <= 0:
        ws = [Decimal(1)] * len(ws)
    wsum = sum(ws)
    exact = [Decimal(cents) * w / wsum for w in ws]
    parts = [int(e) for e in exact]  # floor: all non-negative
    leftover = cents - sum(parts)
    order = sorted(range(len(ws)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:leftover]:
        parts[i] += 1
    return [Decimal(sign * p) * CENT for p in parts]


def model_weights(
    config: AttributionConfig, partner_ids: Sequence[str], source: str | None,
    populations: Mapping[str, str | None],
) -> list[Decimal]:
    """Weights per partner (in `partner_ids` order) under the configured amount model."""
    n = len(partner_ids)
    if config.amount_model == "sourced_first" and source is not None and n > 1:
        share = Decimal(str(config.sourced_share))
        rest = (Decimal(1) - share) / (n - 1)
        return [share if pid == source else rest for pid in partner_ids]
    if config.amount_model == "population_weighted":
        table = {k: Decimal(str(v)) for k, v in config.population_weights.items()}
        # A partner credited by the CRM field alone has no overlap population; a referral is
        # weighted like the strongest relationship rather than dropped to nothing.
        top = max(table.values(), default=Decimal(1))
        return [table.get(p, Decimal(0)) if (p := populations.get(pid)) else top
                for pid in partner_ids]
    return [Decimal(1)] * n


def attribute(
    facts: OppFacts, overlaps: Sequence[OverlapSpan], partners: Mapping[str, str],
    config: AttributionConfig,
) -> Attribution:
    """Influence, source and amount per partner for one close (DESIGN.md 6)."""
    start, end = influence_window(facts.created_at, facts.close_date,
                                  config.influence_lookback_days)
    active = sorted((s for s in overlaps if active_in(s, start, end)),
                    key=lambda s: (s.partner_id, s.first_seen_at, s.overlap_id))
    by_partner: dict[str, list[OverlapSpan]] = {}
    for span in active:
        by_partner.setdefault(span.partner_id, []).append(span)
    source, rule = sourced_by(facts, active, partners, config.sourced_lead_sources)
    ordered = sorted(by_partner)
    if source is not None:
        ordered = [source, *[p for p in ordered if p != source]]
    best = {pid: strongest(spans) for pid, spans in by_partner.items()}
    populations = {pid: (best[pid].population if pid in best else None) for pid in ordered}
    amounts: list[Decimal | None]
    if facts.amount is None:
        amounts = [None] * len(ordered)
    else:
        amounts = list(allocate(facts.amount,
                                model_weights(config, ordered, source, populations)))
    credits = tuple(
        Credit(
            partner_id=pid,
            partner_name=partners.get(pid, best[pid].partner_name if pid in best else pid),
            kind="sourced" if pid == source else "influenced",
            population=populations[pid],
            overlap_id=best[pid].overlap_id if pid in best else None,
            amount=amount,
        )
        for pid, amount in zip(ordered, amounts, strict=True)
    )
    return Attribution(start, end, tuple(active), source, rule, credits)
