"""Partners: who is a working set and who a rolodex, what each brought in, and one partner's
overlaps over time, revenue, and win rate / deal size / cycle with it and without any partner.

Closed-deal figures come from the stamp ledger through sync.reports.deals (the same deals,
sharing and arithmetic as `ecosync report attribution`, aggregated in SQL); the working-set
test is sync.reports.working_set's, counted in SQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, literal, or_, select
from sqlalchemy.orm import Session

from schema.models import Overlap, Partner
from sync.attribution import metrics as m
from sync.attribution.periods import Quarter
from sync.reports import deals
from sync.reports.working_set import WORKING_SET_MAX, WORKING_SET_MIN, classify, joint_pursuit_query
from sync.sharing import COUNTED, POOLED_KEY, POOLED_LABEL, Policies
from sync.web.queries.common import Chart, Col, Table, UnknownPartner, View

MONTHS = 12


def joint_accounts(session: Session, pol: Policies, quarter: Quarter) -> dict[str, int]:
    """key (partner id or the pool) -> named accounts in joint pursuit in the quarter."""
    jp = joint_pursuit_query(quarter).subquery("jp")
    key = pol.key_expression(jp.c.partner_id, jp.c.population)
    rows = session.execute(select(key, func.count(func.distinct(jp.c.account_id)))
                           .where(key.is_not(None)).group_by(key))
    return {k: int(n) for k, n in rows}


VERDICT_WORDS = {"working set": "a working set", "rolodex": "a rolodex (too few to work)",
                 "over-extended": "over-extended (too many to work together)"}


def verdict_words(name: str, n: int, quarter: Quarter) -> str:
    status, _ = classify(n)
    return (f"In {quarter.label}, {name} and we pursued {n} named account"
            f"{'' if n == 1 else 's'} together (accounts it has that had an open opportunity "
            f"of ours): {VERDICT_WORDS[status]}. A working set has {WORKING_SET_MIN} to "
            f"{WORKING_SET_MAX}.")


def _words(populations: list[str]) -> str:
    return ", ".join(p.replace("_", " ") for p in populations)


def partners_list(session: Session, pol: Policies, today: date) -> View:
    anchor = Quarter.of(today)
    revenue = {r.key: r for r in deals.by_partner(session, pol, anchor)[deals.TRAILING]}
    joint = joint_accounts(session, pol, anchor)
    key = pol.key_expression(Overlap.partner_id, Overlap.population)
    active: dict[str, int] = {k: int(n) for k, n in session.execute(
        select(key, func.count()).where(Overlap.ended_at.is_(None), key.is_not(None))
        .group_by(key))}
    kinds: dict[str, str] = {pid: kind for pid, kind in
                             session.execute(select(Partner.id, Partner.kind))}
    keys = [pid for pid, _ in pol.named_partners()] + ([POOLED_KEY] if pol.has_pool() else [])
    rows = []
    for k in keys:
        pooled = k == POOLED_KEY
        n = joint.get(k, 0)
        r = revenue.get(k)
        rows.append({
            "partner_id": None if pooled else k,
            "partner": POOLED_LABEL if pooled else pol.names[k],
            "kind": None if pooled else kinds.get(k),
            "shared_by_name": None if pooled else _words(pol.named_populations(k)),
            "active_overlaps": int(active.get(k, 0)), "joint_accounts": n,
            "verdict": None if pooled else classify(n)[0],
            "influenced_revenue": r.influenced_revenue if r else Decimal("0.00"),
            "sourced_revenue": r.sourced_revenue if r else Decimal("0.00"),
            "won_deals": r.won_deals if r else 0,
            "_href": None if pooled else f"/partners/{k}"})
    cols = (Col("partner", "Partner", link="_href"), Col("kind", "Kind"),
            Col("shared_by_name", "Shared by name"),
            Col("active_overlaps", "Active overlaps", numeric=True),
            Col("joint_accounts", f"Joint pursuit {anchor.label}", numeric=True),
            Col("verdict", "Working set?"), Col("won_deals", "Won deals (12 mo)", numeric=True),
            Col("influenced_revenue", "Influenced revenue (12 mo)", numeric=True),
            Col("sourced_revenue", "Sourced revenue (12 mo)", numeric=True))
    summary = [f"Joint pursuit: the named accounts a partner has that had an open opportunity "
               f"of ours in {anchor.label}. {WORKING_SET_MIN} to {WORKING_SET_MAX} is a working "
               f"set you can run together; fewer is a rolodex, more is over-extended.",
               "Revenue is won deals of the trailing 12 months with the partner credited "
               "(influenced: the full deal value; sourced: deals it brought in)."]
    return View("Partners", facts={"quarter": anchor.label, "summary": summary},
                tables=[Table("partners", "Partners", cols, rows)])


def _points(now: datetime) -> list[datetime]:
    """The first instant of each of the last MONTHS - 1 months, then now, oldest first."""
    y, mo = now.year, now.month
    starts: list[datetime] = []
    for _ in range(MONTHS - 1):
        starts.insert(0, datetime(y, mo, 1, tzinfo=UTC))
        y, mo = (y - 1, 12) if mo == 1 else (y, mo - 1)
    return [*starts, now]


def over_time(session: Session, pol: Policies, partner: str, now: datetime) -> Table:
    """Active overlaps at the end of each of the last twelve months, by population (one scan
    of the partner's overlaps, a CASE per month)."""
    ends = _points(now)
    pops = pol.named_populations(partner)
    cols = [func.sum(case((Overlap.first_seen_at < t, case(
        (or_(Overlap.ended_at.is_(None), Overlap.ended_at >= t), 1), else_=0)),
        else_=0)) for t in ends]
    found = session.execute(
        select(Overlap.population, *cols)
        .where(Overlap.partner_id == partner, Overlap.population.in_(pops),
               Overlap.first_seen_at < literal(now, Overlap.first_seen_at.type))
        .group_by(Overlap.population)).all()
    by_pop = {r[0]: [int(v or 0) for v in r[1:]] for r in found}
    rows = []
    for i, t in enumerate(ends):
        counts = {p: by_pop.get(p, [0] * len(ends))[i] for p in pops}
        rows.append({"as_of": t.date().isoformat(), **counts})
    return Table("overlaps_over_time", "Active overlaps over time", (
        Col("as_of", "As of"), *(Col(p, p.replace("_", " ").capitalize(), numeric=True)
                                 for p in pops)), rows)


def partner_view(session: Session, pol: Policies, partner: str, now: datetime) -> View:
    if not pol.named_populations(partner):
        raise UnknownPartner(partner)
    name = pol.names[partner]
    anchor = Quarter.of(now.date())
    joint = joint_accounts(session, pol, anchor).get(partner, 0)
    history = over_time(session, pol, partner, now)
    pops = pol.named_populations(partner)
    chart = Chart("overlaps", "Active overlaps by their population", {
        "data": [{"type": "scatter", "mode": "lines+markers", "name": p.replace("_", " "),
                  "x": [r["as_of"] for r in history.rows],
                  "y": [r[p] for r in history.rows]} for p in pops],
        "layout": {"yaxis": {"title": {"text": "accounts"}, "rangemode": "tozero"}}})
    unnamed = [p for p in ("customer", "open_opportunity", "prospect")
               if p not in pops and pol.level(partner, p) in COUNTED]
    summary = [verdict_words(name, joint, anchor),
               f"Shares by name: {_words(pops)}."]
    if unnamed:
        summary.append("Its other populations are counted only, with the partners sharing "
                       "counts only.")
    return View(name, facts={"partner_id": partner, "quarter": anchor.label,
                             "joint_accounts": joint, "verdict": classify(joint)[0],
                             "summary": summary},
                tables=[history, _revenue(session, pol, partner, anchor),
                        _comparison(session, pol, partner, anchor)], charts=[chart])


def _revenue(session: Session, pol: Policies, partner: str, anchor: Quarter) -> Table:
    per = deals.by_partner(session, pol, anchor)
    rows: list[dict[str, Any]] = []
    for label in [*(q.label for q in anchor.trailing()), deals.TRAILING]:
        r = next((x for x in per[label] if x.key == partner), None)
        rows.append({"period": label, "won_deals": r.won_deals if r else 0,
                     "sourced_deals": r.sourced_deals if r else 0,
                     "influenced_revenue": r.influenced_revenue if r else Decimal("0.00"),
                     "sourced_revenue": r.sourced_revenue if r else Decimal("0.00"),
                     "attributed_revenue": r.attributed_revenue if r else Decimal("0.00")})
    return Table("revenue", "Sourced and influenced revenue (won deals, corporate currency)", (
        Col("period", "Period"), Col("won_deals", "Won deals", numeric=True),
        Col("sourced_deals", "Sourced", numeric=True),
        Col("influenced_revenue", "Influenced revenue", numeric=True),
        Col("sourced_revenue", "Sourced revenue", numeric=True),
        Col("attributed_revenue", "Attributed (model)", numeric=True)), rows)


def _comparison(session: Session, pol: Policies, partner: str, anchor: Quarter) -> Table:
    with_p, without = deals.comparison(session, pol, anchor, partner)[deals.TRAILING]

    def row(group: str, s: m.GroupStats) -> dict[str, Any]:
        return {"group": group, "closed": s.closed, "won": s.won, "win_rate_pct": s.win_rate,
                "avg_deal_size": s.avg_deal_size, "avg_days_to_close": s.avg_days_to_close}

    rows = [row("with this partner", with_p), row("without any partner", without),
            {"group": "difference", "win_rate_pct": m.lift(with_p.win_rate, without.win_rate),
             "avg_deal_size": m.lift(with_p.avg_deal_size, without.avg_deal_size),
             "avg_days_to_close": m.lift(with_p.avg_days_to_close, without.avg_days_to_close)}]
    return Table("comparison", "Win rate, deal size and cycle: with the partner vs without "
                               "(closed deals, trailing 12 months)", (
        Col("group", "Deals"), Col("closed", "Closed", numeric=True),
        Col("won", "Won", numeric=True), Col("win_rate_pct", "Win rate %", numeric=True),
        Col("avg_deal_size", "Avg won deal", numeric=True),
        Col("avg_days_to_close", "Avg days to close", numeric=True)), rows)
