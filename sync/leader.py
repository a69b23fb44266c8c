"""One writer at a time: a PostgreSQL advisory lock, or a file lock on SQLite.

`backfill`, `sync --once` and the daemon (`run`, whose replicas elect their leader with it)
take the same lock, so two writers never interleave pulls, matching and write-back on one
warehouse. Read-only commands never take it.

The lock is held by a dedicated connection (or open file) for as long as the process writes;
if the process dies, PostgreSQL releases the advisory lock with its session and the OS
releases the flock, so a waiting writer or a hot standby takes over at once.

Who holds it (command, pid, host, since when) is readable by the others without touching a
table: on PostgreSQL it is the lock connection's `application_name`, on SQLite the lock
file's one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text

from schema.db import create_private_file
from sync.errors import UserError

# The advisory lock is (ADVISORY_CLASS, hash of database and schema): per warehouse, so two
# warehouses in one PostgreSQL database (one schema each) never block each other.
ADVISORY_CLASS = 0x65636F73  # "ecos"
_APP_PREFIX = "ecosync"


class WriterBusy(UserError):
    """Another process holds the writer lock."""

    exit_code = 3


@dataclass(frozen=True)
class Holder:
    command: str
    pid: int | None
    host: str
    since: datetime | None

    def describe(self) -> str:
        when = f", since {self.since:%Y-%m-%d %H:%M:%S} UTC" if self.since else ""
        pid = f"pid {self.pid}" if self.pid is not None else "unknown pid"
        return f"`ecosync {self.command}` ({pid} on {self.host or 'an unknown host'}{when})"

    def encode(self) -> str:
        since = int(self.since.timestamp()) if self.since else 0
        return f"{self.command}|{self.pid}|{since}|{self.host}"

    @classmethod
    def decode(cls, value: str) -> Holder | None:
        parts = value.split("|", 3)
        if len(parts) != 4:
            return None
        command, pid, since, host = parts
        try:
            moment = datetime.fromtimestamp(int(since), UTC) if int(since) else None
            return cls(command, int(pid), host, moment)
        except ValueError:
            return None


def _me(command: str) -> Holder:
    return Holder(command, os.getpid(), socket.gethostname(),
                  datetime.now(UTC).replace(microsecond=0))


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= (1 << 31) else value


class WriterLock:
    """The warehouse's writer lock, taken in the name of one command (`backfill`, `run`…)."""

    def __init__(self, engine: Engine, lock_file: str, command: str = "run") -> None:
        self.engine = engine
        self.lock_file = Path(lock_file)
        self.command = command
        self._conn: Any = None
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fh is not None

    @property
    def _postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # -- taking it -------------------------------------------------------------------------
    def try_acquire(self) -> bool:
        if self.held:
            return True
        return self._acquire_pg(block=False) if self._postgres else self._acquire_file(block=False)

    def acquire(self, *, wait: bool = False,
                on_wait: Callable[[Holder | None], None] | None = None) -> None:
        """Take the lock; if another process has it, raise WriterBusy naming it, or with
        `wait` block until it is released (after telling `on_wait` who is being waited for)."""
        if self.try_acquire():
            return
        holder = self.holder()
        if not wait:
            who = holder.describe() if holder else "another ecosync process"
            raise WriterBusy(
                f"the warehouse is being written by {who}; only one writer runs at a time: "
                "wait for it to finish, or pass --wait to start when it does")
        if on_wait is not None:
            on_wait(holder)
        if self._postgres:
            self._acquire_pg(block=True)
        else:
            self._acquire_file(block=True)

    def _key(self, conn: Any) -> int:
        where = conn.execute(text("SELECT current_database() || '.' || current_schema()"))
        return _signed32(zlib.crc32(str(where.scalar()).encode()))

    def _acquire_pg(self, *, block: bool) -> bool:
        conn = self.engine.connect()
        try:
            key = self._key(conn)
            # application_name is at most 63 bytes; the host goes last, so only it is cut.
            conn.execute(text("SELECT set_config('application_name', :name, false)"),
                         {"name": f"{_APP_PREFIX}|{_me(self.command).encode()}"[:63]})
            fn = "pg_advisory_lock" if block else "pg_try_advisory_lock"
            got = conn.execute(text(f"SELECT {fn}(:c, :k)"), {"c": ADVISORY_CLASS, "k": key})
            ok = True if block else bool(got.scalar())
            if ok:
                conn.commit()
                self._conn = conn
                return True
            conn.rollback()
        except BaseException:
            conn.invalidate()  # a half-set session must not go back to the pool
            conn.close()
            raise
        self._reset_and_close(conn)
        return False

    def _acquire_file(self, *, block: bool) -> bool:
        create_private_file(self.lock_file)  # 0600: it names the host and process
        fh = open(self.lock_file, "a+")  # noqa: SIM115 - held open while the lock is held
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.close()
            return False
        except BaseException:
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        me = _me(self.command)
        fh.write(json.dumps({"command": me.command, "pid": me.pid, "host": me.host,
                             "since": me.since.isoformat() if me.since else None}) + "\n")
        fh.flush()
        self._fh = fh
        return True

    # -- who has it ------------------------------------------------------------------------
    def holder(self) -> Holder | None:
        """The process holding the lock, as far as it can be known; None when nobody does
        (or the holder wrote nothing readable yet)."""
        if self._postgres:
            return self._holder_pg()
        try:
            line = self.lock_file.read_text(encoding="utf-8").strip()
            data = json.loads(line) if line else None
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        since = data.get("since")
        return Holder(str(data.get("command") or "?"), data.get("pid"),
                      str(data.get("host") or ""),
                      datetime.fromisoformat(since) if since else None)

    def _holder_pg(self) -> Holder | None:
        with self.engine.connect() as conn:
            key = self._key(conn)
            name = conn.execute(text(
                "SELECT a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
                "AND l.database = (SELECT oid FROM pg_database "
                "                  WHERE datname = current_database()) "
                "AND l.classid::text::bigint = :c AND l.objid::text::bigint = :k"),
                {"c": ADVISORY_CLASS, "k": key & 0xFFFFFFFF}).scalar()
            conn.rollback()
        if not name or not str(name).startswith(_APP_PREFIX + "|"):
            return None
        return Holder.decode(str(name)[len(_APP_PREFIX) + 1:])

    # -- keeping and giving it back --------------------------------------------------------
    def still_held(self) -> bool:
        """A leader checks before each tick that its lock connection is still alive."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
                return True
            except Exception:  # a dead connection means the lock is gone
                self._conn = None
                return False
        return self._fh is not None

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                key = self._key(conn)
                conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"),
                             {"c": ADVISORY_CLASS, "k": key})
                conn.commit()
                self._reset_and_close(conn)
            except Exception:  # closing the session releases it anyway
                with contextlib.suppress(Exception):
                    conn.invalidate()
                    conn.close()
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.seek(0)
            fh.truncate()  # nobody holds it now
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    @staticmethod
    def _reset_and_close(conn: Any) -> None:
        conn.execute(text("RESET application_name"))
        conn.commit()
        conn.close()


# The daemon's replicas elect their leader with the very same lock.
LeaderLock = WriterLock


@contextlib.contextmanager
def writing(engine: Engine, lock_file: str, command: str, *, wait: bool = False,
            on_wait: Callable[[Holder | None], None] | None = None) -> Iterator[WriterLock]:
    """Hold the writer lock for the block (WriterBusy at once, unless `wait`)."""
    lock = WriterLock(engine, lock_file, command)
    lock.acquire(wait=wait, on_wait=on_wait)
    try:
        yield lock
    finally:
        lock.release()
