"""Compute the desired owned-field values for records that need it, and diff them.

Reads the warehouse in keyset-paged chunks (bounded memory), asks the sharing policy what
may be shown, and yields RecordChanges for the write-back stage. Visibility is decided only
by sync.sharing; this module only arranges the data for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from connectors.base import Connector
from schema.models import (
    Account,
    AttributionStamp,
    Opportunity,
    Partner,
)
from schema.owned_fields import owned_fields
from schema.records import Stream
from sync import dirty
from sync.attribution.credited import credited_populations
from sync.dirty import Kind, Queue
from sync.sharing import EMPTY, SharedOverlap, Visibility, account_visibility, visibility
from sync.writeback import RecordChange, last_written, plan_changes

CHUNK = 2_000


@dataclass(frozen=True)
class PlannedChunk:
    stream: Stream
    record_ids: list[int]  # warehouse ids planned (taken off the queue after the push)
    changes: list[RecordChange]


def account_values(vis: Visibility) -> dict[str, object]:
    """Desired account fields (DESIGN.md 5) from what the account's sharing lets us show."""
    return {
        "overlap_count": vis.overlap_count,
        "overlap_partners": vis.partners_field() or None,
        "overlap_contacts": vis.contacts_field() or None,
        "overlap_changed_at": vis.changed_at,
    }


def opportunity_values(live: Visibility, stamp: Any | None,
                       credited: Sequence[SharedOverlap]) -> dict[str, object]:
    """Open: live influence from the account's active overlaps. Closed and stamped: the
    stamp, which later overlap changes never alter."""
    if stamp is None:
        return {
            "partner_influenced": live.overlap_count > 0,
            "influencing_partners": live.partners_field() or None,
            "sourcing_partner": None,
            "attribution_stamped_at": None,
        }
    vis = visibility(credited)
    named = {n.partner_id: n.partner_name for n in vis.named}
    return {
        "partner_influenced": vis.overlap_count > 0,
        "influencing_partners": vis.partners_field() or None,
        "sourcing_partner": named.get(stamp.sourcing_partner_id or ""),
        "attribution_stamped_at": stamp.stamped_at,
    }


def _keyset(session: Session, model: Any, source: str, after: int) -> list[Any]:
    """The next chunk of the source's records queued for planning (sync.dirty), in id order:
    the queue's key drives, so a few queued records among millions cost a few lookups."""
    kind = Kind.ACCOUNT if model is Account else Kind.OPPORTUNITY
    q = dirty.Q
    return list(session.execute(
        select(model).join(q, and_(q.c.queue == Queue.PLAN.value, q.c.kind == kind.value,
                                   q.c.record_id == model.id))
        .where(model.source == source, q.c.record_id > after)
        .order_by(q.c.record_id).limit(CHUNK)
    ).scalars())


def plan_accounts(
    session: Session, connector: Connector, now: datetime
) -> Iterator[PlannedChunk]:
    source = connector.name
    after = 0
    while rows := _keyset(session, Account, source, after):
        after = rows[-1].id
        live = [a for a in rows if not a.is_deleted]
        shown = account_visibility(session, [a.id for a in live])
        written = last_written(session, source, Stream.ACCOUNTS, [a.external_id for a in live])
        changes = []
        for acc in live:
            desired = account_values(shown.get(acc.id, EMPTY))
            change = plan_changes(
                source, Stream.ACCOUNTS, acc.external_id, desired,
                connector.stored_form(Stream.ACCOUNTS, desired),
                written.get(acc.external_id, {}), acc.owned_values)
            if change:
                changes.append(replace(change, name=acc.name))
        yield PlannedChunk(Stream.ACCOUNTS, [a.id for a in rows], changes)


def _stamps(session: Session, opp_ids: Sequence[int]
            ) -> dict[int, tuple[Any, dict[str, str | None]]]:
    """Each opportunity's active stamp with its credited partners' populations to show."""
    stamps = session.execute(
        select(AttributionStamp).where(AttributionStamp.opportunity_id.in_(opp_ids),
                                       AttributionStamp.superseded_at.is_(None))
    ).scalars().all()
    populations = credited_populations(session, stamps)
    return {s.opportunity_id: (s, populations[s.id]) for s in stamps}


def plan_opportunities(
    session: Session, connector: Connector, now: datetime
) -> Iterator[PlannedChunk]:
    source = connector.name
    partners = _partners(session)
    after = 0
    while rows := _keyset(session, Opportunity, source, after):
        after = rows[-1].id
        live = [o for o in rows if not o.is_deleted]
        acc_ids = dict(session.execute(
            select(Account.external_id, Account.id).where(
                Account.source == source,
                Account.external_id.in_({o.account_external_id for o in live
                                         if o.account_external_id}))
        ).all())
        shown = account_visibility(session, list(acc_ids.values()))
        stamps = _stamps(session, [o.id for o in live])
        written = last_written(session, source, Stream.OPPORTUNITIES,
                               [o.external_id for o in live])
        changes = []
        for opp in live:
            live_vis = shown.get(acc_ids.get(opp.account_external_id or "", -1), EMPTY)
            stamp, populations = stamps.get(opp.id, (None, {}))
            credited = _credited_overlaps(populations, partners)
            desired = opportunity_values(live_vis, stamp, credited)
            change = plan_changes(
                source, Stream.OPPORTUNITIES, opp.external_id, desired,
                connector.stored_form(Stream.OPPORTUNITIES, desired),
                written.get(opp.external_id, {}), opp.owned_values)
            if change:
                changes.append(replace(change, name=opp.name))
        yield PlannedChunk(Stream.OPPORTUNITIES, [o.id for o in rows], changes)


def _partners(session: Session) -> dict[str, tuple[str, dict[str, Any]]]:
    return {p.id: (p.name, p.share or {}) for p in session.scalars(select(Partner))}


def _credited_overlaps(populations: dict[str, str | None],
                       partners: dict[str, tuple[str, dict[str, Any]]]) -> list[SharedOverlap]:
    """The stamp's partners at the population sync.attribution.credited found for each,
    shown under each partner's current sharing policy (a policy change applies
    retroactively); a partner with no population to show it under is left out."""
    return [SharedOverlap(pid, *partners[pid], population)
            for pid, population in populations.items()
            if pid in partners and population is not None]


ALL_FIELDS = {s: [f.logical for f in owned_fields(s)] for s in Stream}
