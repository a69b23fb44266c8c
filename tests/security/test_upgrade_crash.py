"""`kill -9` during `ecosync db upgrade`, at seeded points: the warehouse is left exactly as it
was (no table of the interrupted upgrade remains), and the next upgrade reaches the head with
no drift. A warehouse an older ecosync left half-created is repaired if empty, refused in one
line if not.

The child process counts the SQL statements SQLAlchemy sends and kills itself with SIGKILL
at statement N; nothing in the product knows about it.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text

import migrations
from schema.models import Base
from sync.cli import cli

CHILD = """
import os, signal, sys
from sqlalchemy import Engine, event
kill_at, seen = int(sys.argv[1]), 0

@event.listens_for(Engine, "before_cursor_execute")
def _count(*_args):
    global seen
    seen += 1
    if seen == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

from sync.cli import main
sys.argv = ["ecosync", "--config", sys.argv[2], "db", "upgrade"]
try:
    main()
finally:
    print(f"statements={seen}", file=sys.stderr)
"""
SEED = 1015
KILLS = 6


def _config(tmp: Path, engine: Engine) -> Path:
    path = tmp / "ecosync.toml"
    path.write_text(f'[warehouse]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n',
                    encoding="utf-8")
    return path


def _child(config: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, str(kill_at), str(config)],
                          capture_output=True, text=True, timeout=300, check=False)


def _snapshot(engine: Engine) -> tuple[str | None, dict[str, list[str]]]:
    engine.dispose()  # see the file as a new process would
    found = inspect(engine)
    return migrations.current_revision(engine), {
        t: sorted(c["name"] for c in found.get_columns(t)) for t in found.get_table_names()}


def _at_head_without_drift(engine: Engine) -> None:
    assert migrations.current_revision(engine) == migrations.head_revision()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(ctx, Base.metadata) == []


def _upgrade(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"])
    return result.exit_code, result.output


def _statements(tmp: Path, new_database: Callable[..., Engine], kind: str,
                start: str | None) -> int:
    """How many statements a whole upgrade sends, counted on a throwaway warehouse."""
    engine = new_database(kind, migrate=False)
    if start:
        migrations.upgrade(engine, start)
    (tmp / "probe").mkdir()
    probe = _child(_config(tmp / "probe", engine), 0)
    assert probe.returncode == 0, probe.stderr
    return int(probe.stderr.rsplit("statements=", 1)[1].split()[0])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("start", [None, "0002"], ids=["first-upgrade", "from-0002"])
def test_a_killed_upgrade_changes_nothing_and_the_next_one_completes(
    tmp_path: Path, new_database: Callable[..., Engine], kind: str, start: str | None,
) -> None:
    total = _statements(tmp_path, new_database, kind, start)
    rng = random.Random(f"{SEED}-{kind}-{start}")
    points = sorted({1, 2, total - 1, *rng.sample(range(3, total - 1), KILLS)})
    for n, kill_at in enumerate(points):
        folder = tmp_path / f"kill-{n}"
        folder.mkdir()
        engine = new_database(kind, migrate=False)
        if start:
            migrations.upgrade(engine, start)
        before = _snapshot(engine)
        config = _config(folder, engine)
        killed = _child(config, kill_at)
        assert killed.returncode == -9, (kill_at, killed.returncode, killed.stderr[-800:])
        assert _snapshot(engine) == before, f"statement {kill_at} of {total} left a change"
        code, output = _upgrade(config)
        assert code == 0, (kill_at, output)
        _at_head_without_drift(engine)


def test_an_empty_half_created_warehouse_is_repaired(
    tmp_path: Path, new_database: Callable[..., Engine],
) -> None:
    """What a kill did to SQLite before upgrades were one transaction: some tables of the
    first migration, committed one by one, and no revision."""
    engine = new_database("sqlite", migrate=False)
    for name in ("partners", "accounts", "partner_accounts"):
        Base.metadata.tables[name].create(engine)
    code, output = _upgrade(_config(tmp_path, engine))
    assert code == 0, output
    assert "repaired an interrupted first upgrade" in output
    _at_head_without_drift(engine)


def test_tables_with_rows_and_no_revision_are_refused_in_one_line(
    tmp_path: Path, new_database: Callable[..., Engine],
) -> None:
    engine = new_database("sqlite", migrate=False)
    Base.metadata.tables["partners"].create(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO partners (id, name, kind, source_kind, share, "
                          "created_at, updated_at) VALUES ('p', 'P', 'technology', 'csv', "
                          "'{}', '2024-01-01', '2024-01-01')"))
    code, output = _upgrade(_config(tmp_path, engine))
    assert code == 3, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "no migration revision" in output and "partners hold rows" in output
    assert "cannot reach" not in output
    assert set(inspect(engine).get_table_names()) == {"partners"}  # nothing was dropped
