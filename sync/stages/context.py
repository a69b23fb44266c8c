"""What every stage of a tick shares: options, the report being filled, and the warehouse.

Stages reach the warehouse only through `TickContext.transaction()` (and `reading()` for
long read-only passes). In a real run each such block is its own committed transaction, so
a kill between blocks loses nothing. In a dry run every block is a savepoint inside one
connection-wide transaction that is rolled back when the tick ends: pulled records, moved
watermarks, an imported partner file, matching and stamps are all seen by the later stages
(the printed plan is what a real run would write) and none of it is kept. Only the run log
is written outside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from connectors.base import Connector
from schema.states import RunStatus
from sync.config import Config
from sync.progress import SILENT, Progress
from sync.runs import heartbeat
from sync.stages.counts import ApiUse, TickCounts
from sync.writeback import RecordChange

# Inside a long stage (a backfill's pull, a large push) the run log hears from the run this
# often; `ecosync status` calls a run whose heartbeat stopped for far longer abandoned.
HEARTBEAT_EVERY_S = 30.0


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class TickOptions:
    dry_run: bool = False
    backfill: bool = False
    since: datetime | None = None  # backfill: start here instead of the beginning
    kind: str = "tick"
    # Set by a signal: finish the current page or batch, commit it, and stop.
    stop: threading.Event | None = None

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()


@dataclass
class TickReport:
    run_id: int
    status: RunStatus = RunStatus.RUNNING
    counts: TickCounts = field(default_factory=TickCounts)
    api: dict[str, ApiUse] = field(default_factory=dict)  # per CRM source
    planned: list[RecordChange] = field(default_factory=list)  # dry run: what would be written
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the operator (a resumed backfill)
    # Per CRM source: its clock minus this host's, as read when the tick began its pull.
    clock_offsets: dict[str, timedelta] = field(default_factory=dict)


@dataclass
class TickContext:
    engine: Engine
    config: Config
    connectors: Sequence[Connector]
    options: TickOptions
    started: datetime  # the tick's start by this host's clock (run log, stamps, overlaps)
    report: TickReport
    log: Any
    progress: Progress = field(default=SILENT)  # each stage reports to it (sync.progress)
    calls_before: dict[str, int] = field(default_factory=dict)
    # Dry run: the connection whose one transaction holds all of the tick's work.
    _dry: Connection | None = field(default=None, repr=False)
    # Handed from the plan stage to the push stage: lazily planned chunks per connector.
    plans: list[Any] = field(default_factory=list)
    _beat: float = field(default_factory=time.monotonic, repr=False)

    @property
    def run_id(self) -> int:
        return self.report.run_id

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def stopping(self) -> bool:
        return self.options.stopping()

    @contextmanager
    def warehouse(self) -> Iterator[None]:
        """The tick's warehouse scope: nothing for a real run; for a dry run, the one
        transaction every stage works in, rolled back on the way out."""
        if not self.dry_run:
            yield
            return
        with self.engine.connect() as conn:
            conn.begin()
            if conn.dialect.name == "sqlite":
                # pysqlite begins a transaction only before a write; a SAVEPOINT opened
                # outside one would start it, and its RELEASE would commit it.
                conn.exec_driver_sql("BEGIN")
            self._dry = conn
            try:
                yield
            finally:
                self._dry = None
                conn.rollback()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed at the end of the block (a savepoint in a dry run)."""
        if self._dry is None:
            with Session(self.engine) as session, session.begin():
                yield session
            return
        with Session(bind=self._dry, join_transaction_mode="create_savepoint") as session, \
                session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for long read-only passes (plans); its caller ends snapshots at will."""
        if self._dry is None:
            with Session(self.engine) as session:
                yield session
            return
        with Session(bind=self._dry, join_transaction_mode="create_savepoint") as session:
            yield session

    def heartbeat(self, *, at_most_every_s: float = 0.0) -> None:
        """Tell the run log this run is alive (and what it has counted so far); inside a long
        stage, at most every `at_most_every_s` seconds."""
        now = time.monotonic()
        if at_most_every_s and now - self._beat < at_most_every_s:
            return
        self._beat = now
        # A dry run on SQLite holds the database's write lock until it ends: a heartbeat
        # from another connection would wait for it. (The writer lock says it is alive.)
        if self._dry is not None and self._dry.dialect.name == "sqlite":
            return
        heartbeat(self.engine, self.run_id, utcnow(), self.report.counts.to_json())
