"""Compute the desired owned-field values for records that need it, and diff them.

Reads the warehouse in keyset-paged chunks (bounded memory), asks the sharing policy what
may be shown, and yields RecordChanges for the write-back stage. Visibility is decided only
by sync.sharing; this module only arranges the data for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from connectors.base import Connector
from schema.models import (
    Account,
    AttributionCredit,
    AttributionStamp,
    Opportunity,
    Overlap,
    Partner,
    PartnerAccount,
    WritebackError,
)
from schema.owned_fields import owned_fields
from schema.records import Stream
from sync.sharing import OverlapView, visibility
from sync.writeback import RecordChange, last_written, plan_changes

CHUNK = 2_000


@dataclass(frozen=True)
class PlannedChunk:
    stream: Stream
    record_ids: list[int]  # warehouse ids planned (to clear fields_dirty after the push)
    changes: list[RecordChange]


def _due_dead_letters(session: Session, source: str, stream: Stream, now: datetime) -> set[str]:
    return set(session.scalars(
        select(WritebackError.external_id).where(
            WritebackError.source == source, WritebackError.stream == stream.value,
            WritebackError.status == "pending", WritebackError.next_retry_at <= now)
    ))


def _overlap_views(session: Session, account_ids: Sequence[int]) -> dict[int, list[OverlapView]]:
    """Active overlaps of these accounts, and ended ones (for overlap_changed_at)."""
    out: dict[int, list[OverlapView]] = defaultdict(list)
    rows = session.execute(
        select(Overlap.account_id, Overlap.partner_id, Partner.name, Partner.share,
               Overlap.population, PartnerAccount.owner_name, PartnerAccount.owner_email,
               Overlap.first_seen_at, Overlap.ended_at)
        .join(Partner, Partner.id == Overlap.partner_id)
        .outerjoin(PartnerAccount, PartnerAccount.id == Overlap.partner_account_id)
        .where(Overlap.account_id.in_(account_ids))
    )
    for r in rows:
        out[r.account_id].append(OverlapView(
            partner_id=r.partner_id, partner_name=r.name, share=r.share or {},
            population=r.population, owner_name=r.owner_name, owner_email=r.owner_email,
            first_seen_at=r.first_seen_at, ended_at=r.ended_at))
    return out


def account_values(overlaps: Sequence[OverlapView]) -> dict[str, object]:
    """Desired account fields (DESIGN.md 5) from an account's overlaps, as shared."""
    vis = visibility(overlaps)
    return {
        "overlap_count": vis.overlap_count,
        "overlap_partners": vis.partners_text or None,
        "overlap_contacts": vis.contacts_text or None,
        "overlap_changed_at": vis.changed_at,
    }


def opportunity_values(
    overlaps: Sequence[OverlapView], stamp: Any | None, credited: Sequence[OverlapView]
) -> dict[str, object]:
    """Open: live influence from the account's active overlaps. Closed and stamped: the stamp."""
    if stamp is None:
        vis = visibility([o for o in overlaps if o.ended_at is None])
        return {
            "partner_influenced": vis.overlap_count > 0,
            "influencing_partners": vis.partners_text or None,
            "sourcing_partner": None,
            "attribution_stamped_at": None,
        }
    vis = visibility(credited)
    sourcing = None
    if stamp.sourcing_partner_id:
        named = {n.partner_id: n.partner_name for n in vis.named}
        sourcing = named.get(stamp.sourcing_partner_id)
    return {
        "partner_influenced": vis.overlap_count > 0,
        "influencing_partners": vis.partners_text or None,
        "sourcing_partner": sourcing,
        "attribution_stamped_at": stamp.stamped_at,
    }


def _keyset(session: Session, model: Any, source: str, extra_ids: set[str],
            after: int) -> list[Any]:
    cond = model.fields_dirty.is_(True)
    if extra_ids:
        cond = or_(cond, model.external_id.in_(list(extra_ids)[:900]))
    return list(session.execute(
        select(model).where(model.source == source, model.id > after, cond)
        .order_by(model.id).limit(CHUNK)
    ).scalars())


