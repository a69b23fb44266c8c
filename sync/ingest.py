"""Land pulled pages in the warehouse, each page and its watermark in one transaction.

A page's rows and the watermark that covers them commit together, so a kill at any moment
leaves the watermark at or behind committed data, never ahead of it. Re-landing a record is
harmless (idempotent upsert), which is what makes lookback windows safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String, Table, case, select
from sqlalchemy.orm import Session

from connectors.base import Page
from connectors.base import Watermark as Cursor
from schema.models import Account, Opportunity, Watermark
from schema.records import AccountRecord, OpportunityRecord, Stream
from schema.states import BackfillState
from schema.upsert import bulk_upsert
from sync import dirty
from sync.dirty import Kind, Queue
from sync.matching.keys import (
    GENERIC_DOMAINS,
    normalize_duns,
    normalize_name,
    registrable_domain,
)
from sync.owners import OwnerBatch

KEY = ["source", "external_id"]
# Match keys too long for their column are no keys at all (no real host or name is that long);
# other over-long text is cut to its column. NUL is dropped everywhere: PostgreSQL refuses it,
# and one hostile CRM value must not stop every later page from landing.
_KEY_COLUMNS = frozenset({"domain_key", "name_key"})


def _limits(table: Table) -> dict[str, int]:
    return {c.key: int(c.type.length) for c in table.columns
            if isinstance(c.type, String) and c.type.length}


def _max_amount(table: Table) -> Decimal:
    kind = table.c.amount.type
    assert isinstance(kind, Numeric) and kind.precision is not None
    return Decimal(10) ** (kind.precision - (kind.scale or 0))


def _no_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _no_nul(v) for k, v in value.items()}
    return value


def storable(row: dict[str, Any], limits: Mapping[str, int],
             max_amount: Decimal | None = None) -> dict[str, Any]:
    """The row as every warehouse engine can store it (see _KEY_COLUMNS above)."""
    out = {k: _no_nul(v) for k, v in row.items()}
    for key, limit in limits.items():
        value = out.get(key)
        if isinstance(value, str) and len(value) > limit:
            out[key] = None if key in _KEY_COLUMNS else value[:limit]
    amount = out.get("amount")
    if max_amount is not None and isinstance(amount, Decimal) and abs(amount) >= max_amount:
        out["amount"] = None  # beyond the column's precision: unknown, not wrong
    return out


@dataclass(frozen=True)
class Landed:
    records: int
    deleted: int
    # New records, or records that differ from the stored row in more than their
    # modification stamp: only these are queued for planning. A re-read of an unchanged
    # record (a lookback window, the echo of ecosync's own write) costs no further work.
    changed: int = 0


def account_row(
    rec: AccountRecord, now: datetime, generic: frozenset[str] = GENERIC_DOMAINS
) -> dict[str, Any]:
    return {
        "source": rec.source, "external_id": rec.external_id, "name": rec.name,
        "website": rec.website,
        "domain_key": registrable_domain(rec.website, generic=generic),
        "name_key": normalize_name(rec.name), "duns": normalize_duns(rec.duns),
        "owner_id": rec.owner_id, "account_type": rec.account_type, "country": rec.country,
        "created_at": rec.created_at, "modified_at": rec.modified_at,
        "is_deleted": rec.is_deleted, "deleted_at": now if rec.is_deleted else None,
        "owned_values": dict(rec.owned) or None,
        "ingested_at": now,
    }


def opportunity_row(rec: OpportunityRecord, now: datetime) -> dict[str, Any]:
    return {
        "source": rec.source, "external_id": rec.external_id,
        "account_external_id": rec.account_external_id, "name": rec.name,
        "stage": rec.stage, "status": rec.status.value, "amount": rec.amount,
        "currency": rec.currency, "close_date": rec.close_date, "created_at": rec.created_at,
        "lead_source": rec.lead_source, "referring_partner": rec.referring_partner,
        "modified_at": rec.modified_at, "is_deleted": rec.is_deleted,
        "deleted_at": now if rec.is_deleted else None,
        "owned_values": dict(rec.owned) or None, "ingested_at": now,
    }


# What a re-read may change without being a change: the CRM's modification stamp (ecosync's
# own write moves it), when we read it, and observations of ours.
_NOT_COMPARED = frozenset({"id", "source", "external_id", "modified_at", "ingested_at",
                           "deleted_at", "closed_seen_at", "reopens_seen"})
# What matching reads of an account (DESIGN.md 4): only a change here costs a re-match.
_MATCHED = ("domain_key", "name_key", "duns", "is_deleted")


@dataclass(frozen=True)
class _Changes:
    changed: set[str]  # new, or different in anything compared: to re-plan
    rematch: set[str]  # new, or different in what matching reads: to re-match


def _changes(session: Session, model: type[Account] | type[Opportunity],
             rows: Sequence[Mapping[str, Any]]) -> _Changes:
    """Compare the rows (as they will be stored, after `storable`) with the stored ones."""
    if not rows:
        return _Changes(set(), set())
    table: Table = model.__table__  # type: ignore[assignment]
    columns = [c for c in rows[0] if c not in _NOT_COMPARED]
    matched = [columns.index(c) for c in _MATCHED if c in columns]
    source = rows[0]["source"]
    keys = list({r["external_id"] for r in rows})
    stored: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(keys), 900):
        for found in session.execute(
            select(table.c.external_id, *(table.c[c] for c in columns))
            .where(table.c.source == source, table.c.external_id.in_(keys[start:start + 900]))
        ):
            stored[found[0]] = tuple(found[1:])
    out = _Changes(set(), set())
    for row in rows:
        key, values = row["external_id"], tuple(row[c] for c in columns)
        old = stored.get(key)
        if old != values:
            out.changed.add(key)
        if old is None or any(old[i] != values[i] for i in matched):
            out.rematch.add(key)
    return out


def _queue(session: Session, model: type[Account] | type[Opportunity], source: str,
           changes: _Changes) -> None:
    """Queue the landed records that changed, by their warehouse ids."""
    kind = Kind.ACCOUNT if model is Account else Kind.OPPORTUNITY
    keys = sorted(changes.changed | changes.rematch)
    ids: dict[str, int] = {}
    for start in range(0, len(keys), 900):
        ids.update(session.execute(
            select(model.external_id, model.id)
            .where(model.source == source, model.external_id.in_(keys[start:start + 900]))
        ).all())
    dirty.mark(session, Queue.PLAN, kind, [ids[k] for k in changes.changed])
    if model is Account:
        dirty.mark(session, Queue.MATCH, kind, [ids[k] for k in changes.rematch])


def _kept_deleted_at(table: Table, excluded: Any) -> Mapping[str, Any]:
    # A deletion keeps the first time it was seen.
    return {"deleted_at": case(
        (excluded.is_deleted & table.c.deleted_at.is_not(None), table.c.deleted_at),
        else_=excluded.deleted_at,
    )}


_ACCOUNT_UPDATES = [
    c.key for c in Account.__table__.columns
    if c.key not in {"id", "source", "external_id", "deleted_at"}
]
_OPPORTUNITY_UPDATES = [
    c.key for c in Opportunity.__table__.columns
    # closed_seen_at and reopens_seen are the stamp stage's observations, not CRM data.
    if c.key not in {"id", "source", "external_id", "deleted_at", "closed_seen_at",
                     "reopens_seen"}
]


def land_records(
    session: Session, stream: Stream, records: Iterable[AccountRecord | OpportunityRecord],
    *, now: datetime, generic: frozenset[str] = GENERIC_DOMAINS,
) -> Landed:
    """Upsert the records and queue those that changed (sync.dirty): a re-read of an
    unchanged record (a lookback window, our own write moving its modstamp) costs no
    matching and no planning."""
    deleted = 0
    rows: list[dict[str, Any]] = []
    model: type[Account] | type[Opportunity]
    owners = OwnerBatch()
    if stream is Stream.ACCOUNTS:
        model, updates = Account, _ACCOUNT_UPDATES
        limits = _limits(Account.__table__)  # type: ignore[arg-type]
        for rec in records:
            assert isinstance(rec, AccountRecord)
            rows.append(storable(account_row(rec, now, generic), limits))
            owners.add(rec)
            deleted += rec.is_deleted
    else:
        model, updates = Opportunity, _OPPORTUNITY_UPDATES
        table: Table = Opportunity.__table__  # type: ignore[assignment]
        limits, max_amount = _limits(table), _max_amount(table)
        for rec in records:
            assert isinstance(rec, OpportunityRecord)
            rows.append(storable(opportunity_row(rec, now), limits, max_amount))
            deleted += rec.is_deleted
    if not rows:
        return Landed(0, 0, 0)
    changes = _changes(session, model, rows)
    count = bulk_upsert(session, model, rows, KEY, updates,
                        update_expressions=_kept_deleted_at)
    _queue(session, model, rows[0]["source"], changes)
    owners.land(session, now)
    return Landed(count, deleted, len(changes.changed))


def read_watermark(session: Session, source: str, stream: Stream) -> Cursor | None:
    row = session.get(Watermark, (source, stream.value))
    if row is None or row.modified_at is None:
        return None
    return Cursor(row.modified_at, row.last_id or "", row.deleted_swept_at)


def save_sweep(session: Session, source: str, stream: Stream, swept: datetime, *,
               now: datetime) -> None:
    """A complete sweep for deletions up to `swept` (the CRM's clock) is landed."""
    row = session.get(Watermark, (source, stream.value))
    if row is None:
        row = Watermark(source=source, stream=stream.value, updated_at=now)
        session.add(row)
    if row.deleted_swept_at is None or swept > row.deleted_swept_at:
        row.deleted_swept_at = swept
    session.flush()


def save_watermark(
    session: Session, source: str, stream: Stream, cursor: Cursor, *, now: datetime,
    run_id: int | None = None,
) -> None:
    row = session.get(Watermark, (source, stream.value))
    if row is None:
        session.add(Watermark(source=source, stream=stream.value, modified_at=cursor.modified_at,
                              last_id=cursor.last_id, updated_at=now, run_id=run_id))
        return
    # Never move backwards: a lookback re-read must not rewind the committed position.
    current = Cursor(row.modified_at, row.last_id or "") if row.modified_at else None
    if current is None or (cursor.modified_at, cursor.last_id) > (
        current.modified_at, current.last_id
    ):
        row.modified_at, row.last_id = cursor.modified_at, cursor.last_id
    row.updated_at, row.run_id = now, run_id
    session.flush()


def start_cursor(session: Session, source: str, stream: Stream, *, backfill: bool,
                 since: datetime | None, now: datetime) -> Cursor | None:
    """Where a pull starts. Incremental: the watermark. Backfill: resume an unfinished one
    from its last committed page, else start over (from `since` when given)."""
    mark = read_watermark(session, source, stream)
    if not backfill:
        return mark
    row = session.get(Watermark, (source, stream.value))
    if row is not None and row.backfill_cursor == BackfillState.IN_PROGRESS and mark is not None:
        return mark  # a killed backfill continues from its last committed page
    if row is None:
        row = Watermark(source=source, stream=stream.value, updated_at=now)
        session.add(row)
    row.backfill_cursor, row.backfill_completed_at = BackfillState.IN_PROGRESS, None
    row.modified_at, row.last_id = None, None
    return Cursor(since, "") if since else None


@dataclass(frozen=True)
class BackfillStart:
    since: Cursor | None  # where the stream's pull starts
    done: bool  # finished by the interrupted backfill this one resumes: not pulled again
    note: str | None  # what a resumed backfill tells the operator


def backfill_starts(session: Session, source: str, streams: Sequence[Stream], *,
                    since: datetime | None, now: datetime) -> dict[Stream, BackfillStart]:
    """Where a backfill of `source` starts each stream. If an earlier backfill of it was
    interrupted (a stream still in progress, or pulled while its write-back had not finished),
    this one resumes it: streams it pulled to the end are not pulled again, the others
    continue from their last committed page. Otherwise every stream starts over and is marked
    in progress at once."""
    rows = {s: session.get(Watermark, (source, s.value)) for s in streams}
    unfinished = (BackfillState.IN_PROGRESS, BackfillState.PULLED)
    resuming = any(r is not None and r.backfill_cursor in unfinished for r in rows.values())
    out: dict[Stream, BackfillStart] = {}
    for stream, row in rows.items():
        label = f"{source}/{stream.value}"
        if resuming and row is not None and row.backfill_cursor == BackfillState.IN_PROGRESS:
            mark = read_watermark(session, source, stream)
            note = (f"{label}: resuming the interrupted backfill from "
                    f"{mark.modified_at:%Y-%m-%d %H:%M:%S} UTC" if mark else
                    f"{label}: resuming the interrupted backfill from the start (none of its "
                    "pages was committed)")
            out[stream] = BackfillStart(mark or (Cursor(since, "") if since else None), False,
                                        note)
        elif resuming:
            out[stream] = BackfillStart(None, True, f"{label}: pulled by the interrupted "
                                                    "backfill; not pulled again")
        else:
            if row is None:
                row = Watermark(source=source, stream=stream.value, updated_at=now)
                session.add(row)
            row.backfill_cursor, row.backfill_completed_at = BackfillState.IN_PROGRESS, None
            row.modified_at, row.last_id = None, None
            out[stream] = BackfillStart(Cursor(since, "") if since else None, False, None)
    return out


def complete_window(session: Session, source: str, stream: Stream, until: datetime, *,
                    now: datetime, run_id: int | None = None) -> None:
    """The whole window up to `until` (the CRM's own clock when the tick began) is landed.

    The watermark moves to `until`, not to the last record's stamp: the next window is
    `[until - lookback, next tick's start)`, so once the CRM has been quiet for longer than
    the lookback a tick reads nothing, and the echo of ecosync's own writes is read at most
    until the lookback has passed. Records stamped exactly at `until` were outside this
    half-open window and are inside the next one (ties are safe).
    """
    save_watermark(session, source, stream, Cursor(until, ""), now=now, run_id=run_id)
    row = session.get(Watermark, (source, stream.value))
    if row is not None and row.backfill_cursor is not None:
        # Pulled; the backfill is complete once the tick's other stages have run too
        # (finish_backfills), so a backfill killed in its write-back does not pull again.
        row.backfill_cursor = BackfillState.PULLED


def finish_backfills(session: Session, sources: Iterable[str], *, now: datetime) -> None:
    """A tick ran every stage: the streams it (or an interrupted backfill) pulled are done."""
    for row in session.scalars(select(Watermark).where(
            Watermark.source.in_(list(sources)),
            Watermark.backfill_cursor == BackfillState.PULLED)):
        row.backfill_cursor, row.backfill_completed_at = None, now


def land_page(
    session: Session, source: str, page: Page, *, now: datetime, run_id: int | None = None,
    generic: frozenset[str] = GENERIC_DOMAINS,
) -> Landed:
    """Upsert the page's records and advance the watermark (and the end of a completed
    sweep for deletions, see connectors.base.Page), in the caller's transaction."""
    landed = land_records(session, page.stream, page.records, now=now, generic=generic)
    if page.watermark is not None:
        save_watermark(session, source, page.stream, page.watermark, now=now, run_id=run_id)
    if page.swept is not None:
        save_sweep(session, source, page.stream, page.swept, now=now)
    return landed


def live_count(session: Session, source: str, stream: Stream) -> int:
    """Live (not deleted) rows of a source and stream, for completeness audits."""
    from sqlalchemy import func

    model: type[Account] | type[Opportunity] = (
        Account if stream is Stream.ACCOUNTS else Opportunity
    )
    return int(session.execute(
        select(func.count()).select_from(model)
        .where(model.source == source, model.is_deleted.is_(False))
    ).scalar_one())
