"""An idle tick is idle: windows end at the CRM's own clock and the watermark follows it.

After a backfill, the echo of ecosync's own writes is re-read (it is inside the lookback) but
changes nothing; once the CRMs have been quiet for longer than the lookback, a tick reads no
record at all: one query per Salesforce object, one search per HubSpot object. The sandbox
clocks are moved instead of waiting on the wall clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from e2e_support import Env, make_env
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from schema.models import Account, SyncRun
from schema.records import Stream
from sync.config import Config
from sync.tick import TickOptions, TickReport, run_tick

STREAMS = [(source, stream) for source in ("salesforce", "hubspot") for stream in Stream]


@pytest.fixture
def env(tmp_path: Path, warehouse: Engine) -> Iterator[Env]:
    yield from make_env(tmp_path, warehouse, accounts=150, opportunities=300)


def advance(env: Env, seconds: float) -> None:
    assert env.world.salesforce is not None and env.world.hubspot is not None
    env.world.salesforce.clock.advance(seconds)
    env.world.hubspot.clock.advance(seconds)


def traffic(env: Env) -> tuple[Counter[str], Counter[str]]:
    assert env.world.salesforce is not None and env.world.hubspot is not None
    return (Counter(env.world.salesforce.traffic.calls),
            Counter(env.world.hubspot.traffic.calls))


def delta(after: Counter[str], before: Counter[str]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def tick(env: Env) -> TickReport:
    report = run_tick(env.engine, env.config, env.connectors)
    assert report.status == "succeeded", report.errors
    return report


def lookback(config: Config) -> float:
    minutes = max(config.crm.salesforce.lookback_minutes, config.crm.hubspot.lookback_minutes)
    return timedelta(minutes=minutes).total_seconds()


def test_once_the_crms_are_quiet_a_tick_reads_nothing(env: Env) -> None:
    run_tick(env.engine, env.config, env.connectors,
             options=TickOptions(backfill=True, kind="backfill"))
    advance(env, 2)  # Salesforce stamps whole seconds: the backfill's writes are now past
    echo = tick(env)
    # The echo of the backfill's own writes is read back, and is no change at all.
    assert echo.counts.totals().pulled > 0
    assert {s: echo.counts.of(*s).changed for s in STREAMS} == dict.fromkeys(STREAMS, 0)
    assert echo.counts.match["dirty_accounts"] == 0
    assert (echo.counts.totals().planned, echo.counts.totals().written) == (0, 0)

    advance(env, lookback(env.config) + 60)  # quiet for longer than the lookback
    tick(env)  # its window still starts a lookback before the echo tick's start
    sf_before, hs_before = traffic(env)
    idle = tick(env)
    sf_after, hs_after = traffic(env)
    assert {s: idle.counts.of(*s).pulled for s in STREAMS} == dict.fromkeys(STREAMS, 0)
    sf, hs = delta(sf_after, sf_before), delta(hs_after, hs_before)
    # One (empty) query per Salesforce object; the connector also re-describes both objects
    # once per tick, to notice field changes. The org's clock (GET /services/data/) is free.
    assert {k: v for k, v in sf.items() if k != "describe"} == {"queryAll": 2}, sf
    # One search per HubSpot object, nothing else: the portal's clock comes from the Date
    # header of each window's search, and the archive was swept less than 15 minutes ago.
    assert hs == {"POST /crm/v3/objects/companies/search": 1,
                  "POST /crm/v3/objects/deals/search": 1}, hs


def test_a_change_stamped_at_the_window_end_is_read_by_the_next_tick(
    tmp_path: Path, warehouse: Engine
) -> None:
    # No lookback at all: only the half-open windows keep a tie at the boundary safe.
    for env in make_env(tmp_path, warehouse, accounts=40, opportunities=60):
        config = env.config
        crm = config.crm
        env.config = replace(config, crm=replace(
            crm, salesforce=replace(crm.salesforce, lookback_minutes=0),
            hubspot=replace(crm.hubspot, lookback_minutes=0)))
        sf, hs = env.world.salesforce, env.world.hubspot
        assert sf is not None and hs is not None
        run_tick(env.engine, env.config, env.connectors,
                 options=TickOptions(backfill=True, kind="backfill"))
        advance(env, 2)
        sf.clock.freeze()
        hs.clock.freeze(hs.clock.now().replace(microsecond=0))
        tick(env)  # its window ends at the frozen instant
        sf_id = sf.records("Account")[0]["Id"]
        hs_id = hs.records("companies")[0].id
        sf.update("Account", sf_id, {"Name": "Tie Breaker Ltd"})  # stamped at that instant
        hs.update("companies", hs_id, {"name": "Tie Breaker Inc"})
        advance(env, 1)
        tick(env)
        with Session(env.engine) as s:
            names = dict(s.execute(select(Account.external_id, Account.name).where(
                Account.external_id.in_([sf_id, hs_id]))).all())
        assert names == {sf_id: "Tie Breaker Ltd", hs_id: "Tie Breaker Inc"}


def test_windows_follow_the_crm_clock_not_this_hosts(env: Env) -> None:
    sf, hs = env.world.salesforce, env.world.hubspot
    assert sf is not None and hs is not None
    run_tick(env.engine, env.config, env.connectors,
             options=TickOptions(backfill=True, kind="backfill"))
    advance(env, 3 * 3600)  # the CRMs' clocks run three hours ahead of this host's
    sf_id = sf.records("Account")[1]["Id"]
    hs_id = hs.records("companies")[1].id
    sf.update("Account", sf_id, {"Name": "Ahead Of Time Ltd"})
    hs.update("companies", hs_id, {"name": "Ahead Of Time Inc"})
    advance(env, 2)
    report = tick(env)
    assert report.counts.of("salesforce", Stream.ACCOUNTS).changed == 1
    assert report.counts.of("hubspot", Stream.ACCOUNTS).changed == 1
    with Session(env.engine) as s:
        names = set(s.scalars(select(Account.name).where(
            Account.external_id.in_([sf_id, hs_id]))))
    assert names == {"Ahead Of Time Ltd", "Ahead Of Time Inc"}


def sync_once_in_a_new_process(env: Env, config: Path) -> None:
    """`ecosync sync --once` as cron would run it: a new process, its connectors built afresh,
    knowing only what the warehouse keeps."""
    proc = subprocess.run(
        [sys.executable, "-c", "from sync.cli import main; main()", "--config", str(config),
         "--log-format", "json", "sync", "--once", "--no-progress"],
        env={**os.environ, **env.world.env()}, capture_output=True, text=True, check=False,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_an_idle_sync_once_in_a_new_process_makes_at_most_two_reads_per_object(
    env: Env, tmp_path: Path
) -> None:
    hs_portal = env.world.hubspot
    assert hs_portal is not None
    config = tmp_path / "ecosync.toml"
    config.write_text(env.world.config_toml(
        env.engine.url.render_as_string(hide_password=False)))
    run_tick(env.engine, env.config, env.connectors,
             options=TickOptions(backfill=True, kind="backfill"))  # sweeps HubSpot's archive
    backfilled = hs_portal.clock.now()
    advance(env, 2)
    sync_once_in_a_new_process(env, config)  # the echo of the backfill's writes
    advance(env, lookback(env.config) + 60)
    sync_once_in_a_new_process(env, config)

    sf_before, hs_before = traffic(env)
    sync_once_in_a_new_process(env, config)
    sf_after, hs_after = traffic(env)

    sf, hs = delta(sf_after, sf_before), delta(hs_after, hs_before)
    # Salesforce: one (empty) query per object and the describe of each (field changes).
    assert sf == {"queryAll": 2, "describe": 2}, sf
    # HubSpot: one search per object. The portal's clock is the Date of those searches, the
    # archive was swept (by another process) less than 15 minutes ago, and the exchange
    # rates are read once per process (the stamp stage converts closed deals with them).
    assert hs == {"POST /crm/v3/objects/companies/search": 1,
                  "POST /crm/v3/objects/deals/search": 1,
                  "GET /settings/v3/currencies/exchange-rates": 1}, hs
    with Session(env.engine) as s:
        runs = s.scalars(select(SyncRun.counts).order_by(SyncRun.id.desc()).limit(1)).one()
    assert not any(v for k, v in runs.items() if k.startswith(("pulled.", "written."))), runs

    # A deletion is still seen within the cadence, by whichever process's turn it is.
    gone = hs_portal.records("companies")[3].id
    hs_portal.archive("companies", gone)
    sync_once_in_a_new_process(env, config)  # within 15 minutes of the last sweep: not yet
    with Session(env.engine) as s:
        assert not s.scalars(select(Account.is_deleted).where(
            Account.source == "hubspot", Account.external_id == gone)).one()
    advance(env, (backfilled + timedelta(minutes=15) - hs_portal.clock.now()).total_seconds())
    before = traffic(env)[1]
    sync_once_in_a_new_process(env, config)
    swept = delta(traffic(env)[1], before)
    assert swept["GET /crm/v3/objects/companies"] == 1  # one listing of the archive
    assert swept["GET /crm/v3/objects/deals"] == 1
    with Session(env.engine) as s:
        assert s.scalars(select(Account.is_deleted).where(
            Account.source == "hubspot", Account.external_id == gone)).one()
