"""The SQLite warehouse, its WAL and shared-memory files and the lock file hold partner data
and process details: created 0600 (0640 in a setgid folder, to share with a group), whatever
the umask; a file an older version left world-readable loses its world permissions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import migrations
from schema.db import make_engine
from sync.leader import WriterLock

pytestmark = pytest.mark.sqlite_only  # SQLite's own files


@pytest.fixture(autouse=True)
def _loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: files come out 0644 unless the code says so
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_warehouse(folder: Path) -> dict[str, int]:
    db = folder / "wh.db"
    engine = make_engine(f"sqlite:///{db}")
    migrations.upgrade(engine)
    with engine.connect() as conn:  # WAL and shared memory exist while a connection is open
        conn.exec_driver_sql("SELECT count(*) FROM accounts").scalar()
        found = {p.name: mode(p) for p in folder.glob("wh.db*")}
        lock = WriterLock(engine, str(folder / "ecosync.lock"), "test")
        assert lock.try_acquire()
        found["ecosync.lock"] = mode(folder / "ecosync.lock")
        lock.release()
    engine.dispose()
    return found


def test_created_private(tmp_path: Path) -> None:
    found = _open_warehouse(tmp_path)
    assert set(found) >= {"wh.db", "wh.db-wal", "wh.db-shm", "ecosync.lock"}, found
    assert set(found.values()) == {0o600}, {k: oct(v) for k, v in found.items()}


def test_group_readable_in_a_setgid_folder(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o2750)
    found = _open_warehouse(shared)
    assert set(found.values()) == {0o640}, {k: oct(v) for k, v in found.items()}


def test_world_access_left_by_an_older_version_is_removed(tmp_path: Path) -> None:
    db = tmp_path / "wh.db"
    engine = make_engine(f"sqlite:///{db}")
    migrations.upgrade(engine)
    engine.dispose()
    for path in (db, tmp_path / "ecosync.lock"):
        path.touch()
        path.chmod(0o666)
    found = _open_warehouse(tmp_path)
    assert all(m & 0o007 == 0 for m in found.values()), {k: oct(v) for k, v in found.items()}


def test_db_upgrade_from_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "ecosync.toml"
    config.write_text(f'[warehouse]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n',
                      encoding="utf-8")
    subprocess.run([sys.executable, "-c", "from sync.cli import main; main()", "--config",
                    str(config), "db", "upgrade"], check=True, capture_output=True)
    assert mode(tmp_path / "cli.db") == 0o600
