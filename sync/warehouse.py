"""Warehouse lifecycle: migrate, check the revision, report basic status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

import migrations
from schema.models import SyncRun, Watermark, WritebackError
from sync.errors import WarehouseError


def _describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def upgrade(engine: Engine) -> str:
    """Bring the warehouse to the migration head; returns the head revision."""
    try:
        migrations.upgrade(engine)
    except OperationalError as exc:
        raise WarehouseError(
            f"cannot reach the warehouse at {_describe(engine)} ({exc.orig}); check "
            "warehouse.url in the config and that the database server is running"
        ) from None
    return migrations.head_revision()


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
            .where(WritebackError.status == "pending")
        ).scalar_one()
    return WarehouseStatus(
        url, True, rev, head,
        [
            {"id": r.id, "kind": r.kind, "dry_run": bool(r.dry_run), "status": r.status,
             "started_at": _iso(r.started_at),
             "ended_at": _iso(r.ended_at), "counts": r.counts or {}, "api_calls": r.api_calls or {}}
            for r in last
        ],
        [
            {"source": w.source, "stream": w.stream, "modified_at": _iso(w.modified_at),
             "last_id": w.last_id, "backfill_completed_at": _iso(w.backfill_completed_at)}
            for w in marks
        ],
        int(dead),
    )
