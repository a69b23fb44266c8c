"""SIGKILL at 20 seeded points of `ecosync backfill` and `ecosync run` (between and inside
stages: each kill lands at a seeded call to the CRMs, in flight, in pulls or writes), then
restart to completion: the CRMs hold what an uninterrupted run leaves, each close has exactly
one active stamp, and after every kill no watermark is ahead of the data the warehouse committed."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    CrmState,
    KillAtCall,
    active_stamps_per_close,
    crm_state,
    ledger,
    mutate,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sandbox.world import World, running_world
from schema.models import Account, Opportunity, SyncRun
from schema.models import Watermark as WatermarkRow
from sync.stages.counts import TickCounts
from sync.wiring import build_connectors

pytestmark = [pytest.mark.slow, pytest.mark.crash]

SEED = 17
ACCOUNTS, OPPORTUNITIES = 500, 800
KILLS_PER_COMMAND = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Operator:
    """Runs `ecosync` commands against one world and warehouse, as a subprocess each."""

    def __init__(self, world: World, engine: Engine, tmp: Path) -> None:
        self.world, self.engine = world, engine
        url = engine.url.render_as_string(hide_password=False)
        self.config = tmp / "ecosync.toml"
        self.config.write_text(world.config_toml(url) + (
            f"\n[daemon]\ninterval_seconds = 1\njitter_seconds = 0\n"
            f"health_port = {free_port()}\nlock_file = \"{tmp / 'ecosync.lock'}\"\n"))
        self.env = {**os.environ, **world.env()}
        for connector in build_connectors(world.config(url)):
            connector.ensure_fields(check_only=False)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", "from sync.cli import main; main()", "--config",
             str(self.config), "--log-format", "json", *args],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def run(self, *args: str) -> None:
        proc = self.start(*args)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (args, err.decode(errors="replace")[-2000:])

    def ticks_until_quiet(self, limit: int = 8) -> None:
        for _ in range(limit):
            self.world.advance_clocks(1)  # whole Salesforce seconds: let our writes' pass
            before = self.written()
            self.run("sync", "--once")
            if self.written() == before:
                return
        raise AssertionError("the sync never went quiet")

    def world_calls(self) -> int:
        return sum(crm.traffic.total() for crm in (self.world.salesforce, self.world.hubspot)
                   if crm is not None)

    def written(self) -> int:
        assert self.world.salesforce is not None and self.world.hubspot is not None
        return len(self.world.salesforce.api_writes()) + len(self.world.hubspot.write_log)


def run_uninterrupted(op: Operator) -> tuple[int, int]:
    """The reference run; returns how many CRM calls its backfill made, and how many its
    ticks after one round of CRM changes made."""
    counter = KillAtCall(op.world)
    proc = counter.run(lambda: op.start("backfill", "--no-progress"), at=None)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    backfill_calls = counter.calls
    counter.close()
    op.ticks_until_quiet()
    mutate(op.world, 0)
    before = op.world_calls()
    op.ticks_until_quiet()
    return backfill_calls, op.world_calls() - before


def _modstamps(world: World) -> dict[tuple[str, str], list[tuple[datetime, str]]]:
    """Per (source, stream): (last modified, id) of every record in the CRM."""
    assert world.salesforce is not None and world.hubspot is not None
    out: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for obj, stream in (("Account", "accounts"), ("Opportunity", "opportunities")):
        out[("salesforce", stream)] = [
            (_parse(r["SystemModstamp"]), r["Id"]) for r in world.salesforce.records(obj)]
    for obj, stream in (("companies", "accounts"), ("deals", "opportunities")):
        out[("hubspot", stream)] = [
            (_parse(str(r.props["hs_lastmodifieddate"])), r.id)
            for r in world.hubspot.records(obj)]
    return out


def _parse(stamp: str) -> datetime:
    value = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def watermarks_behind_committed_data(world: World, engine: Engine) -> list[Any]:
    """Records the CRM last changed before their stream's watermark, yet missing from the
    warehouse: each would be lost, since the next incremental pull starts past it."""
    stamps = _modstamps(world)
    missing: list[Any] = []
    with Session(engine) as s:
        marks = {(w.source, w.stream): w for w in s.scalars(select(WatermarkRow))}
        have = {("accounts", src, ext) for src, ext in s.execute(
            select(Account.source, Account.external_id))} | {
            ("opportunities", src, ext) for src, ext in s.execute(
                select(Opportunity.source, Opportunity.external_id))}
    for (source, stream), mark in marks.items():
        if mark.modified_at is None:
            continue
        for modified, rid in stamps.get((source, stream), []):
            if modified < mark.modified_at and (stream, source, rid) not in have:
                missing.append((source, stream, rid, modified.isoformat(),
                                mark.modified_at.isoformat()))
    return missing


def kill_at_points(op: Operator, killer: KillAtCall, rng: random.Random,
                   args: tuple[str, ...], typical_calls: int) -> list[str]:
    """SIGKILL the command at KILLS_PER_COMMAND seeded points within its run: at a seeded
    call to the CRMs, in flight.

    A resumed run is shorter than a fresh one (it continues from its checkpoint), so the
    points follow the length of the last run that finished by itself; a run that finishes
    before its kill point does not count as a kill."""
    landed: list[str] = []
    attempts = 0
    while len(landed) < KILLS_PER_COMMAND and attempts < 3 * KILLS_PER_COMMAND:
        attempts += 1
        at = max(1, round(rng.uniform(0.1, 0.9) * typical_calls))
        proc = killer.run(lambda: op.start(*args), at=at)
        if proc.returncode == -signal.SIGKILL:
            landed.append(_stage_of_last_run(op.engine))
        else:
            typical_calls = killer.calls
        _, err = proc.communicate(timeout=30)
        # A run that ended before its kill point must have ended well.
        assert proc.returncode in (0, -signal.SIGKILL), err.decode(errors="replace")[-3000:]
        behind = watermarks_behind_committed_data(op.world, op.engine)
        assert behind == [], f"after a kill at call {at}: {behind[:5]}"
    return landed


def _stage_of_last_run(engine: Engine) -> str:
    with Session(engine) as s:
        run = s.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(1)).first()
    if run is None:
        return "start-up"
    counts = TickCounts.from_json(run.counts)
    if counts.totals().written:
        return "push"
    if counts.match:
        return "match/stamp/plan/push"
    if counts.totals().pulled:
        return "pull"
    return "pull" if run.status == "running" else "between ticks"


def test_sigkill_at_twenty_seeded_points_then_restart_converges(
    tmp_path: Path, new_database: Callable[..., Engine]
) -> None:
    clean_db, crash_db = new_database(), new_database()
    with running_world(tmp_path / "clean", seed=SEED, accounts=ACCOUNTS,
                       opportunities=OPPORTUNITIES, partners=3) as clean:
        backfill_calls, tick_calls = run_uninterrupted(
            Operator(clean, clean_db, tmp_path / "clean"))
        expected_crm: CrmState = crm_state(clean)
        expected_ledger = ledger(clean_db)

    rng = random.Random(SEED)
    with running_world(tmp_path / "crash", seed=SEED, accounts=ACCOUNTS,
                       opportunities=OPPORTUNITIES, partners=3) as world:
        assert world.salesforce is not None and world.hubspot is not None
        op = Operator(world, crash_db, tmp_path / "crash")
        killer = KillAtCall(world)
        # Seeded points across the backfill's own calls (pulls, the writes after matching).
        backfill_kills = kill_at_points(op, killer, rng, ("backfill", "--no-progress"),
                                        backfill_calls)
        op.run("backfill", "--no-progress")
        op.ticks_until_quiet()
        mutate(world, 0)
        world.advance_clocks(1)
        # The daemon's ticks after those changes: the same calls as the reference's ticks.
        daemon_kills = kill_at_points(op, killer, rng, ("run",), tick_calls)
        killer.close()
        op.ticks_until_quiet()

        assert len(backfill_kills) == KILLS_PER_COMMAND, backfill_kills
        assert len(daemon_kills) == KILLS_PER_COMMAND, daemon_kills
        assert len(set(backfill_kills + daemon_kills)) >= 2, "kills should land in several stages"
        actual = crm_state(world)
        assert watermarks_behind_committed_data(world, crash_db) == []
    wrong = {k: (v, expected_crm.get(k)) for k, v in actual.items() if expected_crm.get(k) != v}
    assert wrong == {}, f"{len(wrong)} records differ from the uninterrupted run"
    stamps = active_stamps_per_close(crash_db)
    assert stamps and all(n == 1 for n in stamps.values())
    assert ledger(crash_db) == expected_ledger
