"""Closed deals and the partners each shows, as SQL: what `report attribution` loads deal by
deal and what the web view aggregates without loading any deal.

A deal is an opportunity's active stamp (one per opportunity: a new close supersedes the
old stamp) with a close date in the window, the opportunity not deleted. Its partners are
its credits as sharing shows them: the population each is shown under comes from
sync.attribution.credited (the rule's one expression), the key and pooling from
sync.sharing's `Policies` (hidden dropped, counts-only merged into one pooled key, sourced if
any pooled credit is, the pooled model amount known only if every part is). Amounts are
summed in cents, exact on both engines (SQLite keeps NUMERIC as floating point).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Select,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from schema.models import Account, AttributionStamp, Opportunity
from sync.attribution import metrics as m
from sync.attribution.credited import shown_credits
from sync.attribution.periods import Quarter
from sync.sharing import Policies

TRAILING = "trailing 12 months"
HUNDRED = Decimal(100)


def policies_of(shares: Mapping[str, tuple[str, Mapping[str, Any]]]) -> Policies:
    """The report's partner shares (id -> (name, share)) as sharing's Policies."""
    return Policies({k: v[0] for k, v in shares.items()},
                    {k: dict(v[1] or {}) for k, v in shares.items()})


def _cents(amount: Any) -> Any:
    return func.round(amount * 100)


def _days_to_close(dialect: str) -> Any:
    """SQL: days from the opportunity's creation (its UTC day) to the stamped close date."""
    if dialect == "postgresql":
        created = cast(func.timezone("UTC", Opportunity.created_at), Date)
        return type_coerce(AttributionStamp.close_date - created, Integer)
    return cast(func.julianday(AttributionStamp.close_date)
                - func.julianday(func.date(Opportunity.created_at)), Integer)


def _window(start: date, end: date) -> list[Any]:
    return [AttributionStamp.superseded_at.is_(None), Opportunity.is_deleted.is_(False),
            AttributionStamp.close_date >= start, AttributionStamp.close_date < end]


def closed_deals(dialect: str, start: date, end: date) -> Subquery:
    """One row per closed deal in [start, end): stamp_id, opportunity_id, won (1/0),
    close_date, cents (corporate amount, NULL without a rate), days (NULL without a
    creation date), created_at, account_id (NULL when the account is unknown)."""
    return (select(AttributionStamp.id.label("stamp_id"), AttributionStamp.opportunity_id,
                   case((AttributionStamp.outcome == "won", 1), else_=0).label("won"),
                   AttributionStamp.close_date,
                   _cents(AttributionStamp.corporate_amount).label("cents"),
                   _days_to_close(dialect).label("days"))
            .join(Opportunity, Opportunity.id == AttributionStamp.opportunity_id)
            .where(*_window(start, end)).subquery("deals"))


def shown_partners(pol: Policies, start: date, end: date) -> Subquery:
    """One row per (deal, key) shown: stamp_id, key (partner id or the pool), sourced (1/0),
    attributed_cents (the model's amount; NULL if a pooled part has none)."""
    credits = shown_credits().where(*_window(start, end)).subquery("credits")
    keyed = select(credits.c.stamp_id, credits.c.kind, credits.c.corporate_amount,
                   pol.key_expression(credits.c.partner_id, credits.c.population,
                                      credited=True).label("key")).subquery("keyed")
    complete = func.count(keyed.c.corporate_amount) == func.count()
    return (select(keyed.c.stamp_id, keyed.c.key,
                   func.max(case((keyed.c.kind == "sourced", 1), else_=0)).label("sourced"),
                   case((complete, func.sum(_cents(keyed.c.corporate_amount))))
                   .label("attributed_cents"))
            .where(keyed.c.key.is_not(None))
            .group_by(keyed.c.stamp_id, keyed.c.key).subquery("shown"))


