"""`ecosync report attribution`: the program layer's numbers, from the stamp ledger.

Sections (each a table, a CSV block or a JSON key):
- revenue: the network figure (each won deal once) per quarter and over the trailing four;
- partners: per partner sourced, influenced (full deal value) and attributed (model) revenue;
- comparison: win rate, deal size, days to close, with and without a partner;
- cohorts: the same inside matched cohorts (segment, amount band, quarter), weighted summary;
- impact: per partner high / medium / low against deals no partner touched, with sample sizes;
- health: active partners, joint deals, overlaps gained and lost.

Closed-deal figures come from active stamps only (the truth at close, never today's overlaps),
in the corporate currency at the close-date rate. Sharing (sync.sharing): a hidden partner
is absent everywhere, as if it did not exist; counts-only partners are pooled unnamed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schema.models import AttributionStamp, Opportunity, Overlap
from schema.models import Partner as PartnerRow
from sync.attribution import metrics as m
from sync.attribution.periods import Quarter, at_midnight
from sync.reports import deals as deals_sql
from sync.reports.formats import Column
from sync.sharing import COUNTED, NAMED, POOLED_KEY, POOLED_LABEL, share_level

POOLED_NAME = POOLED_LABEL
MIN_SAMPLE = 10


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]


Shares = Mapping[str, tuple[str, Mapping[str, Any]]]


def partner_shares(session: Session) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r.id: (r.name, r.share or {}) for r in
            session.execute(select(PartnerRow.id, PartnerRow.name, PartnerRow.share))}


def shown_partner(pid: str, population: str | None, shares: Shares) -> tuple[str, str] | None:
    """(key, label) a partner appears under: itself, the pool, or None (hidden). A credited
    partner's population comes from sync.attribution.credited; None is never shown."""
    if pid not in shares or population is None:
        return None
    name, share = shares[pid]
    level = share_level(share, population)
    if level in NAMED:
        return pid, name
    return (POOLED_KEY, POOLED_NAME) if level in COUNTED else None


def load_deals(session: Session, start: date, end: date, shares: Shares) -> list[m.Deal]:
    """Closed deals with an active stamp and a close date in [start, end), their partners as
    shown (sync.reports.deals: the same SQL the web view aggregates)."""
    return deals_sql.load_deals(session, deals_sql.policies_of(shares), start, end)


def _in(deals: Sequence[m.Deal], q: Quarter) -> list[m.Deal]:
    return [d for d in deals if q.start <= d.close_date < q.end]


def _periods(anchor: Quarter) -> list[tuple[str, Quarter | None]]:
    """Each of the trailing four quarters, then the whole trailing twelve months (None)."""
    return [(q.label, q) for q in anchor.trailing()] + [("trailing 12 months", None)]


def _select(deals: Sequence[m.Deal], q: Quarter | None) -> list[m.Deal]:
    return list(deals) if q is None else _in(deals, q)


REVENUE_COLUMNS = (
    Column("period", "Period"), Column("won_deals", "Won", numeric=True),
    Column("won_revenue", "Won revenue", numeric=True),
    Column("influenced_deals", "Partner-influenced", numeric=True),
    Column("ecosystem_influenced_revenue", "Ecosystem-influenced revenue", numeric=True),
    Column("influenced_share_pct", "% of won", numeric=True),
    Column("sourced_deals", "Partner-sourced", numeric=True),
    Column("sourced_revenue", "Sourced revenue", numeric=True),
    Column("unconverted_deals", "Won without a rate", numeric=True),
    Column("currency", "Currency"),
)


def revenue_rows(deals: Sequence[m.Deal], anchor: Quarter, currency: str) -> list[dict[str, Any]]:
    out = []
    for label, q in _periods(anchor):
        chosen = _select(deals, q)
        n = m.network(chosen)
        out.append({
            "period": label, "won_deals": n.won_deals, "won_revenue": n.won_revenue,
            "influenced_deals": n.influenced_deals,
            "ecosystem_influenced_revenue": n.influenced_revenue,
            "influenced_share_pct": n.influenced_share, "sourced_deals": n.sourced_deals,
            "sourced_revenue": n.sourced_revenue,
            "unconverted_deals": sum(1 for d in chosen if d.won and d.amount is None),
            "currency": currency})
    return out


PARTNER_COLUMNS = (
    Column("period", "Period"), Column("partner", "Partner"),
    Column("won_deals", "Won deals", numeric=True),
    Column("sourced_deals", "Sourced", numeric=True),
    Column("influenced_revenue", "Influenced revenue", numeric=True),
    Column("sourced_revenue", "Sourced revenue", numeric=True),
    Column("attributed_revenue", "Attributed (model)", numeric=True),
)


