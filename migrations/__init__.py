"""Alembic migrations shipped inside the package; `ecosync db upgrade` runs them.

Alembic itself loads only to migrate: every command checks the warehouse's revision against
the head, and reads both without it (`head_revision`, `current_revision`).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE))
    if connection is not None:
        # env.py uses this connection instead of opening its own (tests migrate throwaway DBs).
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str:
    """The one revision no other revision revises, read from the files' `revision` and
    `down_revision` assignments (what Alembic's ScriptDirectory reads, without importing each
    migration and Alembic with it; a test checks both agree)."""
    parents: dict[str, tuple[str, ...]] = {}
    for path in sorted((HERE / "versions").glob("*.py")):
        found = _assignments(path, ("revision", "down_revision"))
        revision = found.get("revision")
        if not isinstance(revision, str):
            raise RuntimeError(f"{path} names no revision")
        down = found.get("down_revision")
        # None for the first revision, a tuple for a merge of branches.
        parents[revision] = ((down,) if isinstance(down, str) else
                             tuple(str(d) for d in down) if isinstance(down, tuple) else ())
    heads = set(parents) - {p for ps in parents.values() for p in ps}
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads ({sorted(heads)}); "
                           "exactly one is expected")
    return heads.pop()


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target: ast.expr
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            out[target.id] = ast.literal_eval(value)
    return out


def current_revision(engine: Engine) -> str | None:
    """The warehouse's revision, as Alembic records it (None before the first upgrade)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(found) > 1:
        raise RuntimeError(f"the warehouse records {len(found)} revisions ({found}); "
                           "exactly one is expected")
    return found[0] if found else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """All pending migrations in one transaction: a crash or an error leaves the warehouse at
    the revision it had (SQLite included, see `_one_transaction`)."""
    from alembic import command

    with _one_transaction(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with _one_transaction(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


@contextmanager
def _one_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection whose whole upgrade commits or rolls back as one.

    SQLite's DDL is transactional, but Python's sqlite3 driver (its legacy transaction
    control, which SQLAlchemy keeps) opens a transaction only before INSERT, UPDATE, DELETE
    and REPLACE: each CREATE TABLE or batch table copy commits on its own, so a process killed
    halfway through a migration left a warehouse no later upgrade could repair. Here the
    driver's implicit handling is switched off for this one connection and the transaction is
    opened explicitly (BEGIN IMMEDIATE also waits for a running daemon's write to finish);
    commit() and rollback() still end it, since the driver ends any open transaction.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        saved = dbapi.isolation_level
        dbapi.isolation_level = None
        try:
            with conn.begin():
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        finally:
            if dbapi.in_transaction:  # an error inside BEGIN itself
                dbapi.rollback()
            dbapi.isolation_level = saved
