"""Diff desired owned-field values against the CRM, write only differences, record all.

Three values meet per record and field: the desired one (computed by ecosync), the last one
ecosync wrote (writeback_state), and the one read from the CRM (owned_values). A field is
written only when desired differs from what the CRM holds; a CRM value that differs from
the last written one is a rep's manual edit: logged and counted, then overwritten.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlalchemy.orm import Session

from connectors.base import Connector, FieldUpdate, WriteResult
from schema.models import Account, ChangeLog, Opportunity, WritebackError, WritebackState
from schema.owned_fields import BY_LOGICAL, FieldKind
from schema.records import Stream
from schema.states import DeadLetterStatus
from schema.upsert import bulk_upsert
from sync import dirty
from sync.dirty import Kind, Queue
from sync.errors import masked_text
from sync.logs import get_logger

log = get_logger("ecosync.writeback")

# A CRM field left blank and ecosync's "nothing" mean the same to a rep; writing 0 or false
# onto every account that never had an overlap would spend API calls to say nothing.
_BLANK_EQUIVALENT = {FieldKind.NUMBER: "0", FieldKind.BOOLEAN: "false"}

RETRY_BASE = timedelta(minutes=2)
# Failures of the moment rather than of the record (the whole API said "not now"): the record
# stays dirty for the next tick instead of entering the dead letter with backoff.
DEFERRABLE = frozenset({"RateLimited", "BudgetExhausted", "TransientError",
                        "REQUEST_LIMIT_EXCEEDED"})
RETRY_MAX = timedelta(hours=6)


def _same(logical: str, a: str | None, b: str | None) -> bool:
    if a == b:
        return True
    blank = _BLANK_EQUIVALENT.get(BY_LOGICAL[logical].kind) if logical in BY_LOGICAL else None
    return blank is not None and {a, b} == {blank, None}


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    old: str | None  # last written by ecosync
    crm: str | None  # read from the CRM
    new: str | None  # desired, in the form the CRM will store
    manual_edit: bool


@dataclass(frozen=True, slots=True)
class RecordChange:
    source: str
    stream: Stream
    external_id: str
    changes: tuple[FieldChange, ...]
    values: Mapping[str, object]  # the changed fields' desired values, as Python objects
    name: str | None = None  # the record's name, for dry-run lines (set by sync.plan)


def diff_record(
    desired: Mapping[str, str | None],
    last_written: Mapping[str, str | None],
    crm: Mapping[str, str | None] | None,
) -> list[FieldChange]:
    """Pure: the fields to write. `crm=None` means the record's CRM values are unknown."""
    out = []
    for name, new in desired.items():
        old = last_written.get(name)
        current = old if crm is None else crm.get(name)
        if _same(name, new, current):
            continue
        manual = crm is not None and name in last_written and not _same(name, current, old)
        out.append(FieldChange(name, old, current, new, manual))
    return out


def plan_changes(
    source: str, stream: Stream, external_id: str, desired_values: Mapping[str, object],
    stored: Mapping[str, str | None], last_written: Mapping[str, str | None],
    crm: Mapping[str, str | None] | None,
) -> RecordChange | None:
    changes = diff_record(stored, last_written, crm)
    if not changes:
        return None
    return RecordChange(source, stream, external_id, tuple(changes),
                        {c.field: desired_values[c.field] for c in changes})


def last_written(
    session: Session, source: str, stream: Stream, external_ids: Sequence[str]
) -> dict[str, dict[str, str | None]]:
    out: dict[str, dict[str, str | None]] = defaultdict(dict)
    for start in range(0, len(external_ids), 900):
        ids = external_ids[start:start + 900]
        rows = session.execute(
            select(WritebackState.external_id, WritebackState.field, WritebackState.value)
            .where(WritebackState.source == source, WritebackState.stream == stream.value,
                   WritebackState.external_id.in_(ids))
        )
        for ext, name, value in rows:
            out[ext][name] = value
    return out


@dataclass
class PushStats:
    records_written: int = 0
    fields_written: int = 0
    records_failed: int = 0
    manual_edits: int = 0
    failures: list[WriteResult] = field(default_factory=list)
    # Not written for a reason of the moment (budget, rate limit): retried on the next tick,
    # not dead-lettered.
    deferred: set[str] = field(default_factory=set)


