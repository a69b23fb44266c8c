"""The audit trail of runs: each tick or backfill writes one row with a heartbeat.

A run left `running` by a process that died is marked `abandoned` by the next writer that
takes the writer lock (which that process held until it died), and `ecosync status` shows one
as abandoned as soon as its heartbeat has stopped, so a ghost run never reads as live.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from schema.models import SyncRun
from schema.states import RunStatus
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
            run = SyncRun(kind=kind, status=RunStatus.RUNNING, started_at=now, heartbeat_at=now,
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


def finish_run(engine: Engine, run_id: int, now: datetime, *, status: RunStatus,
               counts: Mapping[str, Any], api_calls: Mapping[str, Any],
               error: str | None = None) -> OperationalError | None:
    """Record the run's outcome; returns the dropped-connection error it retried, if any."""
    def update_row() -> None:
        with engine.begin() as conn:
            conn.execute(update(SyncRun).where(SyncRun.id == run_id).values(
                status=status, ended_at=now, heartbeat_at=now, counts=dict(counts),
                api_calls=dict(api_calls), error=masked_text(error)))

    return once_more(update_row)[1]


ABANDONED_REASON = "its process stopped without finishing (no heartbeat since {at})"


def abandon_dead_runs(engine: Engine, now: datetime) -> int:
    """Mark every run still `running` as abandoned. Call it holding the writer lock: every
    run is made under that lock, so a run still `running` belongs to a process that died
    holding it (the lock went with the process)."""
    with engine.begin() as conn:
        dead = conn.execute(select(SyncRun.id, SyncRun.heartbeat_at)
                            .where(SyncRun.status == RunStatus.RUNNING)).all()
        for run_id, heartbeat_at in dead:
            conn.execute(update(SyncRun).where(SyncRun.id == run_id).values(
                status=RunStatus.ABANDONED, ended_at=heartbeat_at,
                error=ABANDONED_REASON.format(at=f"{heartbeat_at:%Y-%m-%d %H:%M:%S} UTC")))
        return len(dead)


def recent_runs(engine: Engine, kind: str | None = None, limit: int = 10) -> list[SyncRun]:
    with Session(engine) as session:
        query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
        if kind:
            query = query.where(SyncRun.kind == kind)
        return list(session.scalars(query))
