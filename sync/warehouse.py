"""Warehouse lifecycle: migrate, check the revision, report basic status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

import migrations
from schema.models import Base, SyncRun, Watermark, WritebackError
from schema.states import DeadLetterStatus
from sync.errors import WarehouseError, describe_error
from sync.logs import get_logger

log = get_logger("ecosync.warehouse")


def _describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def upgrade(engine: Engine) -> str:
    """Bring the warehouse to the migration head; returns the head revision.

    The migrations run in one transaction (`migrations.upgrade`): a crash or an error leaves
    the warehouse at the revision it had. A first upgrade that an older ecosync left half
    done on SQLite (its tables without a revision) is repaired first, if it holds no rows.
    """
    rev = current(engine)  # reachable, or one line saying it is not
    if rev is None:
        repair_interrupted_first_upgrade(engine)
    try:
        migrations.upgrade(engine)
    except SQLAlchemyError as exc:
        raise WarehouseError(
            f"upgrading the warehouse at {_describe(engine)} failed ({describe_error(exc)}); "
            f"it is still at revision {rev or 'none'}, since an upgrade commits all or "
            "nothing: fix the cause (disk space, file permissions, another process holding "
            "a lock) and run `ecosync db upgrade` again"
        ) from None
    return migrations.head_revision()


def repair_interrupted_first_upgrade(engine: Engine) -> list[str]:
    """Drop the empty tables an interrupted first `db upgrade` left without a revision.

    Before upgrades were one transaction on SQLite, a kill during the first one left some
    tables and no revision, and every later upgrade then failed on "table ... already
    exists". Such tables cannot hold data (nothing writes before the upgrade finishes), so
    empty ones are dropped; a table with rows stops the upgrade with one line instead, since
    then something other than an interrupted upgrade made it. Returns the tables dropped.
    """
    ours = set(Base.metadata.tables)
    found = [t for t in inspect(engine).get_table_names() if t in ours]
    if not found:
        return []
    tables = [Base.metadata.tables[name] for name in found]
    with engine.begin() as conn:
        filled = [t.name for t in tables
                  if conn.execute(select(func.count()).select_from(t)).scalar_one()]
        if filled or engine.dialect.name != "sqlite":
            raise WarehouseError(
                f"the warehouse at {_describe(engine)} has ecosync tables "
                f"({', '.join(sorted(found)[:5])}{', …' if len(found) > 5 else ''}) but no "
                "migration revision"
                + (f", and {', '.join(sorted(filled)[:3])} hold rows" if filled else "")
                + "; they were not made by `ecosync db upgrade`: point warehouse.url at an "
                "empty database, or restore this one from a backup")
        Base.metadata.drop_all(conn, tables=tables)
    log.warning("repaired an interrupted first upgrade", dropped_empty_tables=sorted(found))
    return sorted(found)


def current(engine: Engine) -> str | None:
    try:
        return migrations.current_revision(engine)
    except OperationalError as exc:
        raise WarehouseError(
            f"cannot reach the warehouse at {_describe(engine)} ({exc.orig}); check "
            "warehouse.url in the config and that the database server is running"
        ) from None


def require_head(engine: Engine) -> None:
    """Refuse to run against a warehouse that is not migrated to this version's head."""
    rev, head = current(engine), migrations.head_revision()
    if rev != head:
        raise WarehouseError(
            f"the warehouse at {_describe(engine)} is at revision {rev or 'none'}, this "
            f"ecosync needs {head}; run `ecosync db upgrade`"
        )


@dataclass(frozen=True)
class WarehouseStatus:
    url: str
    reachable: bool
    revision: str | None
    head: str
    last_runs: list[dict[str, Any]]
    watermarks: list[dict[str, Any]]
    dead_letters: int
    error: str | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def status(engine: Engine, runs: int = 5) -> WarehouseStatus:
    head = migrations.head_revision()
    url = _describe(engine)
    try:
        rev = migrations.current_revision(engine)
    except SQLAlchemyError as exc:
        return WarehouseStatus(url, False, None, head, [], [], 0, error=str(exc).splitlines()[0])
    if rev != head:
        return WarehouseStatus(url, True, rev, head, [], [], 0)
    with engine.connect() as conn:
        last = conn.execute(select(SyncRun).order_by(SyncRun.id.desc()).limit(runs)).all()
        marks = conn.execute(select(Watermark).order_by(Watermark.source, Watermark.stream)).all()
        dead = conn.execute(
            select(func.count()).select_from(WritebackError)
            .where(WritebackError.status == DeadLetterStatus.PENDING)
        ).scalar_one()
    return WarehouseStatus(
        url, True, rev, head,
        [
            {"id": r.id, "kind": r.kind, "dry_run": bool(r.dry_run), "status": r.status,
             "started_at": _iso(r.started_at), "heartbeat_at": _iso(r.heartbeat_at),
             "host": r.host, "pid": r.pid, "error": r.error,
             "ended_at": _iso(r.ended_at), "counts": r.counts or {}, "api_calls": r.api_calls or {}}
            for r in last
        ],
        [
            {"source": w.source, "stream": w.stream, "modified_at": _iso(w.modified_at),
             "last_id": w.last_id, "backfill_cursor": w.backfill_cursor,
             "backfill_completed_at": _iso(w.backfill_completed_at)}
            for w in marks
        ],
        int(dead),
    )
