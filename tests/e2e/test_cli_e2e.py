"""The engine's commands as an operator uses them: dry run, history, dead letters, status."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from e2e_support import Env
from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import WritebackError
from sync.cli import cli
from sync.commands import engine as engine_commands
from sync.logs import MASKER
from sync.wiring import build_connectors


def invoke(env: Env, tmp_path: Path, *args: str) -> Result:
    config = tmp_path / "ecosync.toml"
    if not config.exists():
        config.write_text(env.world.config_toml(
            env.engine.url.render_as_string(hide_password=False)))
    result = CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json", *args],
                                env=env.world.env(), catch_exceptions=False)
    MASKER.add(env.world.env().values())  # the CLI resets logging; keep the test's secrets
    return result


def test_dry_run_prints_changes_and_writes_nothing(both: Env, tmp_path: Path) -> None:
    assert both.world.salesforce is not None and both.world.hubspot is not None
    result = invoke(both, tmp_path, "sync", "--once", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run:" in result.output and "→" in result.output
    # Each line names the field by its CRM name and the record by its name.
    lines = [x for x in result.output.splitlines() if "→" in x]
    sf_account = next(x for x in lines if x.startswith("salesforce accounts "))
    assert "Ecosystem_Overlap_Count__c: " in result.output
    assert "ecosystem_partners: " in result.output and " overlap_count:" not in result.output
    ext = sf_account.split()[2]
    name = both.world.salesforce.get("Account", ext)["Name"]
    assert f"{ext} {name!r} " in sf_account
    # The outcome in words; the counters only in JSON.
    summary = result.output.splitlines()[-1]
    assert re.match(r"run \d+ succeeded: pulled [\d,]+( \(([\d,]+|none) changed\))?, "
                    r".*would write [\d,]+ records? "
                    r"\(dry run: nothing written\); [\d,]+ API calls \(", summary), summary
    assert "pulled.salesforce" not in result.stdout  # (the JSON log line keeps them)
    as_json = json.loads(invoke(both, tmp_path, "sync", "--once", "--dry-run", "--format",
                                "json").stdout)
    pulled = {(r["source"], r["stream"]): r["pulled"] for r in as_json["counts"]["streams"]}
    assert pulled[("salesforce", "accounts")] > 0 and as_json["planned"]
    assert both.world.salesforce.api_writes() == []
    assert [e for e in both.world.hubspot.write_log if e.source == "api"] == []
    for secret in both.world.env().values():
        assert secret not in result.output


def test_history_shows_every_field_written(both: Env, tmp_path: Path) -> None:
    result = invoke(both, tmp_path, "backfill", "--no-progress")
    assert result.exit_code == 0, result.output
    assert both.world.salesforce is not None
    written = both.world.salesforce.api_writes()
    record = next(e.id for e in written if e.object == "Account")
    history = invoke(both, tmp_path, "history", record, "--format", "json")
    assert history.exit_code == 0, history.output
    assert '"field": "overlap_count"' in history.output
    assert '"api_name": "Ecosystem_Overlap_Count__c"' in history.output
    table = invoke(both, tmp_path, "history", record)
    name = both.world.salesforce.get("Account", record)["Name"]
    assert f"history of {record} ({name})" in table.output
    assert "Ecosystem_Overlap_Count__c" in table.output
    status = invoke(both, tmp_path, "status")
    assert status.exit_code == 0 and "backfill" in status.output
    assert "API use salesforce" in status.output and "calls today" in status.output
    unknown = invoke(both, tmp_path, "history", "001NOPE")
    assert unknown.exit_code == 1
    assert "was ever written" in unknown.output


def test_records_that_keep_failing_are_dead_lettered_then_retried(
    both: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sf = both.world.salesforce
    assert sf is not None
    # The commands' connectors wait out their retry backoff on the sandbox clocks.
    monkeypatch.setattr(engine_commands, "build_connectors",
                        partial(build_connectors, sleep=both.world.advance_clocks))
    sf.faults.configure(lock=1.0)  # every record of every collection is locked
    result = invoke(both, tmp_path, "backfill", "--no-progress")
    assert result.exit_code == 0, result.output
    with Session(both.engine) as s:
        dead = s.scalars(select(WritebackError).where(WritebackError.source == "salesforce")).all()
    assert dead and all(d.error_code == "UNABLE_TO_LOCK_ROW" for d in dead)
    listing = invoke(both, tmp_path, "deadletter", "list", "--format", "json")
    assert "UNABLE_TO_LOCK_ROW" in listing.output
    sf.faults.clear()
    assert invoke(both, tmp_path, "deadletter", "retry", "--all").exit_code == 0
    both.world.advance_clocks(1)
    again = invoke(both, tmp_path, "sync", "--once")
    assert again.exit_code == 0, again.output
    with Session(both.engine) as s:
        left = s.scalars(select(WritebackError).where(WritebackError.source == "salesforce")
                         .where(WritebackError.status == "pending")).all()
    assert left == []
    assert {d.external_id for d in dead} <= {e.id for e in sf.api_writes()}
