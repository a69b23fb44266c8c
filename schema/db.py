"""Engine and session setup for the warehouse (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from schema.errors import ConfigError


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine tuned per dialect: SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"warehouse.url {url!r} is not a database URL; use e.g. sqlite:///ecosync.db "
            "or postgresql+psycopg://user@host/db"
        ) from None
    # Bound parameters carry row data (a hidden partner population's owner e-mails): an error
    # never quotes them, so no log line or stored run error can.
    kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["pool_size"] = 5
    try:
        engine = create_engine(parsed, **kwargs)
    except (ImportError, ModuleNotFoundError) as exc:
        raise ConfigError(
            f"warehouse.url needs a database driver that is not installed ({exc.name}); "
            "for PostgreSQL install ecosync[postgres]"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)

            # Before the driver opens (and would create) the file, and on every connection:
            # the warehouse holds partner data, so neither it nor its WAL is world-readable.
            def before_open(*_: Any) -> None:  # returning None: the driver connects as usual
                create_private_file(path, parent=False)

            def opened(*_: Any) -> None:
                _tighten_sqlite_files(path)

            event.listen(engine, "do_connect", before_open)
            event.listen(engine, "connect", opened)
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def private_mode(folder: Path) -> int:
    """0600, or 0640 in a setgid folder (the usual way to give a group, say the backup
    user's, read access to what is created there)."""
    try:
        shared = bool(folder.stat().st_mode & stat.S_ISGID)
    except OSError:
        shared = False
    return 0o640 if shared else 0o600


def create_private_file(path: Path, *, parent: bool = True) -> None:
    """Create `path` empty with `private_mode` if it does not exist (its folder too, unless
    `parent` is False); an existing file loses its world permissions. SQLite's database, its
    WAL and shared-memory files and the lock file are all made this way: SQLite gives the
    WAL and shared-memory files the database file's mode."""
    if parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent
    mode = private_mode(folder)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        _no_world_access(path)
        return
    except OSError:
        return  # a missing folder or no write access: the driver reports it in its words
    try:
        os.fchmod(fd, mode)  # the umask may have removed bits of mode, never added any
    finally:
        os.close(fd)


def _no_world_access(path: Path) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o007:
            os.chmod(path, current & ~0o007)
    except OSError:
        pass  # not ours to change (another owner): doctor and the docs say what to do


def _tighten_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            _no_world_access(candidate)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    if not _is_memory(dbapi_conn):
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _is_memory(dbapi_conn: Any) -> bool:
    rows = dbapi_conn.execute("PRAGMA database_list").fetchall()
    return any(row[2] == "" for row in rows)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = Session(engine, expire_on_commit=False)
    try:
        with session.begin():
            yield session
    finally:
        session.close()