def load_deals(session: Session, pol: Policies, start: date, end: date) -> list[m.Deal]:
    """The deals as `m.Deal`s, for the report's per-deal arithmetic (cohorts, impact)."""
    rows = session.execute(
        select(AttributionStamp.id, AttributionStamp.opportunity_id, AttributionStamp.outcome,
               AttributionStamp.close_date, AttributionStamp.corporate_amount,
               Opportunity.created_at, Account.account_type)
        .join(Opportunity, Opportunity.id == AttributionStamp.opportunity_id)
        .outerjoin(Account, and_(Account.source == Opportunity.source,
                                 Account.external_id == Opportunity.account_external_id))
        .where(*_window(start, end)).order_by(AttributionStamp.id)).all()
    shown = shown_partners(pol, start, end)
    partners: dict[int, list[m.DealPartner]] = defaultdict(list)
    for stamp_id, key, sourced, attributed in session.execute(
            select(shown).order_by(shown.c.stamp_id, shown.c.key)):
        partners[stamp_id].append(m.DealPartner(
            key, pol.label(key), "sourced" if sourced else "influenced",
            None if attributed is None else Decimal(int(attributed)) / HUNDRED))
    return [m.Deal(r.opportunity_id, r.outcome == "won", r.close_date,
                   r.created_at.date() if r.created_at else None, r.corporate_amount,
                   r.account_type or "unknown", tuple(partners[r.id])) for r in rows]


# --- Aggregates in SQL: the web view's figures, read without loading a deal ----------------

def _period(deals: Subquery, quarters: Sequence[Quarter]) -> Any:
    """SQL: the label of the quarter a deal closed in (the window is those quarters)."""
    return case(*((deals.c.close_date < q.end, literal(q.label)) for q in quarters[:-1]),
                else_=literal(quarters[-1].label))


def _money(cents: Any) -> Decimal:
    return (Decimal(int(cents or 0)) / HUNDRED).quantize(m.CENT)


def _flags(shown: Subquery, partner: str | None, name: str) -> Subquery:
    """Per deal with a partner shown (or with `partner`): any_sourced."""
    q = select(shown.c.stamp_id, func.max(shown.c.sourced).label("any_sourced"))
    if partner is not None:
        q = q.where(shown.c.key == partner)
    return q.group_by(shown.c.stamp_id).subquery(name)


def _periods(anchor: Quarter) -> list[str]:
    return [q.label for q in anchor.trailing()] + [TRAILING]


