"""The warehouse runs out of space while a tick imports a partner that shares nothing: the
failure is logged and stored without the statement's parameters or the server's row detail
(the hidden population's owner e-mails), and the command ends with one clear line.

SQLite hits a real SQLITE_FULL: the connection's temp database (where imports stage rows) is
capped with `PRAGMA temp.max_page_count`. PostgreSQL cannot be filled on demand, so a trigger
on partner_accounts raises the server's disk-full error (SQLSTATE 53100) with a DETAIL that
quotes the row, as constraint violations do ("Failing row contains (...)").
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from reliability_support import captured_logs
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError

from sync.cli import cli
from sync.config import parse_config
from sync.logs import MASKER
from sync.tick import run_tick

ROWS = 3000
EMAIL = "owner{}@hidden-partner.test"
OWNER = "Hidden Owner {}"


def _partner_file(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "name", "domain", "population", "owner_name",
                         "owner_email"])
        for i in range(ROWS):
            writer.writerow([f"h-{i}", f"Hidden Co {i}", f"hidden-co-{i}.test",
                             ("customer", "open_opportunity", "prospect")[i % 3],
                             OWNER.format(i), EMAIL.format(i)])
    return path


def _config(tmp: Path, engine: Engine) -> Path:
    url = engine.url.render_as_string(hide_password=False)
    path = tmp / "ecosync.toml"
    path.write_text(
        f'[warehouse]\nurl = "{url}"\n\n[daemon]\nlock_file = "{tmp / "ecosync.lock"}"\n\n'
        f'[[partners]]\nid = "p-hidden"\nname = "Hidden Partner"\n'
        f'path = "{_partner_file(tmp / "hidden.csv")}"\n'
        'share = { customer = "hidden", open_opportunity = "hidden", prospect = "hidden" }\n',
        encoding="utf-8")
    return path


@contextmanager
def disk_full(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        def cap(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA temp.max_page_count = 8")

        # Every engine: the CLI opens its own on the same file.
        event.listen(Engine, "connect", cap)
        engine.dispose()
        try:
            yield
        finally:
            event.remove(Engine, "connect", cap)
            engine.dispose()
        return
    with engine.begin() as conn:
        conn.execute(text("""
            CREATE FUNCTION fill_disk() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'could not extend file "base/16384/24576": No space left on device'
                USING ERRCODE = '53100',
                      DETAIL = 'Failing row contains (' || NEW.owner_name || ', '
                               || NEW.owner_email || ').';
            END $$"""))
        conn.execute(text("CREATE TRIGGER fill_disk BEFORE INSERT ON partner_accounts "
                          "FOR EACH ROW EXECUTE FUNCTION fill_disk()"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER fill_disk ON partner_accounts"))
            conn.execute(text("DROP FUNCTION fill_disk()"))


def _leaks(text_: str) -> list[str]:
    return [marker for marker in ("@hidden-partner.test", "Hidden Owner ")
            if marker in text_]


def _stored(engine: Engine, db_dir: Path) -> str:
    """What the warehouse holds: the SQLite files' bytes, or every stored error text."""
    if engine.dialect.name == "sqlite":
        return "\n".join(p.read_bytes().decode("utf-8", "replace")
                         for p in db_dir.glob("wh-*.db*"))
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT coalesce(error, '') FROM sync_runs")).scalars()
        dead = conn.execute(text("SELECT coalesce(message, '') FROM writeback_errors")).scalars()
        return "\n".join([*runs, *dead])


def test_a_tick_that_fills_the_disk_logs_and_stores_no_row_data(
    tmp_path: Path, warehouse: Engine,
) -> None:
    config_path = _config(tmp_path, warehouse)
    config = parse_config(tomllib.loads(config_path.read_text(encoding="utf-8")),
                          str(config_path), {})
    MASKER.clear()
    with disk_full(warehouse), captured_logs() as cap, pytest.raises(OperationalError):
        run_tick(warehouse, config, [])
    logged = cap.text()
    assert "tick failed" in logged and ("full" in logged or "No space" in logged), logged
    with warehouse.connect() as conn:
        status, error = conn.execute(
            text("SELECT status, error FROM sync_runs ORDER BY id DESC")).one()
    assert status == "failed" and error, (status, error)
    assert "[SQL" not in error and "\n" not in error, error  # the driver's first line only
    assert _leaks(logged) == [] and _leaks(error) == []
    assert _leaks(_stored(warehouse, tmp_path)) == []


def test_the_command_ends_with_one_clear_line(tmp_path: Path, warehouse: Engine) -> None:
    config_path = _config(tmp_path, warehouse)
    MASKER.clear()
    with disk_full(warehouse):
        result = CliRunner().invoke(cli, ["--config", str(config_path), "--log-format", "json",
                                          "partners", "import", "p-hidden",
                                          str(tmp_path / "hidden.csv")])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: the warehouse failed (")
    assert "free disk space" in lines[0] and "nothing was half-written" in lines[0]
    assert _leaks(result.output) == []
    assert _leaks(_stored(warehouse, tmp_path)) == []


def test_a_drivers_own_error_is_described_by_its_first_line_only() -> None:
    """A raw COPY on PostgreSQL raises the driver's error unwrapped; its DETAIL and CONTEXT
    lines quote the row."""
    psycopg = pytest.importorskip("psycopg")
    from sync.errors import describe_error, safe_traceback

    raw = psycopg.errors.DiskFull(
        "could not extend file: No space left on device\n"
        "DETAIL:  Failing row contains (Hidden Owner 1, owner1@hidden-partner.test).\n"
        'CONTEXT:  COPY ecosync_stage, line 2: "h-1,Hidden Owner 1,owner1@hidden-partner.test"')
    assert describe_error(raw) == "DiskFull: could not extend file: No space left on device"
    try:
        try:
            raise raw
        except psycopg.Error as exc:
            raise RuntimeError("import failed") from exc
    except RuntimeError as outer:
        rendered = safe_traceback(outer)
    assert rendered is not None and "RuntimeError: import failed" in rendered
    assert _leaks(rendered) == []
