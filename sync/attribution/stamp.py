"""The stamp stage of the tick: one immutable attribution stamp per close (DESIGN.md 6).

Idempotency rests on a deterministic close key, `source:external_id:outcome:close_date`
(`no-close-date` when the CRM has none; `:reopen<n>` after the n-th reopen ecosync observed;
`#n` appended when the same outcome and date come back after a different close), and on
UNIQUE(close_key, version) in the ledger. Before inserting, the stage looks for a stamp of the
same close: if a process died after inserting the stamp but before recording
`closed_seen_at`, the retry finds the stamp and only records the sighting. Two replicas that
race insert the same (close_key, version); the loser's savepoint rolls back.

A reopened opportunity keeps its stamp active (its fields keep showing it) until it closes
again. Seeing it open is a fact, recorded when seen (`reopens_seen` + 1, in the same
transaction that clears `closed_seen_at`), so the next close has a key of its own and makes
version + 1, which supersedes the old, even on the same outcome and close date. A close whose
outcome or close date changed between two ticks (reopened and re-closed unseen) is a new close
too. A reopen and re-close to the same outcome and date that no tick saw is indistinguishable
from the first close and keeps its stamp; `ecosync attribution restamp` forces a new version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schema.models import (
    Account,
    AttributionCredit,
    AttributionStamp,
    Opportunity,
    Overlap,
    Partner,
)
from sync import dirty
from sync.attribution.currency import RateProvider, StaticRates, convert_on
from sync.attribution.rules import (
    Attribution,
    OppFacts,
    OverlapSpan,
    allocate,
    attribute,
    config_version,
)
from sync.config import AttributionConfig
from sync.dirty import Kind, Queue

PAGE = 500
CLOSED = ("won", "lost")


@dataclass
class StampStats:
    stamped: int = 0  # new stamps (first closes and re-closes)
    superseded: int = 0  # older versions superseded by a re-close or a restamp
    reopened: int = 0  # stamped opportunities seen open again
    recovered: int = 0  # stamp found already made for this close (crash, retry, race)
    late: int = 0
    stamp_ids: list[int] = field(default_factory=list)


def close_base(opp: Opportunity, close_day: str) -> str:
    base = f"{opp.source}:{opp.external_id}:{opp.status}:{close_day}"
    # Keys of closes before any observed reopen keep their original form.
    return f"{base}:reopen{opp.reopens_seen}" if opp.reopens_seen else base


def _base_of(close_key: str) -> str:
    head, sep, tail = close_key.rpartition("#")
    return head if sep and tail.isdigit() else close_key


def stamp_closed(
    session: Session, config: AttributionConfig, *, now: datetime, run_id: int | None = None,
    late: bool = False, rates: RateProvider | None = None,
) -> StampStats:
    """Stamp every live opportunity whose current close has no stamp yet.

    Runs inside the caller's transaction; the caller commits. Queues every opportunity it
    stamps for planning (sync.dirty), so the plan stage of the same tick writes the stamped
    fields.
    """
    stats = StampStats()
    provider = rates or StaticRates.from_config(config)
    _clear_reopened(session, stats)
    partners = _partner_names(session)
    after = 0
    while True:
        # Candidates: closes never seen, and seen closes whose record changed (outcome or
        # close date may differ): ingest queues every changed record for planning.
        opps = list(session.scalars(
            select(Opportunity).where(
                Opportunity.id > after, Opportunity.status.in_(CLOSED),
                Opportunity.is_deleted.is_(False),
                or_(Opportunity.closed_seen_at.is_(None),
                    dirty.is_queued(Queue.PLAN, Kind.OPPORTUNITY, Opportunity.id)))
            .order_by(Opportunity.id).limit(PAGE)))
        if not opps:
            break
        after = opps[-1].id
        for opp in opps:
            _stamp_if_new_close(session, opp, config, partners, provider, now, run_id, late,
                                stats)
    return stats


def _clear_reopened(session: Session, stats: StampStats) -> None:
    reopened = (Opportunity.status == "open", Opportunity.closed_seen_at.is_not(None))
    dirty.mark(session, Queue.PLAN, Kind.OPPORTUNITY, select(Opportunity.id).where(*reopened))
    result = session.execute(
        update(Opportunity).where(*reopened)
        .values(closed_seen_at=None, reopens_seen=Opportunity.reopens_seen + 1)
        .execution_options(synchronize_session=False))
    stats.reopened += int(getattr(result, "rowcount", 0) or 0)


def _partner_names(session: Session) -> dict[str, str]:
    return {r.id: r.name for r in session.execute(select(Partner.id, Partner.name))}


def _active(session: Session, opp_id: int) -> AttributionStamp | None:
    return session.scalars(
        select(AttributionStamp).where(AttributionStamp.opportunity_id == opp_id,
                                       AttributionStamp.superseded_at.is_(None))
        .order_by(AttributionStamp.version.desc()).limit(1)).first()


def _stamp_if_new_close(
    session: Session, opp: Opportunity, config: AttributionConfig, partners: dict[str, str],
    rates: RateProvider, now: datetime, run_id: int | None, late: bool, stats: StampStats,
) -> None:
    # Without a CRM close date the key must not depend on the day we look: a retry after
    # midnight would otherwise see a different close.
    base = close_base(opp, opp.close_date.isoformat() if opp.close_date else "no-close-date")
    active = _active(session, opp.id)
    if active is not None and _base_of(active.close_key) == base:
        if opp.closed_seen_at is None:
            stats.recovered += 1
            opp.closed_seen_at = now
            dirty.mark(session, Queue.PLAN, Kind.OPPORTUNITY, [opp.id])
        return
    keys = set(session.scalars(select(AttributionStamp.close_key).where(
        AttributionStamp.opportunity_id == opp.id)))
    same = {k for k in keys if _base_of(k) == base}
    close_key = base if not same else f"{base}#{len(same) + 1}"
    stamp = make_stamp(session, opp, config, partners, rates, now=now, close_key=close_key,
                       supersedes=active, run_id=run_id, late=late, reason=None,
                       assumed_close_date=opp.close_date is None)
    if stamp is None:
        stats.recovered += 1  # another replica stamped this close first
        return
    stats.stamped += 1
    stats.superseded += active is not None
    stats.late += late
    stats.stamp_ids.append(stamp.id)
    opp.closed_seen_at = now
    dirty.mark(session, Queue.PLAN, Kind.OPPORTUNITY, [opp.id])


def spans_for(session: Session, opp: Opportunity) -> list[OverlapSpan]:
    """Every overlap row (history included) of the opportunity's account."""
    if not opp.account_external_id:
        return []
    rows = session.execute(
        select(Overlap.id, Overlap.partner_id, Partner.name, Overlap.population,
               Overlap.method, Overlap.first_seen_at, Overlap.ended_at)
        .join(Account, Account.id == Overlap.account_id)
        .join(Partner, Partner.id == Overlap.partner_id)
        .where(and_(Account.source == opp.source,
                    Account.external_id == opp.account_external_id))
        .order_by(Overlap.id))
    return [OverlapSpan(r.id, r.partner_id, r.name, r.population, r.first_seen_at,
                        r.ended_at, r.method) for r in rows]


