"""One leader among replicas: a PostgreSQL advisory lock, or a file lock on SQLite.

The lock is held by a dedicated connection for as long as the process leads; if the process
dies, PostgreSQL releases the advisory lock with its session and the OS releases the flock,
so a hot standby takes over on its next attempt.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text

# An arbitrary constant shared by every ecosync replica of one warehouse.
ADVISORY_KEY = 0x65636F73796E63  # "ecosync"


class LeaderLock:
    def __init__(self, engine: Engine, lock_file: str) -> None:
        self.engine = engine
        self.lock_file = Path(lock_file)
        self._conn: Any = None
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fh is not None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            if got.scalar():
                conn.commit()
                self._conn = conn
                return True
            conn.rollback()
            conn.close()
            return False
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.lock_file, "a+")  # noqa: SIM115 - held open for the leadership's life
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return True

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
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                self._conn.commit()
                self._conn.close()
            except Exception:  # noqa: S110 - closing the session releases it anyway
                pass
            self._conn = None
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