def push(
    engine: Engine, connector: Connector, changes: Sequence[RecordChange], *, now: datetime,
    run_id: int | None,
) -> PushStats:
    """Write the changes through the connector, then record outcomes in one transaction."""
    stats = PushStats()
    if not changes:
        return stats
    stream = changes[0].stream
    source = changes[0].source
    updates = [FieldUpdate(stream, c.external_id, dict(c.values)) for c in changes]
    results = connector.write(stream, updates)
    by_id = {r.external_id: r for r in results}
    ok = [c for c in changes if (r := by_id.get(c.external_id)) is not None and r.ok]
    deferred = {c.external_id for c in changes
                if (r := by_id.get(c.external_id)) is not None and not r.ok and r.retryable
                and r.error_code in DEFERRABLE}
    failed = [(c, by_id.get(c.external_id)) for c in changes
              if c not in ok and c.external_id not in deferred]
    with Session(engine) as session, session.begin():
        _record_success(session, source, stream, ok, now, run_id)
        _record_failures(session, source, stream, failed, now, run_id)
    stats.records_written = len(ok)
    stats.fields_written = sum(len(c.changes) for c in ok)
    stats.records_failed = len(failed)
    stats.deferred = deferred
    stats.manual_edits = sum(ch.manual_edit for c in ok for ch in c.changes)
    stats.failures = [r for _, r in failed if r is not None]
    for change in ok:
        for ch in change.changes:
            if ch.manual_edit:
                log.warning("manual edit overwritten", source=source, stream=stream.value,
                            record=change.external_id, field=ch.field, run_id=run_id)
    return stats


def _record_success(
    session: Session, source: str, stream: Stream, ok: Sequence[RecordChange],
    now: datetime, run_id: int | None,
) -> None:
    if not ok:
        return
    bulk_upsert(
        session, WritebackState,
        ({"source": source, "stream": stream.value, "external_id": c.external_id,
          "field": ch.field, "value": ch.new, "written_at": now, "run_id": run_id}
         for c in ok for ch in c.changes),
        ["source", "stream", "external_id", "field"], ["value", "written_at", "run_id"],
    )
    session.execute(
        insert(ChangeLog),
        [{"run_id": run_id, "source": source, "stream": stream.value,
          "external_id": c.external_id, "field": ch.field, "old_value": ch.old,
          "new_value": ch.new, "crm_value": ch.crm if ch.manual_edit else None,
          "manual_edit": ch.manual_edit, "written_at": now}
         for c in ok for ch in c.changes],
    )
    # Keep the warehouse's view of the CRM current, so the next plan needs no re-read.
    model: type[Account] | type[Opportunity] = Account if stream is Stream.ACCOUNTS else Opportunity
    for c in ok:
        row = session.execute(
            select(model.id, model.owned_values)
            .where(model.source == source, model.external_id == c.external_id)
        ).one_or_none()
        if row is None:
            continue
        merged = dict(row.owned_values or {})
        merged.update({ch.field: ch.new for ch in c.changes})
        session.execute(update(model).where(model.id == row.id).values(owned_values=merged))
    ids = [c.external_id for c in ok]
    for start in range(0, len(ids), 900):
        session.execute(
            delete(WritebackError).where(
                WritebackError.source == source, WritebackError.stream == stream.value,
                WritebackError.external_id.in_(ids[start:start + 900]))
        )


def queue_due_dead_letters(session: Session, now: datetime) -> None:
    """Dead letters whose retry time has come are queued for planning (sync.dirty): the plan
    stage renders them again and the push retries what still differs."""
    for model, kind, stream in ((Account, Kind.ACCOUNT, Stream.ACCOUNTS),
                                (Opportunity, Kind.OPPORTUNITY, Stream.OPPORTUNITIES)):
        dirty.mark(session, Queue.PLAN, kind, select(model.id).join(WritebackError, and_(
            WritebackError.source == model.source, WritebackError.stream == stream.value,
            WritebackError.external_id == model.external_id)).where(
            WritebackError.status == DeadLetterStatus.PENDING,
            WritebackError.next_retry_at <= now))


def retry_delay(attempts: int) -> timedelta:
    delay: timedelta = RETRY_BASE * (2 ** max(0, attempts - 1))
    return min(RETRY_MAX, delay)


def _record_failures(
    session: Session, source: str, stream: Stream,
    failed: Iterable[tuple[RecordChange, WriteResult | None]], now: datetime, run_id: int | None,
) -> None:
    for change, result in failed:
        code = result.error_code if result else "NO_RESULT"
        message = masked_text(result.message) if result else (
            "the API returned no result for this record")
        existing = session.execute(
            select(WritebackError).where(
                WritebackError.source == source, WritebackError.stream == stream.value,
                WritebackError.external_id == change.external_id)
        ).scalar_one_or_none()
        payload: dict[str, Any] = {ch.field: ch.new for ch in change.changes}
        if existing is None:
            session.add(WritebackError(
                source=source, stream=stream.value, external_id=change.external_id,
                payload=payload, error_code=code, message=message, attempts=1,
                status=DeadLetterStatus.PENDING, first_failed_at=now, last_failed_at=now,
                next_retry_at=now + retry_delay(1), run_id=run_id))
        else:
            existing.attempts += 1
            existing.payload, existing.error_code, existing.message = payload, code, message
            existing.last_failed_at, existing.run_id = now, run_id
            if existing.status != DeadLetterStatus.SKIPPED:
                existing.status = DeadLetterStatus.PENDING
                existing.next_retry_at = now + retry_delay(existing.attempts)
        log.warning("write failed; dead-lettered", source=source, stream=stream.value,
                    record=change.external_id, error_code=code, error=message, run_id=run_id)