def make_stamp(
    session: Session, opp: Opportunity, config: AttributionConfig, partners: dict[str, str],
    rates: RateProvider, *, now: datetime, close_key: str, supersedes: AttributionStamp | None,
    run_id: int | None, late: bool, reason: str | None, assumed_close_date: bool,
) -> AttributionStamp | None:
    """Insert the next version of `close_key` for `opp`; None if that version already exists."""
    close_day = opp.close_date or (opp.closed_seen_at or now).date()
    facts = OppFacts(amount=opp.amount, created_at=opp.created_at, close_date=close_day,
                     lead_source=opp.lead_source, referring_partner=opp.referring_partner)
    result = attribute(facts, spans_for(session, opp), partners, config)
    currency = (opp.currency or config.corporate_currency).upper()
    conversion = convert_on(rates, currency, config.corporate_currency, close_day)
    corporate_total = (None if opp.amount is None or conversion.rate is None
                       else allocate(opp.amount * conversion.rate, [Decimal(1)])[0])
    corporate_parts = _corporate_parts(result, corporate_total)
    version = max(session.scalars(select(AttributionStamp.version).where(
        AttributionStamp.opportunity_id == opp.id)), default=0) + 1
    stamp = AttributionStamp(
        opportunity_id=opp.id, close_key=close_key, version=version,
        supersedes_id=supersedes.id if supersedes else None, outcome=opp.status,
        close_date=close_day, amount=opp.amount, currency=currency,
        corporate_amount=corporate_total, corporate_currency=config.corporate_currency.upper(),
        exchange_rate=conversion.rate, sourcing_partner_id=result.sourcing_partner_id,
        sourced_rule=result.sourced_rule, amount_model=config.amount_model,
        rule_config_version=config_version(config),
        evidence=evidence(result, opp, config, conversion.source, corporate_parts, late=late,
                          assumed_close_date=assumed_close_date, reason=reason),
        stamped_late=late, reason=reason, run_id=run_id, stamped_at=now)
    try:
        with session.begin_nested():
            session.add(stamp)
            session.flush()
            session.add_all(
                AttributionCredit(stamp_id=stamp.id, partner_id=c.partner_id, kind=c.kind,
                                  amount=c.amount, corporate_amount=part,
                                  overlap_id=c.overlap_id, population=c.population)
                for c, part in zip(result.credits, corporate_parts, strict=True))
            if supersedes is not None:
                supersedes.superseded_at = now
            session.flush()
    except IntegrityError:
        return None
    return stamp


