"""Shared fixtures: a throwaway, migrated warehouse on SQLite or PostgreSQL.

Set ECOSYNC_TEST_DATABASE_URL=postgresql+psycopg://… to run every warehouse test on
PostgreSQL (each test gets its own schema, dropped afterwards); unset, tests use SQLite files.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

import migrations
from schema.db import create_private_file, make_engine

PG_ENV = "ECOSYNC_TEST_DATABASE_URL"


def postgres_url() -> str | None:
    url = os.environ.get(PG_ENV, "").strip()
    return url or None


requires_postgres = pytest.mark.skipif(
    postgres_url() is None,
    reason=f"PostgreSQL test: set {PG_ENV}=postgresql+psycopg://postgres@127.0.0.1:5432/test",
)


# Suites that never touch the warehouse: the PostgreSQL pass of CI skips them, having run
# them once on the SQLite pass.
_DATABASE_FREE = ("tests/sandbox/",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path).replace("\\", "/")
        if any(f"/{d}" in path for d in _DATABASE_FREE):
            item.add_marker(pytest.mark.sqlite_only)


class _SqliteTemplate:
    """One SQLite warehouse migrated to head per test session; each test that wants a
    migrated SQLite warehouse gets a copy of the file (milliseconds, not a migration run)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.path: Path | None = None

    def copy_to(self, path: Path) -> None:
        if self.path is None:
            template = self.factory.mktemp("template") / "warehouse.db"
            engine = make_engine(f"sqlite:///{template}")
            migrations.upgrade(engine)
            with engine.connect() as conn:  # everything in the main file, none in the WAL
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            self.path = template
        create_private_file(path)  # the copy keeps a warehouse's private mode
        shutil.copyfile(self.path, path)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> _SqliteTemplate:
    return _SqliteTemplate(tmp_path_factory)


@pytest.fixture
def migrated_sqlite(sqlite_template: _SqliteTemplate) -> Callable[[Path], Path]:
    """Puts a migrated SQLite warehouse file at the path given (a copy of the template)."""
    def make(path: Path) -> Path:
        sqlite_template.copy_to(path)
        return path
    return make


class _Databases:
    def __init__(self, tmp: Path, template: _SqliteTemplate) -> None:
        self.tmp = tmp
        self.template = template
        self.engines: list[tuple[Engine, str | None]] = []

    def new(self, kind: str = "default", *, migrate: bool = True) -> Engine:
        """A fresh empty database: kind 'sqlite', 'postgres', or 'default' (env decides)."""
        pg = postgres_url()
        if kind == "postgres" and pg is None:
            pytest.skip(f"PostgreSQL test: set {PG_ENV}")
        if kind == "sqlite" or (kind == "default" and pg is None):
            path = self.tmp / f"wh-{uuid.uuid4().hex[:8]}.db"
            if migrate:
                self.template.copy_to(path)
                migrate = False
            engine = make_engine(f"sqlite:///{path}")
            self.engines.append((engine, None))
        else:
            assert pg is not None
            schema = f"t_{uuid.uuid4().hex[:12]}"
            admin = make_engine(pg)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            # A libpq option, not a SET: a SET would be rolled back with the first transaction.
            sep = "&" if "?" in pg else "?"
            engine = make_engine(f"{pg}{sep}options=-csearch_path%3D{schema}")
            self.engines.append((engine, schema))
        if migrate:
            migrations.upgrade(engine)
        return engine

    def close(self) -> None:
        pg = postgres_url()
        for engine, schema in self.engines:
            engine.dispose()
            if schema and pg:
                admin = make_engine(pg)
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                admin.dispose()


@pytest.fixture
def databases(tmp_path: Path, sqlite_template: _SqliteTemplate) -> Iterator[_Databases]:
    dbs = _Databases(tmp_path, sqlite_template)
    yield dbs
    dbs.close()


@pytest.fixture
def warehouse(databases: _Databases) -> Engine:
    """A migrated warehouse on the engine under test (SQLite, or PostgreSQL via env)."""
    return databases.new()


@pytest.fixture
def new_database(databases: _Databases) -> Callable[..., Engine]:
    return databases.new
