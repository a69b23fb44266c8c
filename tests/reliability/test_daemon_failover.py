"""Two `ecosync run` replicas on one warehouse: only the leader ticks; killing it hands
over to the standby within two intervals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from waiting import wait_until

from sandbox.world import running_world
from schema.models import SyncRun
from sync.wiring import build_connectors

pytestmark = pytest.mark.slow
INTERVAL = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tick_pids(engine: Engine) -> list[int]:
    with Session(engine) as s:
        return [r.pid for r in s.scalars(select(SyncRun).where(SyncRun.kind == "tick")
                                         .order_by(SyncRun.id)) if r.pid]


def logs(tmp_path: Path) -> str:
    """The replicas' last log lines, for a failure message."""
    return "; ".join(f"{p.stem}: " + " | ".join(p.read_text(errors="replace").splitlines()[-4:])
                     for p in sorted(tmp_path.glob("?.log")))


def test_one_leader_and_failover(tmp_path: Path, new_database: Callable[..., Engine]) -> None:
    engine = new_database()
    with running_world(tmp_path / "w", seed=5, accounts=200, opportunities=300) as world:
        url = engine.url.render_as_string(hide_password=False)
        for connector in build_connectors(world.config(url)):
            connector.ensure_fields(check_only=False)
        procs = []
        for name in ("a", "b"):
            config = tmp_path / f"{name}.toml"
            config.write_text(world.config_toml(url) + (
                f"\n[daemon]\ninterval_seconds = {INTERVAL}\njitter_seconds = 0\n"
                f"health_port = {free_port()}\nlock_file = \"{tmp_path / 'ecosync.lock'}\"\n"))
            env = {**os.environ, **world.env(), "ECOSYNC_CONFIG": str(config)}
            with (tmp_path / f"{name}.log").open("wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", "from sync.cli import main; main()",
                     "--log-format", "json", "run"],
                    env=env, stdout=subprocess.DEVNULL, stderr=log))
        try:
            assert wait_until(lambda: len(tick_pids(engine)) >= 3, timeout=60), \
                f"the leader should have ticked by now: {logs(tmp_path)}"
            pids = tick_pids(engine)
            assert len(set(pids)) == 1, f"two replicas ticked: {pids}"
            leader = pids[0]
            standby = next(p for p in procs if p.pid != leader)
            os.kill(leader, signal.SIGKILL)
            # Two intervals, plus the time of one tick on this small world.
            assert wait_until(lambda: standby.pid in tick_pids(engine),
                              timeout=2 * INTERVAL + 6), \
                f"the standby never took over: {logs(tmp_path)}"
            standby.send_signal(signal.SIGTERM)
            assert standby.wait(timeout=30) == 0
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