def plan_accounts(
    session: Session, connector: Connector, now: datetime
) -> Iterator[PlannedChunk]:
    source = connector.name
    retry = _due_dead_letters(session, source, Stream.ACCOUNTS, now)
    after = 0
    while rows := _keyset(session, Account, source, retry, after):
        after = rows[-1].id
        live = [a for a in rows if not a.is_deleted]
        views = _overlap_views(session, [a.id for a in live])
        written = last_written(session, source, Stream.ACCOUNTS, [a.external_id for a in live])
        changes = []
        for acc in live:
            desired = account_values(views.get(acc.id, []))
            change = plan_changes(
                source, Stream.ACCOUNTS, acc.external_id, desired,
                connector.stored_form(Stream.ACCOUNTS, desired),
                written.get(acc.external_id, {}), acc.owned_values)
            if change:
                changes.append(change)
        yield PlannedChunk(Stream.ACCOUNTS, [a.id for a in rows], changes)


def _stamps(session: Session, opp_ids: Sequence[int]) -> dict[int, tuple[Any, list[str]]]:
    stamps = session.execute(
        select(AttributionStamp).where(AttributionStamp.opportunity_id.in_(opp_ids),
                                       AttributionStamp.superseded_at.is_(None))
    ).scalars().all()
    credits: dict[int, list[str]] = defaultdict(list)
    if stamps:
        for stamp_id, partner_id in session.execute(
            select(AttributionCredit.stamp_id, AttributionCredit.partner_id)
            .where(AttributionCredit.stamp_id.in_([s.id for s in stamps]))
        ):
            credits[stamp_id].append(partner_id)
    return {s.opportunity_id: (s, credits.get(s.id, [])) for s in stamps}


def plan_opportunities(
    session: Session, connector: Connector, now: datetime
) -> Iterator[PlannedChunk]:
    source = connector.name
    retry = _due_dead_letters(session, source, Stream.OPPORTUNITIES, now)
    partners = _partners(session)
    after = 0
    while rows := _keyset(session, Opportunity, source, retry, after):
        after = rows[-1].id
        live = [o for o in rows if not o.is_deleted]
        acc_ids = dict(session.execute(
            select(Account.external_id, Account.id).where(
                Account.source == source,
                Account.external_id.in_({o.account_external_id for o in live
                                         if o.account_external_id}))
        ).all())
        views = _overlap_views(session, list(acc_ids.values()))
        stamps = _stamps(session, [o.id for o in live])
        written = last_written(session, source, Stream.OPPORTUNITIES,
                               [o.external_id for o in live])
        changes = []
        for opp in live:
            account_views = views.get(acc_ids.get(opp.account_external_id or "", -1), [])
            stamp, credited_ids = stamps.get(opp.id, (None, []))
            credited = _credited_views(stamp, credited_ids, partners)
            desired = opportunity_values(account_views, stamp, credited)
            change = plan_changes(
                source, Stream.OPPORTUNITIES, opp.external_id, desired,
                connector.stored_form(Stream.OPPORTUNITIES, desired),
                written.get(opp.external_id, {}), opp.owned_values)
            if change:
                changes.append(change)
        yield PlannedChunk(Stream.OPPORTUNITIES, [o.id for o in rows], changes)


def _partners(session: Session) -> dict[str, tuple[str, dict[str, Any]]]:
    return {p.id: (p.name, p.share or {}) for p in session.scalars(select(Partner))}


def _credited_views(stamp: Any | None, partner_ids: Sequence[str],
                    partners: dict[str, tuple[str, dict[str, Any]]]) -> list[OverlapView]:
    """The stamp's partners, with the population its evidence recorded at close, shown
    under each partner's current sharing policy (a policy change applies retroactively)."""
    if stamp is None:
        return []
    recorded = {p["partner_id"]: p for p in (stamp.evidence or {}).get("partners", [])}
    out = []
    for pid in partner_ids:
        if pid not in partners:
            continue
        name, share = partners[pid]
        out.append(OverlapView(
            partner_id=pid, partner_name=name, share=share,
            population=recorded.get(pid, {}).get("population", "prospect"),
            owner_name=None, owner_email=None, first_seen_at=None, ended_at=None))
    return out


ALL_FIELDS = {s: [f.logical for f in owned_fields(s)] for s in Stream}
