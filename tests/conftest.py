"""Shared fixtures: a throwaway, migrated warehouse on SQLite or PostgreSQL.

Set ECOSYNC_TEST_DATABASE_URL=postgresql+psycopg://… to run every warehouse test on
PostgreSQL (each test gets its own database, dropped afterwards); unset, tests use SQLite files.
Either way a test's warehouse is a copy of a template built once per test session (per pytest
process: each pytest-xdist worker builds its own): a file copy on SQLite, `CREATE DATABASE …
TEMPLATE` on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import URL, Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

import migrations
from schema.db import create_private_file, make_engine
from schema.models import Base

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


# pytest imports readline at start-up (its capture plugin does), and GNU readline writes
# COLUMNS and LINES of the terminal (80x24 when there is none) into the process's C
# environment. os.environ is a snapshot taken before that, so a serial run never sees them;
# pytest-xdist's workers inherit the C environment, where they would narrow every rich table
# and summary line the CLI prints. Each worker gets back the values the run was started with.
_TERMINAL_ENV = ("COLUMNS", "LINES")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: no such hook with -p no:xdist
def pytest_configure_node(node: Any) -> None:
    node.workerinput["ecosync_terminal_env"] = {k: os.environ.get(k) for k in _TERMINAL_ENV}


def pytest_configure(config: pytest.Config) -> None:
    started_with = getattr(config, "workerinput", {}).get("ecosync_terminal_env")
    for key, value in (started_with or {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path).replace("\\", "/")
        if any(f"/{d}" in path for d in _DATABASE_FREE):
            item.add_marker(pytest.mark.sqlite_only)
    if hasattr(config, "workerinput"):
        # Under pytest-xdist the workers are handed tests in this order: the slow ones (tens
        # of seconds each) first, spread over the workers while the quick ones fill in behind;
        # last, one worker would still run them when the others had nothing left.
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _in_own_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own empty directory, not the checkout: the files a command
    makes relative to where it runs (`lock_file = "ecosync.lock"` by default, ecosync.toml)
    land there, so no test sees another's (pytest-xdist runs tests side by side) nor those
    of an ecosync a developer runs in the checkout."""
    monkeypatch.chdir(tmp_path)


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


# What a new PostgreSQL test database holds: nothing, the migrations run to head, or the
# tables of the models (Base.metadata.create_all).
_EMPTY, _HEAD, _MODELS = "empty", "head", "models"


