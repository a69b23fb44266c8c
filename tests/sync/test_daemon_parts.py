"""Leader election and the health endpoint, without a CRM."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from schema.records import Stream
from sync.health import DaemonState, render_metrics, serve_health
from sync.leader import LeaderLock
from sync.stages.counts import TickCounts


def test_only_one_replica_leads_and_release_hands_over(
    new_database: Callable[..., Engine], tmp_path: Path
) -> None:
    engine = new_database()
    first = LeaderLock(engine, str(tmp_path / "ecosync.lock"))
    second = LeaderLock(engine, str(tmp_path / "ecosync.lock"))
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.still_held()
    first.release()
    assert second.try_acquire()
    second.release()


def test_health_turns_unhealthy_after_three_intervals_without_success() -> None:
    state = DaemonState(interval_s=60, leader=True)
    now = datetime.now(UTC)
    state.last_success_at = now - timedelta(seconds=100)
    assert state.healthy(now)[0]
    state.last_success_at = now - timedelta(seconds=181)
    ok, why = state.healthy(now)
    assert not ok and "no successful tick" in why


def test_health_and_metrics_are_served_over_http() -> None:
    state = DaemonState(interval_s=60, leader=True)
    state.last_success_at = datetime.now(UTC)
    counts = TickCounts()
    counts.of("salesforce", Stream.ACCOUNTS).written = 5
    counts.of("hubspot", Stream.OPPORTUNITIES).pulled = 7
    state.add(counts, {"salesforce": 3})
    server = serve_health("127.0.0.1", 0, state)
    port = server.server_address[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
            text = resp.read().decode()
        assert 'ecosync_written_total{source="salesforce",stream="accounts"} 5' in text
        assert "ecosync_leader 1.0" in text
        state.last_success_at = datetime.now(UTC) - timedelta(hours=1)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
        assert err.value.code == 503
    finally:
        server.shutdown()
        server.server_close()
    assert "ecosync_ticks_total" in render_metrics(state)
