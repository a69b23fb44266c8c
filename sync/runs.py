"""The audit trail of runs: each tick, backfill or import writes one row with a heartbeat.

A run left 'running' by a killed process is marked 'stale' by the next one that starts, so
`ecosync status` never shows a ghost run as live.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from schema.models import SyncRun
from sync.errors import masked_text

T = TypeVar("T")


def once_more(action: Callable[[], T]) -> tuple[T, OperationalError | None]:
    """Run a run-log write, and once more if the warehouse connection dropped under it (the
    pool hands a fresh one): a run must not go unrecorded, nor stay 'running', for one dropped
    connection. Returns the result and the error retried, for the caller to log with the run."""
    try:
        return action(), None
    except OperationalError as dropped:
        return action(), dropped


def start_run(engine: Engine, kind: str, now: datetime, *,
              dry_run: bool = False) -> tuple[int, OperationalError | None]:
    def insert() -> int:
        with Session(engine) as session, session.begin():
            run = SyncRun(kind=kind, status="running", started_at=now, heartbeat_at=now,
                          host=socket.gethostname(), pid=os.getpid(), dry_run=dry_run,
                          counts={}, api_calls={})
            session.add(run)
            session.flush()
            return run.id

    return once_more(insert)


def heartbeat(engine: Engine, run_id: int, now: datetime,
              counts: Mapping[str, Any] | None = None) -> None:
    values: dict[str, Any] = {"heartbeat_at": now}
    if counts is not None:
        values["counts"] = dict(counts)
    with engine.begin() as conn:
        conn.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))


def finish_run(engine: Engine, run_id: int, now: datetime, *, status: str,
               counts: Mapping[str, Any], api_calls: Mapping[str, Any],
               error: str | None = None) -> OperationalError | None:
    """Record the run's outcome; returns the dropped-connection error it retried, if any."""
    def update_row() -> None:
        with engine.begin() as conn:
            conn.execute(update(SyncRun).where(SyncRun.id == run_id).values(
                status=status, ended_at=now, heartbeat_at=now, counts=dict(counts),
                api_calls=dict(api_calls), error=masked_text(error)))

    return once_more(update_row)[1]


def fail_stale_runs(engine: Engine, now: datetime, stale_after: timedelta) -> int:
    """Mark runs whose heartbeat stopped long ago as stale (their process died)."""
    with engine.begin() as conn:
        result = conn.execute(
            update(SyncRun)
            .where(SyncRun.status == "running", SyncRun.heartbeat_at < now - stale_after)
            .values(status="stale", ended_at=now, error="process stopped without finishing")
        )
        return int(result.rowcount or 0)


def recent_runs(engine: Engine, kind: str | None = None, limit: int = 10) -> list[SyncRun]:
    with Session(engine) as session:
        query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
        if kind:
            query = query.where(SyncRun.kind == kind)
        return list(session.scalars(query))