class _PgTemplates:
    """PostgreSQL template databases, built once per test session (per pytest process) when
    first wanted: each test database is a `CREATE DATABASE … TEMPLATE` copy of one (tens of
    milliseconds, not a migration run).

    Every name starts with a prefix unique to this process (other pytest processes share the
    server). A template has no connection once built (CREATE DATABASE needs none on its
    source); it refuses new ones, so that neither a test nor autovacuum opens one.

    A DROP DATABASE waits for a checkpoint of the whole server (seconds when other processes
    have written much), so finished test databases are dropped DROP_BATCH at a time, at once
    on as many connections (one checkpoint serves them all), on background threads while the
    next tests run; a teardown waits only when the previous batch is still being dropped."""

    DROP_BATCH = 8

    def __init__(self, url: str) -> None:
        self.url: URL = make_url(url)
        self.prefix = f"ecosync_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.templates: dict[str, str] = {}
        self.count = 0
        self._admin: Engine | None = None
        self._locale: str | None = None
        self._dropper = ThreadPoolExecutor(max_workers=self.DROP_BATCH,
                                           thread_name_prefix="pg-drop")
        self._finished: list[str] = []  # test databases not yet being dropped
        self._dropping: list[Future[None]] = []

    def _admin_engine(self) -> Engine:
        if self._admin is None:
            # On the database the URL names; no pool: every command on a fresh connection,
            # in autocommit (CREATE and DROP DATABASE run outside a transaction).
            self._admin = create_engine(self.url, poolclass=NullPool,
                                        isolation_level="AUTOCOMMIT")
        return self._admin

    def _execute(self, sql: str) -> None:
        with self._admin_engine().connect() as conn:
            conn.exec_driver_sql(sql)

    def _locale_clause(self) -> str:
        """The encoding and locale of the database the URL names, for a copy of template0."""
        if self._locale is None:
            with self._admin_engine().connect() as conn:
                encoding, collate, ctype = conn.execute(text(
                    "SELECT pg_encoding_to_char(encoding), datcollate, datctype "
                    "FROM pg_database WHERE datname = current_database()")).one()
            self._locale = (f"ENCODING '{encoding}' LC_COLLATE '{collate}' "
                            f"LC_CTYPE '{ctype}'")
        return self._locale

    def engine_for(self, name: str) -> Engine:
        return make_engine(self.url.set(database=name).render_as_string(hide_password=False))

    def _template(self, kind: str) -> str:
        name = self.templates.get(kind)
        if name is not None:
            return name
        name = f"{self.prefix}_{kind}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE template0 {self._locale_clause()}')
        self.templates[kind] = name
        if kind != _EMPTY:
            engine = self.engine_for(name)
            try:
                if kind == _HEAD:
                    migrations.upgrade(engine)
                else:
                    Base.metadata.create_all(engine)
            finally:
                engine.dispose()  # no connection left on the template
        self._execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        return name

    def new(self, kind: str) -> str:
        """A new database holding what `kind` says; returns its name."""
        template = self._template(kind)
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop(self, name: str) -> None:
        """Drops a test database, with the next ones of its batch; a connection a test left
        open to it (a pool it did not dispose) is closed by the server."""
        self._finished.append(name)
        if len(self._finished) >= self.DROP_BATCH:
            self._wait_for_drops()
            self._drop_finished()

    def _drop_finished(self) -> None:
        self._dropping = [
            self._dropper.submit(self._execute, f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
            for n in self._finished]
        self._finished = []

    def _wait_for_drops(self) -> None:
        dropping, self._dropping = self._dropping, []
        for future in dropping:
            future.result()  # a failed drop fails the test (or session) that waits for it

    def close(self) -> None:
        try:
            self._wait_for_drops()
        finally:
            self._finished.extend(self.templates.values())
            self._drop_finished()
            try:
                self._wait_for_drops()
            finally:
                self._dropper.shutdown(wait=True)
                if self._admin is not None:
                    self._admin.dispose()


@pytest.fixture(scope="session")
def pg_templates() -> Iterator[_PgTemplates | None]:
    """The session's PostgreSQL templates (None without ECOSYNC_TEST_DATABASE_URL); they and
    any test database still queued for dropping are gone when the session ends."""
    pg = postgres_url()
    if pg is None:
        yield None
        return
    templates = _PgTemplates(pg)
    try:
        yield templates
    finally:
        templates.close()


class _Databases:
    def __init__(self, tmp: Path, template: _SqliteTemplate,
                 pg_templates: _PgTemplates | None) -> None:
        self.tmp = tmp
        self.template = template
        self.pg_templates = pg_templates
        self.engines: list[tuple[Engine, str | None]] = []

    def new(self, kind: str = "default", *, migrate: bool = True,
            models: bool = False) -> Engine:
        """A fresh database: kind 'sqlite', 'postgres', or 'default' (env decides). Migrated
        to head; empty with migrate=False; with models=True, the tables of the models
        (Base.metadata.create_all) instead of the migrations'."""
        pg = postgres_url()
        if kind == "postgres" and pg is None:
            pytest.skip(f"PostgreSQL test: set {PG_ENV}")
        if kind == "sqlite" or (kind == "default" and pg is None):
            path = self.tmp / f"wh-{uuid.uuid4().hex[:8]}.db"
            if migrate and not models:
                self.template.copy_to(path)
            engine = make_engine(f"sqlite:///{path}")
            self.engines.append((engine, None))
            if models:
                Base.metadata.create_all(engine)
            return engine
        assert self.pg_templates is not None
        name = self.pg_templates.new(_MODELS if models else _HEAD if migrate else _EMPTY)
        engine = self.pg_templates.engine_for(name)
        self.engines.append((engine, name))
        return engine

    def close(self) -> None:
        for engine, database in self.engines:
            engine.dispose()
            if database and self.pg_templates is not None:
                self.pg_templates.drop(database)


@pytest.fixture
def databases(tmp_path: Path, sqlite_template: _SqliteTemplate,
              pg_templates: _PgTemplates | None) -> Iterator[_Databases]:
    dbs = _Databases(tmp_path, sqlite_template, pg_templates)
    yield dbs
    dbs.close()


@pytest.fixture
def warehouse(databases: _Databases) -> Engine:
    """A migrated warehouse on the engine under test (SQLite, or PostgreSQL via env)."""
    return databases.new()


@pytest.fixture
def new_database(databases: _Databases) -> Callable[..., Engine]:
    return databases.new