def partner_rows(deals: Sequence[m.Deal], anchor: Quarter) -> list[dict[str, Any]]:
    out = []
    for label, chosen in ((anchor.label, _in(deals, anchor)),
                          ("trailing 12 months", list(deals))):
        for r in m.by_partner(chosen):
            out.append({"period": label, "partner_id": None if r.key == POOLED_KEY else r.key,
                        "partner": r.label, "won_deals": r.won_deals,
                        "sourced_deals": r.sourced_deals,
                        "influenced_revenue": r.influenced_revenue,
                        "sourced_revenue": r.sourced_revenue,
                        "attributed_revenue": r.attributed_revenue})
    return out


COMPARISON_COLUMNS = (
    Column("period", "Period"), Column("group", "Deals"),
    Column("closed", "Closed", numeric=True), Column("won", "Won", numeric=True),
    Column("win_rate_pct", "Win rate %", numeric=True),
    Column("avg_deal_size", "Avg deal size", numeric=True),
    Column("avg_days_to_close", "Avg days to close", numeric=True),
)


def _stat_row(period: str, group: str, s: m.GroupStats) -> dict[str, Any]:
    return {"period": period, "group": group, "closed": s.closed, "won": s.won,
            "win_rate_pct": s.win_rate, "avg_deal_size": s.avg_deal_size,
            "avg_days_to_close": s.avg_days_to_close}


def comparison_rows(deals: Sequence[m.Deal], anchor: Quarter) -> list[dict[str, Any]]:
    out = []
    for label, q in _periods(anchor):
        w, wo = m.compare(_select(deals, q))
        out.append(_stat_row(label, "with partner", w))
        out.append(_stat_row(label, "without partner", wo))
        out.append({"period": label, "group": "difference",
                    "win_rate_pct": m.lift(w.win_rate, wo.win_rate),
                    "avg_deal_size": m.lift(w.avg_deal_size, wo.avg_deal_size),
                    "avg_days_to_close": m.lift(w.avg_days_to_close, wo.avg_days_to_close)})
    return out


COHORT_COLUMNS = (
    Column("segment", "Segment"), Column("band", "Amount band"), Column("quarter", "Quarter"),
    Column("with_closed", "With: closed", numeric=True),
    Column("with_win_rate_pct", "With: win %", numeric=True),
    Column("without_closed", "Without: closed", numeric=True),
    Column("without_win_rate_pct", "Without: win %", numeric=True),
    Column("win_rate_lift_pp", "Win-rate lift (pp)", numeric=True),
    Column("deal_size_diff", "Deal size diff", numeric=True),
    Column("days_to_close_diff", "Days diff", numeric=True),
)



def _win(s: m.GroupStats) -> Decimal | None:
    return s.win_rate


def _size(s: m.GroupStats) -> Decimal | None:
    return s.avg_deal_size


def _days(s: m.GroupStats) -> Decimal | None:
    return s.avg_days_to_close


def cohort_rows(deals: Sequence[m.Deal]) -> list[dict[str, Any]]:
    groups = m.cohorts(deals)
    out = [{"segment": c.segment, "band": c.band, "quarter": c.quarter,
            "with_closed": c.with_partner.closed, "with_win_rate_pct": c.with_partner.win_rate,
            "without_closed": c.without.closed, "without_win_rate_pct": c.without.win_rate,
            "win_rate_lift_pp": m.lift(c.with_partner.win_rate, c.without.win_rate),
            "deal_size_diff": m.lift(c.with_partner.avg_deal_size, c.without.avg_deal_size),
            "days_to_close_diff": m.lift(c.with_partner.avg_days_to_close,
                                         c.without.avg_days_to_close)}
           for c in groups if c.matched]
    w, wo = m.compare(deals)
    out.append({"segment": "all, raw", "with_closed": w.closed, "with_win_rate_pct": w.win_rate,
                "without_closed": wo.closed, "without_win_rate_pct": wo.win_rate,
                "win_rate_lift_pp": m.lift(w.win_rate, wo.win_rate),
                "deal_size_diff": m.lift(w.avg_deal_size, wo.avg_deal_size),
                "days_to_close_diff": m.lift(w.avg_days_to_close, wo.avg_days_to_close)})
    matched = [c for c in groups if c.matched]
    out.append({"segment": "all, matched cohorts (weighted)",
                "with_closed": sum(c.with_partner.closed for c in matched),
                "without_closed": sum(c.without.closed for c in matched),
                "win_rate_lift_pp": m.matched_lift(groups, _win),
                "deal_size_diff": m.matched_lift(groups, _size),
                "days_to_close_diff": m.matched_lift(groups, _days)})
    return out


IMPACT_COLUMNS = (
    Column("partner", "Partner"), Column("rating", "Impact"),
    Column("sample", "Deals (n)", numeric=True),
    Column("baseline_sample", "Baseline (n)", numeric=True),
    Column("win_rate_lift_pp", "Win-rate lift (pp)", numeric=True),
    Column("deal_size_ratio", "Deal size ×", numeric=True),
    Column("cycle_change_pct", "Cycle time %", numeric=True),
)


