"""One writer at a time: backfill, sync --once and the daemon share the leader lock; a
second writer exits with code 3 naming the holder, or waits with --wait; readers never
take it. Runs on both engines (advisory lock on PostgreSQL, lock file on SQLite)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sandbox.world import running_world
from schema.models import SyncRun
from sync.cli import cli
from sync.config import parse_config
from sync.daemon import run_daemon
from sync.leader import WriterLock
from sync.wiring import build_connectors


def _config_text(engine: Engine, lock: Path) -> str:
    url = engine.url.render_as_string(hide_password=False)
    # A CRM that is never reached: the lock is decided before any API call.
    return (f'[warehouse]\nurl = "{url}"\n\n[daemon]\nlock_file = "{lock}"\n\n'
            '[crm.hubspot]\nenabled = true\nbase_url = "https://127.0.0.1:9"\n'
            'access_token = "not-used"\n')


def _invoke(tmp_path: Path, engine: Engine, *args: str) -> Result:
    config = tmp_path / "ecosync.toml"
    config.write_text(_config_text(engine, tmp_path / "ecosync.lock"))
    return CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json", *args])


def test_the_holder_is_known_to_the_second_process(warehouse: Engine, tmp_path: Path) -> None:
    first = WriterLock(warehouse, str(tmp_path / "ecosync.lock"), "backfill")
    second = WriterLock(warehouse, str(tmp_path / "ecosync.lock"), "sync --once")
    assert first.try_acquire()
    try:
        assert not second.try_acquire()
        holder = second.holder()
        assert holder is not None
        assert (holder.command, holder.pid, holder.host) == (
            "backfill", os.getpid(), socket.gethostname())
        assert holder.since is not None
    finally:
        first.release()
    assert second.try_acquire()
    second.release()


@pytest.mark.parametrize("command", [["sync", "--once"], ["backfill", "--no-progress"],
                                     ["sync", "--once", "--dry-run"]])
def test_a_second_writer_exits_at_once_naming_the_holder(
    warehouse: Engine, tmp_path: Path, command: list[str]
) -> None:
    holder = WriterLock(warehouse, str(tmp_path / "ecosync.lock"), "backfill")
    assert holder.try_acquire()
    try:
        result = _invoke(tmp_path, warehouse, *command)
    finally:
        holder.release()
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "`ecosync backfill`" in lines[0]
    assert f"pid {os.getpid()} on {socket.gethostname()}" in lines[0]
    assert "since 20" in lines[0] and "--wait" in lines[0]
    with Session(warehouse) as s:
        assert s.scalars(select(SyncRun)).all() == []  # it started nothing


def test_read_only_commands_never_take_the_lock(warehouse: Engine, tmp_path: Path) -> None:
    holder = WriterLock(warehouse, str(tmp_path / "ecosync.lock"), "backfill")
    assert holder.try_acquire()
    try:
        for args in (["status"], ["report", "overlaps"], ["deadletter", "list"]):
            result = _invoke(tmp_path, warehouse, *args)
            assert result.exit_code == 0, (args, result.output)
        assert holder.still_held()
    finally:
        holder.release()


def test_the_daemon_holds_the_same_lock(warehouse: Engine, tmp_path: Path) -> None:
    config = parse_config({"warehouse": {"url": warehouse.url.render_as_string(False)},
                           "daemon": {"lock_file": str(tmp_path / "ecosync.lock"),
                                      "interval_seconds": 3600}}, "<test>", {})
    stop = threading.Event()
    daemon = threading.Thread(target=run_daemon, args=(warehouse, config),
                              kwargs={"stop": stop, "connectors": [], "health": False})
    daemon.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _runs(warehouse):
            stop.wait(0.05)  # the daemon's first tick records its run
        assert _runs(warehouse), "the daemon never ticked"
        result = _invoke(tmp_path, warehouse, "backfill", "--no-progress")
        assert result.exit_code == 3, result.output
        assert f"`ecosync run` (pid {os.getpid()}" in result.output
    finally:
        stop.set()
        daemon.join(timeout=60)
    # Stopped, it let go: the next writer gets the lock.
    after = WriterLock(warehouse, str(tmp_path / "ecosync.lock"), "backfill")
    assert after.try_acquire()
    after.release()


def _runs(engine: Engine) -> list[SyncRun]:
    with Session(engine) as s:
        return list(s.scalars(select(SyncRun)))


def test_wait_starts_the_tick_once_the_holder_is_done(warehouse: Engine, tmp_path: Path) -> None:
    with running_world(tmp_path / "w", seed=5, accounts=40, opportunities=60,
                       salesforce=False) as world:
        url = warehouse.url.render_as_string(hide_password=False)
        lock = tmp_path / "ecosync.lock"
        config = tmp_path / "ecosync.toml"
        config.write_text(world.config_toml(url) + f'\n[daemon]\nlock_file = "{lock}"\n')
        for connector in build_connectors(world.config(url)):
            connector.ensure_fields(check_only=False)
        holder = WriterLock(warehouse, str(lock), "backfill")
        assert holder.try_acquire()
        proc = subprocess.Popen(
            [sys.executable, "-c", "from sync.cli import main; main()", "--config", str(config),
             "--log-format", "json", "sync", "--once", "--wait"],
            env={**os.environ, **world.env()}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()  # blocks until the child says what it waits for
            assert "waiting for `ecosync backfill`" in line, line
            assert _runs(warehouse) == []
            holder.release()
            _out, err = proc.communicate(timeout=120)
        finally:
            holder.release()
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        runs = _runs(warehouse)
        assert [(r.kind, r.status, r.pid) for r in runs] == [("tick", "succeeded", proc.pid)]