def _corporate_parts(result: Attribution, total: Decimal | None) -> list[Decimal | None]:
    """Corporate amounts split like the credits, so they too sum exactly to the total."""
    if total is None or any(c.amount is None for c in result.credits):
        return [None] * len(result.credits)
    weights = [abs(c.amount) for c in result.credits if c.amount is not None]
    return list(allocate(total, weights))


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def evidence(
    result: Attribution, opp: Opportunity, config: AttributionConfig, rate_source: str | None,
    corporate_parts: list[Decimal | None], *, late: bool, assumed_close_date: bool,
    reason: str | None,
) -> dict[str, Any]:
    """What the stamp was made from, so "why was this partner credited?" has an answer.

    `partners` entries keep {partner_id, population, ...}: the plan stage reads them to show
    the population recorded at close. A partner credited by the CRM field alone has no
    overlap, so its entry has no population key.
    """
    partners_out: list[dict[str, Any]] = []
    for credit, corporate in zip(result.credits, corporate_parts, strict=True):
        entry: dict[str, Any] = {
            "partner_id": credit.partner_id, "partner_name": credit.partner_name,
            "kind": credit.kind, "amount": _money(credit.amount),
            "corporate_amount": _money(corporate), "overlap_id": credit.overlap_id,
        }
        if credit.population is not None:
            entry["population"] = credit.population
        partners_out.append(entry)
    out: dict[str, Any] = {
        "rule_config_version": config_version(config),
        "amount_model": config.amount_model,
        "window": {"start": _iso(result.window_start), "end": _iso(result.window_end),
                   "lookback_days": config.influence_lookback_days},
        "overlaps": [
            {"overlap_id": s.overlap_id, "partner_id": s.partner_id,
             "partner_name": s.partner_name, "population": s.population, "method": s.method,
             "first_seen_at": _iso(s.first_seen_at), "ended_at": _iso(s.ended_at)}
            for s in result.influencers],
        "sourced": None if result.sourced_rule is None else {
            "rule": result.sourced_rule, "partner_id": result.sourcing_partner_id,
            "referring_partner": opp.referring_partner, "lead_source": opp.lead_source},
        "partners": partners_out,
        "rate_source": rate_source,
        "late": late,
    }
    if late:
        out["late_note"] = ("stamped by a backfill after the close, from the overlap history "
                            "ecosync had at the time")
    if assumed_close_date:
        out["close_date_note"] = "the CRM had no close date; the day first seen closed is used"
    if reason:
        out["reason"] = reason
    return out
