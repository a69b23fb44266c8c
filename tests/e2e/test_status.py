"""`ecosync status` tells the truth: no config and no warehouse are said and never created; a
failed run shows its reason; a run whose process died reads abandoned, not running; lag is in
human units."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, update

from schema.models import SyncRun
from schema.states import RunStatus
from sync.cli import cli
from sync.commands.status import human_duration
from sync.runs import finish_run, start_run


def test_without_a_config_status_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ECOSYNC_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2, result.output
    assert "no config file" in result.output and "config.example.toml" in result.output
    assert list(tmp_path.iterdir()) == []  # no ecosync.db, no lock file, nothing


def test_a_missing_warehouse_file_is_named_not_created(tmp_path: Path) -> None:
    config = tmp_path / "ecosync.toml"
    config.write_text(f'[warehouse]\nurl = "sqlite:///{tmp_path / "wh.db"}"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 3, result.output
    assert "wh.db does not exist" in result.output and "ecosync db upgrade" in result.output
    assert not (tmp_path / "wh.db").exists()


def test_runs_show_their_reason_and_dead_ones_read_abandoned(
    warehouse: Engine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    failed, _ = start_run(warehouse, "tick", now - timedelta(minutes=3))
    finish_run(warehouse, failed, now - timedelta(minutes=2), status=RunStatus.FAILED,
               counts={}, api_calls={}, error="TransientError: Salesforce unreachable")
    dead, _ = start_run(warehouse, "backfill", now - timedelta(minutes=1))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    with warehouse.begin() as conn:  # its process is gone (this host)
        conn.execute(update(SyncRun).where(SyncRun.id == dead)
                     .values(pid=int(gone.stdout)))
    silent, _ = start_run(warehouse, "tick", now - timedelta(hours=2))
    with warehouse.begin() as conn:  # another host's, silent for two hours
        conn.execute(update(SyncRun).where(SyncRun.id == silent)
                     .values(host="elsewhere", heartbeat_at=now - timedelta(hours=2)))
    config = tmp_path / "ecosync.toml"
    config.write_text(f'[warehouse]\nurl = "{warehouse.url.render_as_string(False)}"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "status", "--format", "json"])
    assert result.exit_code == 0, result.output
    runs = {r["id"]: r for r in json.loads(result.output)["last_runs"]}
    assert (runs[failed]["status"], runs[failed]["reason"]) == (
        "failed", "TransientError: Salesforce unreachable")
    assert runs[dead]["status"] == "abandoned"
    assert runs[dead]["reason"].startswith("its process is gone")
    assert runs[silent]["status"] == "abandoned"
    assert runs[silent]["reason"].startswith("its heartbeat stopped")
    table = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert table.exit_code == 0 and "Salesforce unreachable" in table.output


@pytest.mark.parametrize(("seconds", "shown"), [
    (42, "42 s"), (125, "2 min"), (3600, "1 h"), (3 * 3600 + 5 * 60, "3 h 5 min"),
    (86400, "1 day"), (2 * 86400 + 4 * 3600, "2 days 4 h")])
def test_lag_is_in_human_units(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_a_resumed_backfill_says_where_it_resumes_and_skips_finished_streams(
    tmp_path: Path, warehouse: Engine
) -> None:
    import threading

    from e2e_support import make_env

    from schema.records import Stream
    from sync.progress import Silent
    from sync.tick import TickOptions, run_tick

    for env in make_env(tmp_path, warehouse, hubspot=False, accounts=60, opportunities=120):
        stop = threading.Event()

        class KillDuringOpportunities(Silent):
            def advance(self, stage: str, item: str = "", amount: int = 1,
                        stop: threading.Event = stop) -> None:
                if stage == "pull" and item == "salesforce/opportunities":
                    stop.set()  # as a SIGTERM would, after the first page of opportunities

        first = run_tick(env.engine, env.config, env.connectors,
                         options=TickOptions(backfill=True, kind="backfill", stop=stop),
                         progress=KillDuringOpportunities())
        assert first.status == "interrupted"
        resumed = run_tick(env.engine, env.config, env.connectors,
                           options=TickOptions(backfill=True, kind="backfill"))
        assert resumed.counts.of("salesforce", Stream.ACCOUNTS).pulled == 0
        assert resumed.notes[0] == ("salesforce/accounts: pulled by the interrupted "
                                    "backfill; not pulled again")
        assert resumed.notes[1].startswith(
            "salesforce/opportunities: resuming the interrupted backfill from ")
        config = tmp_path / "ecosync.toml"
        config.write_text(env.world.config_toml(env.engine.url.render_as_string(False)))
        shown = CliRunner().invoke(cli, ["--config", str(config), "status", "--format", "json"],
                                   env=env.world.env())
        marks = json.loads(shown.output)["watermarks"]
        assert all(w["backfill"].startswith("completed ") for w in marks), marks


def test_a_backfill_stopped_after_its_pulls_resumes_without_pulling_again(
    tmp_path: Path, warehouse: Engine
) -> None:
    """Killed in matching or write-back (every page landed), a backfill run again does not
    re-read the CRM: it finishes the matching and the write-back the first one left."""
    import threading

    from e2e_support import make_env

    from sync.progress import Silent
    from sync.tick import TickOptions, run_tick

    for env in make_env(tmp_path, warehouse, hubspot=False, accounts=60, opportunities=120):
        stop = threading.Event()

        class StopBeforePlan(Silent):
            def start(self, stage: str, item: str = "", total: int | None = None,
                      stop: threading.Event = stop) -> None:
                if stage == "plan":
                    stop.set()  # as a SIGTERM would, once every page is landed

        first = run_tick(env.engine, env.config, env.connectors,
                         options=TickOptions(backfill=True, kind="backfill", stop=stop),
                         progress=StopBeforePlan())
        assert first.status == "interrupted"
        assert first.counts.totals().pulled > 0 and first.counts.totals().written == 0
        resumed = run_tick(env.engine, env.config, env.connectors,
                           options=TickOptions(backfill=True, kind="backfill"))
        assert resumed.status == "succeeded"
        assert resumed.counts.totals().pulled == 0
        assert resumed.notes == [f"salesforce/{s}: pulled by the interrupted backfill; "
                                 "not pulled again" for s in ("accounts", "opportunities")]
        assert resumed.counts.totals().written > 0  # the write-back the first one left
        config = tmp_path / "ecosync.toml"
        config.write_text(env.world.config_toml(env.engine.url.render_as_string(False)))
        shown = CliRunner().invoke(cli, ["--config", str(config), "status", "--format", "json"],
                                   env=env.world.env())
        marks = json.loads(shown.output)["watermarks"]
        assert all(w["backfill"].startswith("completed ") for w in marks), marks
        # A later backfill starts over: it is not taken for a resumption.
        again = run_tick(env.engine, env.config, env.connectors,
                         options=TickOptions(backfill=True, kind="backfill"))
        assert again.notes == [] and again.counts.totals().pulled > 0
