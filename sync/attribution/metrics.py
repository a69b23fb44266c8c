"""Pure report arithmetic over closed deals: network figure, per-partner revenue, win-rate
comparisons (raw and within matched cohorts) and per-partner impact.

Inputs are `Deal`s already filtered by sharing (sync.reports builds them): a hidden partner is
absent, as if it did not exist; counts-only partners arrive pooled under one key. Amounts are
corporate-currency amounts from the stamps (converted at the close date).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

CENT = Decimal("0.01")
# Deal-size bands for matched cohorts, in the corporate currency (upper bounds, exclusive).
BANDS: tuple[tuple[str, Decimal | None], ...] = (
    ("<10k", Decimal(10_000)), ("10k-50k", Decimal(50_000)), ("50k-250k", Decimal(250_000)),
    ("250k+", None))


@dataclass(frozen=True)
class DealPartner:
    key: str  # partner id, or the pooled key for counts-only partners
    label: str
    kind: str  # sourced / influenced
    attributed: Decimal | None  # the model's share, corporate currency


@dataclass(frozen=True)
class Deal:
    opportunity_id: int
    won: bool
    close_date: date
    created: date | None
    amount: Decimal | None  # corporate currency; None when no rate was known
    segment: str
    partners: tuple[DealPartner, ...]  # visible partners only

    @property
    def with_partner(self) -> bool:
        return bool(self.partners)

    @property
    def days_to_close(self) -> int | None:
        return None if self.created is None else (self.close_date - self.created).days


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def amount_band(amount: Decimal | None) -> str:
    if amount is None:
        return "unknown"
    for name, upper in BANDS:
        if upper is None or amount < upper:
            return name
    return BANDS[-1][0]


def _money(values: Iterable[Decimal | None]) -> Decimal:
    return sum((v for v in values if v is not None), Decimal(0)).quantize(CENT)


@dataclass(frozen=True)
class Network:
    won_deals: int
    won_revenue: Decimal
    influenced_deals: int
    influenced_revenue: Decimal  # the network figure: each won deal once
    sourced_deals: int
    sourced_revenue: Decimal

    @property
    def influenced_share(self) -> Decimal | None:
        if not self.won_revenue:
            return None
        return (self.influenced_revenue / self.won_revenue * 100).quantize(Decimal("0.1"))


def network(deals: Iterable[Deal]) -> Network:
    """Ecosystem-influenced revenue counting each won deal once, whatever its partners."""
    won = {d.opportunity_id: d for d in deals if d.won}.values()
    influenced = [d for d in won if d.with_partner]
    sourced = [d for d in influenced if any(p.kind == "sourced" for p in d.partners)]
    return Network(len(won), _money(d.amount for d in won), len(influenced),
                   _money(d.amount for d in influenced), len(sourced),
                   _money(d.amount for d in sourced))


@dataclass(frozen=True)
class PartnerRevenue:
    key: str
    label: str
    won_deals: int
    sourced_deals: int
    influenced_revenue: Decimal  # full value of every won deal it is credited on
    sourced_revenue: Decimal  # full value of the won deals it sourced
    attributed_revenue: Decimal  # its share under the configured amount model


def by_partner(deals: Iterable[Deal]) -> list[PartnerRevenue]:
    """Per partner; summing influenced_revenue double counts, which is why `network` exists."""
    acc: dict[str, list[tuple[Deal, DealPartner]]] = defaultdict(list)
    for deal in {d.opportunity_id: d for d in deals if d.won}.values():
        for p in deal.partners:
            acc[p.key].append((deal, p))
    out = [PartnerRevenue(
        key, rows[0][1].label, len(rows), sum(p.kind == "sourced" for _, p in rows),
        _money(d.amount for d, _ in rows),
        _money(d.amount for d, p in rows if p.kind == "sourced"),
        _money(p.attributed for _, p in rows)) for key, rows in acc.items()]
    return sorted(out, key=lambda r: (-r.influenced_revenue, r.label.casefold(), r.key))


@dataclass(frozen=True)
class GroupStats:
    closed: int
    won: int
    win_rate: Decimal | None  # percent
    avg_deal_size: Decimal | None  # won deals
    avg_days_to_close: Decimal | None  # won deals


def stats(deals: Sequence[Deal]) -> GroupStats:
    won = [d for d in deals if d.won]
    amounts = [d.amount for d in won if d.amount is not None]
    days = [n for d in won if (n := d.days_to_close) is not None]
    return group_stats(len(deals), len(won), sum(amounts, Decimal(0)), len(amounts),
                       sum(days), len(days))


def group_stats(closed: int, won: int, amount_total: Decimal, amounts: int, days_total: int,
                days: int) -> GroupStats:
    """GroupStats from totals (what SQL aggregates give): won amounts and days to close of
    won deals, summed and counted where known."""
    rate = (Decimal(won) / closed * 100).quantize(Decimal("0.1")) if closed else None
    return GroupStats(closed, won, rate,
                      (amount_total / amounts).quantize(CENT) if amounts else None,
                      (Decimal(days_total) / days).quantize(CENT) if days else None)


def compare(deals: Sequence[Deal]) -> tuple[GroupStats, GroupStats]:
    """(with partner overlap, without) over the same deals."""
    return (stats([d for d in deals if d.with_partner]),
            stats([d for d in deals if not d.with_partner]))


def lift(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else (a - b).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class Cohort:
    segment: str
    band: str
    quarter: str
    with_partner: GroupStats
    without: GroupStats

    @property
    def matched(self) -> bool:
        return self.with_partner.closed > 0 and self.without.closed > 0


def cohorts(deals: Sequence[Deal]) -> list[Cohort]:
    """Deals grouped by (segment, amount band, quarter): like compared with like."""
    groups: dict[tuple[str, str, str], list[Deal]] = defaultdict(list)
    for d in deals:
        groups[(d.segment, amount_band(d.amount), quarter_of(d.close_date))].append(d)
    out = []
    for (segment, band, quarter), members in sorted(groups.items()):
        w, wo = compare(members)
        out.append(Cohort(segment, band, quarter, w, wo))
    return out


def matched_lift(cohort_list: Sequence[Cohort],
                 metric: Callable[[GroupStats], Decimal | None]) -> Decimal | None:
    """Within-cohort differences (with − without), averaged with weights = cohort size.

    Only cohorts holding both kinds of deal count, so a partner that only ever appears on
    large enterprise deals is not credited with the enterprise win rate.
    """
    total = Decimal(0)
    weight = 0
    for c in cohort_list:
        a, b = metric(c.with_partner), metric(c.without)
        if not c.matched or a is None or b is None:
            continue
        n = c.with_partner.closed + c.without.closed
        total += (a - b) * n
        weight += n
    return (total / weight).quantize(Decimal("0.1")) if weight else None


@dataclass(frozen=True)
class Impact:
    key: str
    label: str
    sample: int  # closed deals with this partner
    baseline_sample: int  # closed deals without any partner
    win_rate_lift: Decimal | None  # percentage points
    deal_size_ratio: Decimal | None
    cycle_change_pct: Decimal | None  # negative: faster
    rating: str  # high / medium / low / not enough data


def _points(value: Decimal | None, strong: Decimal, some: Decimal, *,
            lower_is_better: bool = False) -> int:
    if value is None:
        return 0
    if lower_is_better:
        value, strong, some = -value, -strong, -some
    return 2 if value >= strong else 1 if value >= some else 0


def rate(win_rate_lift: Decimal | None, size_ratio: Decimal | None,
         cycle_pct: Decimal | None) -> str:
    """high / medium / low from win-rate lift, deal size and cycle time, two points each:
    lift ≥ 10 pp (1 at 3 pp), size ≥ 1.2× (1 at 1.05×), cycle ≤ −15% (1 at −5%)."""
    score = (_points(win_rate_lift, Decimal(10), Decimal(3))
             + _points(size_ratio, Decimal("1.2"), Decimal("1.05"))
             + _points(cycle_pct, Decimal(-15), Decimal(-5), lower_is_better=True))
    return "high" if score >= 4 else "medium" if score >= 2 else "low"


def impact(deals: Sequence[Deal], min_sample: int) -> list[Impact]:
    """Each partner's deals against the deals no partner touched."""
    base = stats([d for d in deals if not d.with_partner])
    per: dict[str, list[Deal]] = defaultdict(list)
    labels: dict[str, str] = {}
    for d in deals:
        for key in {p.key for p in d.partners}:
            per[key].append(d)
        labels.update({p.key: p.label for p in d.partners})
    out = []
    for key, members in per.items():
        s = stats(members)
        ratio = (None if s.avg_deal_size is None or not base.avg_deal_size
                 else (s.avg_deal_size / base.avg_deal_size).quantize(CENT))
        cycle = (None if s.avg_days_to_close is None or not base.avg_days_to_close
                 else ((s.avg_days_to_close / base.avg_days_to_close - 1) * 100)
                 .quantize(Decimal("0.1")))
        win = lift(s.win_rate, base.win_rate)
        enough = s.closed >= min_sample and base.closed >= min_sample
        out.append(Impact(key, labels[key], s.closed, base.closed, win, ratio, cycle,
                          rate(win, ratio, cycle) if enough else "not enough data"))
    return sorted(out, key=lambda i: (-i.sample, i.label.casefold(), i.key))
