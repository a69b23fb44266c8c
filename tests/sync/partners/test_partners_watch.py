"""Watched partner files in the tick (issue 17.11): a bad version is reported once, with its
lines and columns, not as a `partial` run forever; `skip_invalid` imports the good rows and
reports the skipped lines; duplicate display names are refused."""

from __future__ import annotations

import io
import json
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from partner_support import NOW, write_csv
from sqlalchemy import Engine, func, select

from schema.db import transaction
from schema.models import Partner, PartnerAccount
from sync.cli import cli
from sync.config import Config, parse_config
from sync.errors import ConfigError, UserError
from sync.logs import configure_logging
from sync.partners import add_partner, sync_partners_from_config
from sync.tick import run_tick

GOOD = [["A-1", "Acme", "acme.com", "customer", "Ann", "ann@p.io"],
        ["A-2", "Beta", "beta.com", "prospect", "", ""]]
BAD = [*GOOD, ["A-3", "Secret Gamma", "gamma.com", "platinum-secret", "", ""]]


@contextmanager
def logs() -> Iterator[list[dict[str, Any]]]:
    stream = io.StringIO()
    events: list[dict[str, Any]] = []
    configure_logging("json", "info", stream=stream)
    try:
        yield events
    finally:
        configure_logging("json", "warning", stream=io.StringIO())
        events.extend(json.loads(line) for line in stream.getvalue().splitlines()
                      if line.startswith("{"))


def _config(tmp_path: Path, warehouse: Engine, extra: str = "") -> Config:
    url = warehouse.url.render_as_string(hide_password=False)
    path = tmp_path / "ecosync.toml"
    path.write_text(f'[warehouse]\nurl = "{url}"\n\n[[partners]]\nid = "p-w"\n'
                    f'name = "Watched Partner"\npath = "p.csv"\n{extra}', encoding="utf-8")
    return parse_config(tomllib.loads(path.read_text(encoding="utf-8")), str(path), {})


def _rows(engine: Engine) -> int:
    with transaction(engine) as session:
        return int(session.execute(select(func.count()).select_from(PartnerAccount)
                                   .where(PartnerAccount.partner_id == "p-w")).scalar_one())


def test_a_bad_version_is_reported_once_then_the_ticks_are_quiet(tmp_path: Path,
                                                                  warehouse: Engine) -> None:
    config = _config(tmp_path, warehouse)
    write_csv(tmp_path / "p.csv", GOOD)
    assert run_tick(warehouse, config, [], now=NOW).status == "succeeded"
    assert _rows(warehouse) == 2
    write_csv(tmp_path / "p.csv", BAD)
    with logs() as events:
        reports = [run_tick(warehouse, config, [], now=NOW) for _ in range(3)]
    assert [r.status for r in reports] == ["partial", "succeeded", "succeeded"]
    (error,) = reports[0].errors
    assert "partner p-w" in error and "line 4, column 'population'" in error
    assert "platinum-secret" not in error and "Secret Gamma" not in error
    rejected = [e for e in events if e["event"] == "partner file rejected"]
    assert len(rejected) == 1 and rejected[0]["level"] == "warning"
    assert "line 4" in rejected[0]["error"]
    assert _rows(warehouse) == 2  # the previous list stands
    # Fixed: imported, and the refusal forgotten; broken again: said again.
    write_csv(tmp_path / "p.csv", [*GOOD, ["A-3", "Gamma", "gamma.com", "customer", "", ""]])
    assert run_tick(warehouse, config, [], now=NOW).counts.tick["partner_files_imported"] == 1
    assert _rows(warehouse) == 3
    with transaction(warehouse) as session:
        partner = session.get(Partner, "p-w")
        assert partner is not None and partner.rejected_fingerprint is None
    write_csv(tmp_path / "p.csv", BAD)
    assert run_tick(warehouse, config, [], now=NOW).status == "partial"
    assert run_tick(warehouse, config, [], now=NOW).status == "succeeded"


def test_a_file_broken_at_the_csv_level_is_also_said_once(tmp_path: Path,
                                                          warehouse: Engine) -> None:
    config = _config(tmp_path, warehouse)
    (tmp_path / "p.csv").write_text("name,domain\nAcme,acme.com\n", encoding="utf-8")
    first = run_tick(warehouse, config, [], now=NOW)
    assert first.status == "partial" and "no population column" in first.errors[0]
    assert run_tick(warehouse, config, [], now=NOW).status == "succeeded"


def test_skip_invalid_imports_the_good_rows_and_reports_the_lines_once(
    tmp_path: Path, warehouse: Engine
) -> None:
    config = _config(tmp_path, warehouse, "skip_invalid = true\n")
    write_csv(tmp_path / "p.csv", BAD)
    with logs() as events:
        first = run_tick(warehouse, config, [], now=NOW)
        second = run_tick(warehouse, config, [], now=NOW)
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert _rows(warehouse) == 2
    (skipped,) = [e for e in events if e["event"] == "partner file rows skipped"]
    assert skipped["rows"] == 1 and "line 4, column 'population'" in skipped["problems"]
    assert "platinum-secret" not in json.dumps(events)


def test_partners_import_follows_the_configured_skip_invalid(tmp_path: Path,
                                                             warehouse: Engine) -> None:
    _config(tmp_path, warehouse, "skip_invalid = true\n")
    write_csv(tmp_path / "p.csv", BAD)
    args = ["--config", str(tmp_path / "ecosync.toml"), "partners", "import", "p-w",
            str(tmp_path / "p.csv")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 invalid row, skipped" in result.output and "line 4" in result.output
    refused = CliRunner().invoke(cli, [*args, "--no-skip-invalid", "--force"])
    assert refused.exit_code != 0 and "nothing was imported" in refused.output


def test_duplicate_display_names_are_refused(warehouse: Engine) -> None:
    with pytest.raises(ConfigError, match=r"partners\[1\]\.name.*also the name of partners\[0\]"):
        parse_config({"partners": [{"id": "a", "name": "Acme Cloud"},
                                   {"id": "b", "name": "  acme   CLOUD "}]})
    with transaction(warehouse) as session:
        add_partner(session, "p-1", "Northbeam", now=NOW)
        with pytest.raises(UserError, match="'p-1' is already named 'NORTHBEAM'"):
            add_partner(session, "p-2", "NORTHBEAM", now=NOW)
    clash = parse_config({"partners": [{"id": "p-cfg", "name": "northbeam"}]})
    with pytest.raises(ConfigError, match="the name of partner 'p-1'"), \
            transaction(warehouse) as session:
        sync_partners_from_config(session, clash, now=NOW)
    # Names swapped between two config partners are no clash.
    swap = [{"id": "x", "name": "One"}, {"id": "y", "name": "Two"}]
    with transaction(warehouse) as session:
        sync_partners_from_config(session, parse_config({"partners": swap}), now=NOW)
    swapped = [{"id": "x", "name": "Two"}, {"id": "y", "name": "One"}]
    with transaction(warehouse) as session:
        sync_partners_from_config(session, parse_config({"partners": swapped}), now=NOW)
        assert session.get(Partner, "x").name == "Two"  # type: ignore[union-attr]
