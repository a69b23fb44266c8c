"""Facts the tick produced, recorded once and queued for the alerts that want them.

`detect_facts` runs inside the stamp stage's transaction, after the stamps: the facts and
their outbox rows commit with the tick's result or not at all. It looks only at what the tick
changed, the records still flagged for write-back (new or changed overlaps raise the flag on
their accounts, landed records and new stamps on themselves), so a quiet tick costs three
index reads. Each fact is a row of `alert_facts` keyed (event, subject); a fact already there
is never queued again, so a re-run after a crash, or a record flagged twice, announces once.

- overlap.new_on_open_opportunity: subject = the overlap id; an active overlap on an account
  with an open opportunity, whichever of the two came second;
- overlap.partner_customer_on_prospect: subject = the overlap id; the partner's customer on
  an account that is our prospect (sync.populations decides ours);
- opportunity.closed_with_partner: subject = the stamp's close key; a stamped close with at
  least one partner credited (a restamp keeps its close key, so it is not news again).

The first detection in a warehouse (alerts just switched on) records every fact already true
as `baseline` and queues nothing: a backfill or an existing install must not flood Slack
with history. Facts are recorded whatever the sharing policy; whether a partner may appear
in a message is decided when queuing and again when rendering (sync.sharing).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    String,
    and_,
    cast,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    union,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schema.models import (
    Account,
    AlertEvent,
    AlertFact,
    AttributionCredit,
    AttributionStamp,
    Opportunity,
    Overlap,
    Partner,
    PartnerAccount,
)
from schema.records import Population
from sync import dirty
from sync.attribution.credited import credited_populations
from sync.attribution.open_pipeline import OpenPipeline, open_pipeline
from sync.config import Config
from sync.config.alerts import AlertConfig, EventKind
from sync.dirty import Kind, Queue
from sync.populations import our_populations
from sync.reports.next_accounts import OpenOpp, Pipeline, open_opportunities
from sync.sharing import COUNTED, NAMED, SharedOverlap, share_level, visibility

ARMED = ("armed", "alerts")  # (event, subject) of the marker: alerts are switched on
PAGE = 500
MAX_OPPS_SHOWN = 5


@dataclass
class DetectStats:
    baseline: int = 0  # facts recorded as history when alerts were switched on
    facts: int = 0  # new facts recorded
    queued: int = 0  # outbox rows queued (one per alert that wants the fact)


def outbox_row(alert: AlertConfig, event: str, fact_key: str, payload: dict[str, Any],
               now: datetime, run_id: int | None) -> AlertEvent:
    return AlertEvent(alert_name=alert.name, event=event, fact_key=fact_key,
                      idempotency_key=uuid.uuid4().hex, payload=payload, status="pending",
                      attempts=0, created_at=now, next_attempt_at=now, run_id=run_id)


def passes_filters(alert: AlertConfig, partner_ids: Sequence[str], owner_id: str | None,
                   amount: Decimal | None) -> bool:
    """The alert's partner, owner and minimum-amount filters (an event without an amount is
    not filtered by amount)."""
    if alert.partners and not set(partner_ids) & set(alert.partners):
        return False
    if alert.owners and owner_id not in alert.owners:
        return False
    return not (alert.min_amount and amount is not None
                and amount < Decimal(str(alert.min_amount)))


def detect_facts(session: Session, config: Config, *, now: datetime,
                 run_id: int | None = None) -> DetectStats:
    """Record the facts of what this tick changed and queue them (inside the caller's
    transaction; the caller commits). Open pipeline converts as everywhere else
    (sync.attribution.open_pipeline), with the rates this transaction holds."""
    if not config.alerts:
        return DetectStats()
    if session.get(AlertFact, ARMED) is None:
        return _arm(session, now, run_id)
    run = _Detection(session, config, now, run_id,
                     open_pipeline(session, config.attribution, now.date()))
    run.overlaps(EventKind.NEW_ON_OPEN_OPPORTUNITY)
    run.overlaps(EventKind.PARTNER_CUSTOMER_ON_PROSPECT)
    run.stamps()
    return run.stats


def _scope() -> Any:
    """Accounts this tick changed: queued for planning themselves or through an opportunity
    (sync.dirty; the queue is cleared only by the push that follows the stamp stage)."""
    flagged_opps = (select(Account.id)
                    .join(Opportunity, and_(Opportunity.source == Account.source,
                                            Opportunity.account_external_id
                                            == Account.external_id))
                    .where(Opportunity.id.in_(dirty.queued(Queue.PLAN, Kind.OPPORTUNITY))))
    return union(dirty.queued(Queue.PLAN, Kind.ACCOUNT), flagged_opps)


def _not_recorded(event: EventKind, subject: Any) -> Any:
    return ~exists().where(AlertFact.event == event.value, AlertFact.subject == subject)


def _open_opportunity_exists() -> Any:
    return exists().where(Opportunity.source == Account.source,
                          Opportunity.account_external_id == Account.external_id,
                          Opportunity.status == "open", Opportunity.is_deleted == false())


def _overlap_candidates(event: EventKind, scope: Any | None) -> Any:
    """Active overlaps for which `event` holds, not yet recorded, within `scope` (or all)."""
    subject = cast(Overlap.id, String(255))
    query = (select(Overlap.id, subject.label("subject"))
             .join(Account, Account.id == Overlap.account_id)
             .where(Overlap.ended_at.is_(None), Account.is_deleted == false(),
                    _not_recorded(event, subject)))
    if event is EventKind.NEW_ON_OPEN_OPPORTUNITY:
        query = query.where(_open_opportunity_exists())
        if scope is not None:
            query = query.where(Account.id.in_(scope))
        return query
    ours = our_populations()
    if scope is not None:
        ours = ours.where(Account.id.in_(scope))
    pops = ours.subquery("ours")
    return (query.join(pops, pops.c.account_id == Overlap.account_id)
            .where(Overlap.population == Population.CUSTOMER.value,
                   pops.c.population == Population.PROSPECT.value))


def _stamp_candidates(scope_opps: bool) -> Any:
    query = (select(AttributionStamp.id, AttributionStamp.close_key.label("subject"))
             .join(Opportunity, Opportunity.id == AttributionStamp.opportunity_id)
             .where(AttributionStamp.superseded_at.is_(None),
                    Opportunity.is_deleted == false(),
                    exists().where(AttributionCredit.stamp_id == AttributionStamp.id),
                    _not_recorded(EventKind.CLOSED_WITH_PARTNER, AttributionStamp.close_key)))
    if scope_opps:
        query = query.where(Opportunity.id.in_(dirty.queued(Queue.PLAN, Kind.OPPORTUNITY)))
    return query


def _arm(session: Session, now: datetime, run_id: int | None) -> DetectStats:
    """Switching alerts on: every fact already true is history, recorded set-based."""
    stats = DetectStats()
    when = literal(now, AlertFact.detected_at.type)
    for event, candidates in (
        (EventKind.NEW_ON_OPEN_OPPORTUNITY,
         _overlap_candidates(EventKind.NEW_ON_OPEN_OPPORTUNITY, None)),
        (EventKind.PARTNER_CUSTOMER_ON_PROSPECT,
         _overlap_candidates(EventKind.PARTNER_CUSTOMER_ON_PROSPECT, None)),
        (EventKind.CLOSED_WITH_PARTNER, _stamp_candidates(False)),
    ):
        found = candidates.subquery("found")
        session.execute(insert(AlertFact).from_select(
            ["event", "subject", "baseline", "detected_at", "run_id"],
            select(literal(event.value, String(48)), found.c.subject, literal(True), when,
                   literal(run_id, AlertFact.run_id.type))))
    # Counted, not taken from rowcount: INSERT … SELECT reports none on some drivers.
    stats.baseline = int(session.scalar(select(func.count()).select_from(AlertFact)) or 0)
    session.add(AlertFact(event=ARMED[0], subject=ARMED[1], baseline=True, detected_at=now,
                          run_id=run_id))
    session.flush()
    return stats


@dataclass
class _Detection:
    session: Session
    config: Config
    now: datetime
    run_id: int | None
    pipeline: OpenPipeline

    def __post_init__(self) -> None:
        self.stats = DetectStats()
        self.shares = {p.id: (p.name, p.share or {}) for p in self.session.scalars(
            select(Partner))}
        self.corporate = self.pipeline.corporate

    def record(self, event: EventKind, subject: str, payload: dict[str, Any],
               partner_ids: Sequence[str], owner_id: str | None, amount: Decimal | None,
               shown: bool) -> None:
        """The fact, and one outbox row per alert that wants it, in one savepoint."""
        fact_key = f"{event.value}:{subject}"
        try:
            with self.session.begin_nested():
                self.session.add(AlertFact(event=event.value, subject=subject,
                                           detected_at=self.now, run_id=self.run_id))
                self.session.flush()
                self.stats.facts += 1
                if not shown:
                    return  # a fact about what may not be shown: recorded, never sent
                for alert in self.config.alerts:
                    if alert.wants(event.value) and passes_filters(alert, partner_ids,
                                                                   owner_id, amount):
                        self.session.add(outbox_row(alert, event.value, fact_key, payload,
                                                    self.now, self.run_id))
                        self.stats.queued += 1
                self.session.flush()
        except IntegrityError:
            pass  # recorded by a concurrent run first: it queued the messages

    def _pages(self, candidates: Any) -> Any:
        found = candidates.subquery("found")
        after = 0
        while True:
            ids = list(self.session.scalars(
                select(found.c.id).where(found.c.id > after).order_by(found.c.id).limit(PAGE)))
            if not ids:
                return
            after = ids[-1]
            yield ids

    def overlaps(self, event: EventKind) -> None:
        if not any(a.wants(event.value) for a in self.config.alerts):
            return  # nobody listens: leave the facts unrecorded until somebody does
        for ids in self._pages(_overlap_candidates(event, _scope())):
            rows = self.session.execute(
                select(Overlap.id, Overlap.partner_id, Overlap.population,
                       Overlap.first_seen_at, PartnerAccount.owner_name,
                       PartnerAccount.owner_email, Account.id, Account.source,
                       Account.external_id, Account.name, Account.domain_key,
                       Account.owner_id)
                .join(Account, Account.id == Overlap.account_id)
                .outerjoin(PartnerAccount, PartnerAccount.id == Overlap.partner_account_id)
                .where(Overlap.id.in_(ids)).order_by(Overlap.id)).all()
            opps = open_opportunities(self.session, [r[6] for r in rows],
                                      pipeline=self.pipeline)
            for (oid, pid, population, first_seen, owner, email, aid, source, ext, name,
                 domain, owner_id) in rows:
                name_share = self.shares.get(pid)
                # A partner's customer on our prospect says the partner's population: it is
                # sent only for partners named at that population (render.py).
                levels = COUNTED if event is EventKind.NEW_ON_OPEN_OPPORTUNITY else NAMED
                shown = name_share is not None and share_level(
                    name_share[1], population) in levels
                account_opps = opps.get(aid, [])
                pipeline = Pipeline.of(account_opps)
                payload = {
                    "account": {"id": aid, "source": source, "external_id": ext,
                                "name": name, "domain": domain, "owner_id": owner_id},
                    "partner": {"id": pid, "population": population, "owner_name": owner,
                                "owner_email": email},
                    "overlap_id": oid, "first_seen_at": first_seen.isoformat(),
                    "open_pipeline": _pipeline_payload(pipeline, self.corporate),
                    "opportunities": [_opp_payload(o) for o in account_opps[:MAX_OPPS_SHOWN]],
                }
                amount = (pipeline.amount
                          if event is EventKind.NEW_ON_OPEN_OPPORTUNITY else None)
                self.record(event, str(oid), payload, [pid], owner_id, amount, shown)

    def stamps(self) -> None:
        event = EventKind.CLOSED_WITH_PARTNER
        if not any(a.wants(event.value) for a in self.config.alerts):
            return
        for ids in self._pages(_stamp_candidates(True)):
            for stamp, opp, account in self.session.execute(
                select(AttributionStamp, Opportunity, Account)
                .join(Opportunity, Opportunity.id == AttributionStamp.opportunity_id)
                .outerjoin(Account, and_(Account.source == Opportunity.source,
                                         Account.external_id == Opportunity.account_external_id))
                .where(AttributionStamp.id.in_(ids)).order_by(AttributionStamp.id)).all():
                self._stamp(stamp, opp, account)

    def _stamp(self, stamp: AttributionStamp, opp: Opportunity, account: Account | None) -> None:
        # The population each credited partner is shown under: one owner of that rule.
        populations = credited_populations(self.session, [stamp])[stamp.id]
        credits = []
        for c in self.session.scalars(select(AttributionCredit).where(
                AttributionCredit.stamp_id == stamp.id).order_by(AttributionCredit.id)):
            credits.append({
                "partner_id": c.partner_id, "kind": c.kind,
                # None: may not be shown at all; REFERRAL: named (our own CRM's field).
                "population": populations.get(c.partner_id),
                "amount": _money(c.amount), "corporate_amount": _money(c.corporate_amount)})
        shown = visibility(
            SharedOverlap(c["partner_id"], self.shares[c["partner_id"]][0],
                          self.shares[c["partner_id"]][1], c["population"])
            for c in credits
            if c["partner_id"] in self.shares and c["population"] is not None
        ).overlap_count > 0
        owner_id = account.owner_id if account is not None else None
        payload = {
            "account": None if account is None else {
                "id": account.id, "source": account.source, "external_id": account.external_id,
                "name": account.name, "domain": account.domain_key, "owner_id": owner_id},
            "opportunity": {"source": opp.source, "external_id": opp.external_id,
                            "name": opp.name},
            "stamp": {"id": stamp.id, "version": stamp.version, "outcome": stamp.outcome,
                      "close_date": stamp.close_date.isoformat() if stamp.close_date else None,
                      "amount": _money(stamp.amount), "currency": stamp.currency,
                      "corporate_amount": _money(stamp.corporate_amount),
                      "corporate_currency": stamp.corporate_currency,
                      "sourcing_partner_id": stamp.sourcing_partner_id,
                      "late": stamp.stamped_late,
                      "stamped_at": stamp.stamped_at.isoformat()},
            "credits": credits,
        }
        self.record(EventKind.CLOSED_WITH_PARTNER, stamp.close_key, payload,
                    [str(c["partner_id"]) for c in credits], owner_id,
                    # no rate on the close date: the amount is unknown, so not above a minimum
                    stamp.corporate_amount or Decimal(0), shown)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _pipeline_payload(p: Pipeline, corporate: str) -> dict[str, Any]:
    return {"count": p.count, "amount": str(p.amount), "currency": corporate,
            "stage": p.stage, "unconverted": list(p.unconverted)}


def _opp_payload(o: OpenOpp) -> dict[str, Any]:
    return {"external_id": o.external_id, "name": o.name, "stage": o.stage,
            "amount": _money(o.amount), "currency": o.currency,
            "corporate_amount": _money(o.corporate_amount)}
