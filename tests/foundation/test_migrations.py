"""The models and the migrations never drift, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import migrations
from schema.db import make_engine
from schema.models import Base


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migrated_database_matches_models_exactly(
    new_database: Callable[..., Engine], kind: str
) -> None:
    engine = new_database(kind)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations drifted: {diff}"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_upgrade_reaches_head_and_is_repeatable(
    new_database: Callable[..., Engine], kind: str
) -> None:
    engine = new_database(kind, migrate=False)
    assert migrations.current_revision(engine) is None
    migrations.upgrade(engine)
    migrations.upgrade(engine)  # a second upgrade is a no-op, not an error
    assert migrations.current_revision(engine) == migrations.head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_every_revision_downgrades_cleanly(new_database: Callable[..., Engine]) -> None:
    engine = new_database("sqlite")
    migrations.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrations.upgrade(engine)
    assert migrations.current_revision(engine) == migrations.head_revision()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_revisions_read_without_alembic_agree_with_alembic(
    new_database: Callable[..., Engine], kind: str
) -> None:
    """Commands check the revision without loading Alembic; Alembic must see the same."""
    from alembic.script import ScriptDirectory

    assert migrations.head_revision() == ScriptDirectory.from_config(
        migrations.alembic_config()).get_current_head()
    engine = new_database(kind, migrate=False)
    for target in (None, "0001", "head"):
        if target is not None:
            migrations.upgrade(engine, target)
        with engine.connect() as conn:
            by_alembic = MigrationContext.configure(conn).get_current_revision()
        assert migrations.current_revision(engine) == by_alembic
    assert migrations.current_revision(engine) == migrations.head_revision()


def test_sqlite_tables_are_rowid_tables_or_not_as_the_models_say(
    new_database: Callable[..., Engine], tmp_path: Path
) -> None:
    """Alembic's comparison does not look at SQLite's WITHOUT ROWID (a table option): the
    migrated warehouse and the models' own tables must agree on it table by table."""
    def without_rowid(engine: Engine) -> dict[str, bool]:
        with engine.connect() as conn:
            return {name: "WITHOUT ROWID" in sql.upper() for name, sql in conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                "AND name != 'alembic_version' AND name NOT LIKE 'sqlite_%'"))}

    models = make_engine(f"sqlite:///{tmp_path / 'models.db'}")
    Base.metadata.create_all(models)
    expected = without_rowid(models)
    models.dispose()
    assert expected["dirty_records"] is True
    assert without_rowid(new_database("sqlite")) == expected


def test_postgresql_covering_indexes_are_as_the_models_say(
    new_database: Callable[..., Engine],
) -> None:
    """Alembic's comparison does not look at an index's INCLUDE columns: every index the models
    give `postgresql_include` has exactly those columns included in the migrated warehouse."""
    wanted = {index.name: list(index.dialect_options["postgresql"]["include"] or [])
              for table in Base.metadata.tables.values() for index in table.indexes}
    engine = new_database("postgres")
    with engine.connect() as conn:
        found = dict(conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        )).all())
    for name, include in wanted.items():
        definition = found[name]
        if include:
            assert definition.endswith(f"INCLUDE ({', '.join(include)})") or (
                f"INCLUDE ({', '.join(include)}) WHERE" in definition), definition
        else:
            assert "INCLUDE" not in definition, definition
    assert wanted["ix_partner_accounts_name_key"] == ["id"]