def impact_rows(deals: Sequence[m.Deal], min_sample: int) -> list[dict[str, Any]]:
    return [{"partner_id": None if i.key == POOLED_KEY else i.key, "partner": i.label,
             "rating": i.rating, "sample": i.sample, "baseline_sample": i.baseline_sample,
             "win_rate_lift_pp": i.win_rate_lift, "deal_size_ratio": i.deal_size_ratio,
             "cycle_change_pct": i.cycle_change_pct} for i in m.impact(deals, min_sample)]


HEALTH_COLUMNS = (
    Column("period", "Period"), Column("active_partners", "Active partners", numeric=True),
    Column("joint_deals", "Joint deals closed", numeric=True),
    Column("joint_won", "Joint deals won", numeric=True),
    Column("overlaps_gained", "Overlaps gained", numeric=True),
    Column("overlaps_lost", "Overlaps lost", numeric=True),
)


def _overlap_counts(session: Session, column: Any, start: date, end: date,
                    shares: Shares) -> int:
    rows = session.execute(
        select(Overlap.partner_id, Overlap.population, func.count())
        .where(column >= at_midnight(start), column < at_midnight(end))
        .group_by(Overlap.partner_id, Overlap.population))
    return sum(n for pid, pop, n in rows if shown_partner(pid, pop, shares) is not None)


def _active_partners(session: Session, at: date, shares: Shares) -> int:
    """Partners with a shown overlap active at `at`; the counts-only pool counts each."""
    moment = at_midnight(at)
    rows = session.execute(
        select(Overlap.partner_id, Overlap.population).distinct()
        .where(Overlap.first_seen_at < moment,
               (Overlap.ended_at.is_(None)) | (Overlap.ended_at > moment)))
    return len({pid for pid, pop in rows if shown_partner(pid, pop, shares) is not None})


def health_rows(session: Session, deals: Sequence[m.Deal], anchor: Quarter, today: date,
                shares: Shares) -> list[dict[str, Any]]:
    out = []
    for label, q in _periods(anchor):
        start, end = (q.start, q.end) if q else (anchor.trailing()[0].start, anchor.end)
        joint = [d for d in _select(deals, q) if d.with_partner]
        out.append({
            "period": label, "active_partners": _active_partners(session, min(end, today),
                                                                 shares),
            "joint_deals": len(joint), "joint_won": sum(d.won for d in joint),
            "overlaps_gained": _overlap_counts(session, Overlap.first_seen_at, start, end,
                                               shares),
            "overlaps_lost": _overlap_counts(session, Overlap.ended_at, start, end, shares)})
    return out


def attribution_report(
    session: Session, *, anchor: Quarter, today: date, corporate_currency: str,
    min_sample: int = MIN_SAMPLE,
) -> list[Section]:
    """Every section for the four quarters ending with `anchor`."""
    shares = partner_shares(session)
    quarters = anchor.trailing()
    deals = load_deals(session, quarters[0].start, anchor.end, shares)
    return [
        Section("revenue", "Ecosystem-influenced revenue (each won deal once)",
                REVENUE_COLUMNS, revenue_rows(deals, anchor, corporate_currency)),
        Section("partners", "Revenue by partner", PARTNER_COLUMNS,
                partner_rows(deals, anchor)),
        Section("comparison", "With and without a partner", COMPARISON_COLUMNS,
                comparison_rows(deals, anchor)),
        Section("cohorts", "Matched cohorts (segment, amount band, quarter)", COHORT_COLUMNS,
                cohort_rows(deals)),
        Section("impact", f"Partner impact (trailing 12 months, min {min_sample} deals)",
                IMPACT_COLUMNS, impact_rows(deals, min_sample)),
        Section("health", "Ecosystem health", HEALTH_COLUMNS,
                health_rows(session, deals, anchor, today, shares)),
    ]


def closed_deals_note(session: Session, anchor: Quarter) -> tuple[str | None, bool]:
    """(a line for a reader when `anchor` or its trailing year has no closed deal, whether
    the trailing year has none at all): `no closed deals in 2026Q4; the latest close is
    2025-12-21`, so nobody reads an empty table as a real zero."""
    live = (AttributionStamp.superseded_at.is_(None), Opportunity.is_deleted.is_(False))

    def closes(start: date | None, end: date | None) -> Any:
        query = (select(func.count(), func.max(AttributionStamp.close_date))
                 .join(Opportunity, Opportunity.id == AttributionStamp.opportunity_id)
                 .where(*live))
        if start is not None and end is not None:
            query = query.where(AttributionStamp.close_date >= start,
                                AttributionStamp.close_date < end)
        return session.execute(query).one()

    first = anchor.trailing()[0]
    in_year, _ = closes(first.start, anchor.end)
    in_quarter, _ = closes(anchor.start, anchor.end)
    if in_quarter:
        return None, False
    _, latest = closes(None, None)
    where = (f"the latest close is {latest.isoformat()}" if latest is not None else
             "no deal is stamped yet (stamps are made when ecosync sees a deal closed; "
             "run `ecosync backfill`)")
    span = anchor.label if in_year else f"{first.label}..{anchor.label}"
    return f"no closed deals in {span}; {where}", not in_year
