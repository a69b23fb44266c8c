"""Land pulled pages in the warehouse, each page and its watermark in one transaction.

A page's rows and the watermark that covers them commit together, so a kill at any moment
leaves the watermark at or behind committed data, never ahead of it. Re-landing a record is
harmless (idempotent upsert), which is what makes lookback windows safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String, Table, case, or_, select
from sqlalchemy.orm import Session

from connectors.base import Page
from connectors.base import Watermark as Cursor
from schema.models import Account, Opportunity, Watermark
from schema.records import AccountRecord, OpportunityRecord, Stream
from schema.upsert import bulk_upsert
from sync.matching.keys import (
    GENERIC_DOMAINS,
    normalize_duns,
    normalize_name,
    registrable_domain,
)

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
        "match_dirty": True, "fields_dirty": True, "ingested_at": now,
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
        "owned_values": dict(rec.owned) or None, "fields_dirty": True, "ingested_at": now,
    }


# What a re-read may change without being a change: the CRM's modification stamp (ecosync's
# own write moves it), when we read it, and bookkeeping of ours.
_NOT_COMPARED = frozenset({"id", "source", "external_id", "modified_at", "ingested_at",
                           "deleted_at", "match_dirty", "fields_dirty", "closed_seen_at",
                           "reopens_seen"})


def _changed_keys(session: Session, model: type[Account] | type[Opportunity],
                  rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """External ids of the rows that are new or differ from the stored row (as stored: the
    rows are compared after `storable`)."""
    if not rows:
        return set()
    table: Table = model.__table__  # type: ignore[assignment]
    columns = [c for c in rows[0] if c not in _NOT_COMPARED]
    source = rows[0]["source"]
    keys = list({r["external_id"] for r in rows})
    stored: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(keys), 900):
        for found in session.execute(
            select(table.c.external_id, *(table.c[c] for c in columns))
            .where(table.c.source == source, table.c.external_id.in_(keys[start:start + 900]))
        ):
            stored[found[0]] = tuple(found[1:])
    return {r["external_id"] for r in rows
            if stored.get(r["external_id"]) != tuple(r[c] for c in columns)}


def _raise(flag: str) -> Callable[[Table, Any], Any]:
    # A landed row raises its flag when it changed; it never clears a flag already raised.
    def expression(table: Table, excluded: Any) -> Any:
        return case((excluded[flag], True), else_=table.c[flag])

    return expression


def _account_flags(table: Table, excluded: Any) -> Mapping[str, Any]:
    # Re-match only when something matching reads changed; a re-read of an unchanged
    # account (lookback window, our own write bumping its modstamp) costs no matching.
    changed = or_(
        table.c.domain_key.is_distinct_from(excluded.domain_key),
        table.c.name_key.is_distinct_from(excluded.name_key),
        table.c.duns.is_distinct_from(excluded.duns),
        table.c.is_deleted.is_distinct_from(excluded.is_deleted),
    )
    return {
        "match_dirty": case((changed, True), else_=table.c.match_dirty),
        "fields_dirty": _raise("fields_dirty")(table, excluded),
        # A deletion keeps the first time it was seen.
        "deleted_at": case(
            (excluded.is_deleted & table.c.deleted_at.is_not(None), table.c.deleted_at),
            else_=excluded.deleted_at,
        ),
    }


def _opportunity_flags(table: Table, excluded: Any) -> Mapping[str, Any]:
    return {
        "fields_dirty": _raise("fields_dirty")(table, excluded),
        "deleted_at": case(
            (excluded.is_deleted & table.c.deleted_at.is_not(None), table.c.deleted_at),
            else_=excluded.deleted_at,
        ),
    }


_ACCOUNT_UPDATES = [
    c.key for c in Account.__table__.columns
    if c.key not in {"id", "source", "external_id", "match_dirty", "fields_dirty", "deleted_at"}
]
_OPPORTUNITY_UPDATES = [
    c.key for c in Opportunity.__table__.columns
    # closed_seen_at and reopens_seen are the stamp stage's observations, not CRM data.
    if c.key not in {"id", "source", "external_id", "deleted_at", "closed_seen_at",
                     "reopens_seen", "fields_dirty"}
]


def land_records(
    session: Session, stream: Stream, records: Iterable[AccountRecord | OpportunityRecord],
    *, now: datetime, generic: frozenset[str] = GENERIC_DOMAINS,
) -> Landed:
    deleted = 0
    rows: list[dict[str, Any]] = []
    if stream is Stream.ACCOUNTS:
        limits = _limits(Account.__table__)  # type: ignore[arg-type]
        for rec in records:
            assert isinstance(rec, AccountRecord)
            rows.append(storable(account_row(rec, now, generic), limits))
            deleted += rec.is_deleted
    else:
        table: Table = Opportunity.__table__  # type: ignore[assignment]
        limits, max_amount = _limits(table), _max_amount(table)
        for rec in records:
            assert isinstance(rec, OpportunityRecord)
            rows.append(storable(opportunity_row(rec, now), limits, max_amount))
            deleted += rec.is_deleted
    model: type[Account] | type[Opportunity] = (
        Account if stream is Stream.ACCOUNTS else Opportunity)
    changed = _changed_keys(session, model, rows)
    for row in rows:
        row["fields_dirty"] = row["external_id"] in changed
    if stream is Stream.ACCOUNTS:
        count = bulk_upsert(session, Account, rows, KEY, _ACCOUNT_UPDATES,
                            update_expressions=_account_flags)
    else:
        count = bulk_upsert(session, Opportunity, rows, KEY, _OPPORTUNITY_UPDATES,
                            update_expressions=_opportunity_flags)
    return Landed(count, deleted, len(changed))


def read_watermark(session: Session, source: str, stream: Stream) -> Cursor | None:
    row = session.get(Watermark, (source, stream.value))
    if row is None or row.modified_at is None:
        return None
    return Cursor(row.modified_at, row.last_id or "")


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
    if row is not None and row.backfill_cursor == "in_progress" and mark is not None:
        return mark  # a killed backfill continues from its last committed page
    if row is None:
        row = Watermark(source=source, stream=stream.value, updated_at=now)
        session.add(row)
    row.backfill_cursor, row.backfill_completed_at = "in_progress", None
    row.modified_at, row.last_id = None, None
    return Cursor(since, "") if since else None


def complete_window(session: Session, source: str, stream: Stream, until: datetime, *,
                    now: datetime, run_id: int | None = None) -> None:
    """The whole window up to `until` (the CRM's own clock when the tick began) is landed.

    The watermark moves to `until`, not to the last record's stamp: the next window is
    `[until - lookback, next tick's start)`, so once the CRM has been quiet for longer than
    the lookback a tick reads nothing, and the echo of ecosync's own writes is read at most
    until the lookback has passed. Records stamped exactly at `until` were outside this
    half-open window and are inside the next one (ties are safe). A backfill is complete.
    """
    save_watermark(session, source, stream, Cursor(until, ""), now=now, run_id=run_id)
    row = session.get(Watermark, (source, stream.value))
    if row is not None and row.backfill_cursor is not None:
        row.backfill_cursor, row.backfill_completed_at = None, now


def land_page(
    session: Session, source: str, page: Page, *, now: datetime, run_id: int | None = None,
    generic: frozenset[str] = GENERIC_DOMAINS,
) -> Landed:
    """Upsert the page's records and advance the watermark, in the caller's transaction."""
    landed = land_records(session, page.stream, page.records, now=now, generic=generic)
    if page.watermark is not None:
        save_watermark(session, source, page.stream, page.watermark, now=now, run_id=run_id)
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