def _n(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


def _add(acc: list[int], values: Sequence[Any]) -> list[int]:
    return [a + int(b or 0) for a, b in zip(acc, values, strict=True)]


# Built statements by what they depend on: building one (sharing clauses for every partner,
# nested subqueries) costs more than running it on a small ledger, and the web view asks for
# the same few on every page view.
_BUILT: dict[tuple[Any, ...], Select[Any]] = {}
_BUILT_MAX = 256


def _statement(session: Session, kind: str, pol: Policies, anchor: Quarter,
               partner: str | None = None) -> Select[Any]:
    dialect = session.get_bind().dialect.name
    key = (kind, dialect, pol.fingerprint(), anchor, partner)
    found = _BUILT.get(key)
    if found is None:
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        found = _BUILT[key] = _BUILDERS[kind](dialect, pol, anchor, partner)
    return found


def _network_statement(dialect: str, pol: Policies, anchor: Quarter,
                       partner: str | None) -> Select[Any]:
    quarters = anchor.trailing()
    start, end = quarters[0].start, anchor.end
    deals = closed_deals(dialect, start, end)
    anyone = _flags(shown_partners(pol, start, end), None, "anyone")
    period = _period(deals, quarters).label("period")
    won = deals.c.won == 1
    with_any, sourced = and_(won, anyone.c.stamp_id.is_not(None)), and_(
        won, anyone.c.any_sourced == 1)

    def cents(cond: Any) -> Any:
        return func.sum(case((cond, deals.c.cents)))

    return (select(period, _n(won), cents(won), _n(with_any), cents(with_any), _n(sourced),
                   cents(sourced), _n(and_(won, deals.c.cents.is_(None))))
            .select_from(deals).outerjoin(anyone, anyone.c.stamp_id == deals.c.stamp_id)
            .group_by(period))


def _comparison_statement(dialect: str, pol: Policies, anchor: Quarter,
                          partner: str | None) -> Select[Any]:
    quarters = anchor.trailing()
    start, end = quarters[0].start, anchor.end
    deals = closed_deals(dialect, start, end)
    shown = shown_partners(pol, start, end)
    anyone, chosen = _flags(shown, None, "anyone"), _flags(shown, partner, "chosen")
    group = case((chosen.c.stamp_id.is_not(None), 1), (anyone.c.stamp_id.is_(None), 0),
                 else_=None)
    inner = (select(_period(deals, quarters).label("period"), group.label("grp"),
                    deals.c.won, deals.c.cents, deals.c.days)
             .select_from(deals)
             .outerjoin(anyone, anyone.c.stamp_id == deals.c.stamp_id)
             .outerjoin(chosen, chosen.c.stamp_id == deals.c.stamp_id).subquery("g"))
    won = inner.c.won == 1
    return (select(inner.c.period, inner.c.grp, func.count(), func.sum(inner.c.won),
                   func.sum(case((won, inner.c.cents))),
                   _n(and_(won, inner.c.cents.is_not(None))),
                   func.sum(case((won, inner.c.days))), _n(and_(won, inner.c.days.is_not(None))))
            .where(inner.c.grp.is_not(None)).group_by(inner.c.period, inner.c.grp))


def _by_partner_statement(dialect: str, pol: Policies, anchor: Quarter,
                          partner: str | None) -> Select[Any]:
    quarters = anchor.trailing()
    start, end = quarters[0].start, anchor.end
    deals = closed_deals(dialect, start, end)
    shown = shown_partners(pol, start, end)
    period = _period(deals, quarters).label("period")
    sourced = shown.c.sourced == 1
    return (select(period, shown.c.key, func.count(), func.sum(shown.c.sourced),
                   func.sum(deals.c.cents), func.sum(case((sourced, deals.c.cents))),
                   func.sum(shown.c.attributed_cents))
            .select_from(deals).join(shown, shown.c.stamp_id == deals.c.stamp_id)
            .where(deals.c.won == 1).group_by(period, shown.c.key))


_BUILDERS = {"network": _network_statement, "comparison": _comparison_statement,
             "by_partner": _by_partner_statement}


@dataclass(frozen=True)
class NetworkFigures:
    network: dict[str, m.Network]  # per period label
    unconverted: dict[str, int]  # won deals without a corporate amount


def network(session: Session, pol: Policies, anchor: Quarter) -> NetworkFigures:
    """Per quarter of the trailing four and over all of them: won and ecosystem-influenced
    revenue, each deal once. One grouped query."""
    rows = session.execute(_statement(session, "network", pol, anchor)).all()
    totals: dict[str, list[int]] = {p: [0] * 7 for p in _periods(anchor)}
    for label, *values in rows:
        for key in (label, TRAILING):
            totals[key] = _add(totals[key], values)
    return NetworkFigures(
        {p: m.Network(t[0], _money(t[1]), t[2], _money(t[3]), t[4], _money(t[5]))
         for p, t in totals.items()},
        {p: t[6] for p, t in totals.items()})


def comparison(session: Session, pol: Policies, anchor: Quarter, partner: str | None = None
               ) -> dict[str, tuple[m.GroupStats, m.GroupStats]]:
    """Per period label, (with, without): closed deals with a partner shown (or with
    `partner` shown) against closed deals with no partner shown. One grouped query."""
    rows = session.execute(_statement(session, "comparison", pol, anchor, partner)).all()
    parts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * 6)
    for label, grp, *values in rows:
        for key in (label, TRAILING):
            parts[(key, int(grp))] = _add(parts[(key, int(grp))], values)

    def stats(p: str, grp: int) -> m.GroupStats:
        closed, won_, cents, amounts, days, n_days = parts[(p, grp)]
        return m.group_stats(closed, won_, Decimal(cents) / HUNDRED, amounts, days, n_days)

    return {p: (stats(p, 1), stats(p, 0)) for p in _periods(anchor)}


def by_partner(session: Session, pol: Policies, anchor: Quarter) -> dict[str, list[
        m.PartnerRevenue]]:
    """Per period label, each shown key's won deals and revenue, ordered as `m.by_partner`
    orders them. One grouped query."""
    rows = session.execute(_statement(session, "by_partner", pol, anchor)).all()
    totals: dict[str, dict[str, list[int]]] = {p: {} for p in _periods(anchor)}
    for label, key, *values in rows:
        for p in (label, TRAILING):
            totals[p][key] = _add(totals[p].get(key, [0] * 5), values)
    out: dict[str, list[m.PartnerRevenue]] = {}
    for p, per_key in totals.items():
        found = [m.PartnerRevenue(k, pol.label(k), t[0], t[1], _money(t[2]), _money(t[3]),
                                  _money(t[4])) for k, t in per_key.items()]
        out[p] = sorted(found, key=lambda r: (-r.influenced_revenue, r.label.casefold(), r.key))
    return out
