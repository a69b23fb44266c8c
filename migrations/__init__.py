"""Alembic migrations shipped inside the package; `ecosync db upgrade` runs them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

HERE = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE))
    if connection is not None:
        # env.py uses this connection instead of opening its own (tests migrate throwaway DBs).
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """All pending migrations in one transaction: a crash or an error leaves the warehouse at
    the revision it had (SQLite included, see `_one_transaction`)."""
    with _one_transaction(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
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
