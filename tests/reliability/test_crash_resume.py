"""A backfill killed with SIGKILL at several points and resumed ends exactly where an
uninterrupted one ends: same CRM fields, same warehouse, one stamp per close."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability_support import KillAtCall
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from sandbox.world import World, running_world
from schema.models import Account, AttributionStamp, Opportunity, Overlap, SyncRun
from schema.owned_fields import OWNED_FIELDS
from sync.stages.counts import TickCounts
from sync.wiring import build_connectors

pytestmark = pytest.mark.slow

SIZES = {"accounts": 2400, "opportunities": 4000, "partners": 3}
DATETIME_FIELDS = {f.salesforce for f in OWNED_FIELDS if f.kind == "datetime"} | {
    f.hubspot for f in OWNED_FIELDS if f.kind == "datetime"}


def _backfill(world: World, engine: Engine, tmp: Path) -> subprocess.Popen[bytes]:
    config = tmp / "ecosync.toml"
    config.write_text(world.config_toml(engine.url.render_as_string(hide_password=False)))
    env = {**os.environ, **world.env(), "ECOSYNC_CONFIG": str(config)}
    return subprocess.Popen(
        [sys.executable, "-c", "from sync.cli import main; main()", "--log-format", "json",
         "backfill", "--no-progress"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def provision(world: World, engine: Engine) -> None:
    config = world.config(engine.url.render_as_string(hide_password=False))
    for connector in build_connectors(config):
        connector.ensure_fields(check_only=False)


def crm_state(world: World) -> dict[tuple[str, str], dict[str, Any]]:
    owned_sf = {f.salesforce for f in OWNED_FIELDS}
    owned_hs = {f.hubspot for f in OWNED_FIELDS}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    assert world.salesforce is not None and world.hubspot is not None
    for obj in ("Account", "Opportunity"):
        for rec in world.salesforce.records(obj):
            out[(obj, rec["Id"])] = {k: rec.get(k) for k in owned_sf - DATETIME_FIELDS
                                     if k in rec}
    for obj in ("companies", "deals"):
        for hs_rec in world.hubspot.records(obj):
            out[(obj, hs_rec.id)] = {k: hs_rec.props.get(k) for k in owned_hs - DATETIME_FIELDS
                                     if k in hs_rec.props}
    return out


def warehouse_state(engine: Engine) -> dict[str, Any]:
    with Session(engine) as s:
        accounts = {(r.source, r.external_id, r.domain_key, r.is_deleted)
                    for r in s.scalars(select(Account))}
        opps = {(r.source, r.external_id, r.status) for r in s.scalars(select(Opportunity))}
        overlaps = {(a, p, pop) for a, p, pop in s.execute(
            select(Account.external_id, Overlap.partner_id, Overlap.population)
            .join(Account, Account.id == Overlap.account_id).where(Overlap.ended_at.is_(None)))}
        stamps_per_close = dict(s.execute(
            select(AttributionStamp.close_key, func.count())
            .where(AttributionStamp.superseded_at.is_(None))
            .group_by(AttributionStamp.close_key)).all())
    return {"accounts": accounts, "opportunities": opps, "overlaps": overlaps,
            "stamps": stamps_per_close}


def test_killed_backfill_resumes_to_the_same_state(
    tmp_path: Path, new_database: Callable[..., Engine]
) -> None:
    clean_db, crash_db = new_database(), new_database()
    with running_world(tmp_path / "a", seed=11, **SIZES) as clean:
        provision(clean, clean_db)
        full = KillAtCall(clean)  # counts the CRM calls of one uninterrupted backfill
        proc = full.run(lambda: _backfill(clean, clean_db, tmp_path / "a"), at=None)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        full.close()
        expected_crm, expected_wh = crm_state(clean), warehouse_state(clean_db)

    with running_world(tmp_path / "b", seed=11, **SIZES) as crashed:
        provision(crashed, crash_db)
        killer = KillAtCall(crashed)
        kills = 0
        # Kills at CRM calls spread over a backfill (pulls, then the writes after matching);
        # each resumed run starts past its last committed page, so the points are counted
        # from each run's own start.
        for share in (0.1, 0.25, 0.15, 0.2, 0.1):
            proc = killer.run(lambda: _backfill(crashed, crash_db, tmp_path / "b"),
                              at=max(1, round(share * full.calls)), timeout=60)
            kills += proc.returncode == -signal.SIGKILL
        killer.close()
        proc = _backfill(crashed, crash_db, tmp_path / "b")
        assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
        assert kills >= 2, "the kills should land while the backfill runs"
        assert crm_state(crashed) == expected_crm
        state = warehouse_state(crash_db)
    assert state == expected_wh
    assert all(count == 1 for count in state["stamps"].values())
    with Session(crash_db) as s:
        # The resumed backfills continued from committed checkpoints: together they pulled
        # far less than one full backfill per attempt.
        pulled = [TickCounts.from_json(r.counts).totals().pulled
                  for r in s.scalars(select(SyncRun).where(SyncRun.kind == "backfill"))]
    total_records = len(expected_wh["accounts"]) + len(expected_wh["opportunities"])
    assert sum(pulled) < total_records * 2.5, pulled
