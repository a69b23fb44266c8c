"""Metrics are true: after several daemon ticks against both CRM sandboxes, /metrics read by
Prometheus's own parser has every family with the right type, counters that add up the ticks,
and gauges that say how things stand now (a daily API figure is never summed over ticks)."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from sandbox.world import World, running_world
from schema.models import Watermark, WritebackError
from schema.records import Stream
from schema.states import DeadLetterStatus
from sync.daemon import Alerts, daemon_tick
from sync.health import DaemonState, serve_health
from sync.logs import MASKER
from sync.stages.counts import MEASURES, TickCounts
from sync.wiring import build_connectors

TICKS = 3


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(tmp_path / "world", seed=4, accounts=60, opportunities=120,
                       partners=2) as w:
        MASKER.add(w.env().values())
        yield w


def scrape(state: DaemonState) -> dict[str, tuple[str, dict[tuple[tuple[str, str], ...], float]]]:
    """{family: (type, {labels: value})}, through the HTTP endpoint Prometheus reads."""
    server = serve_health("127.0.0.1", 0, state)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url) as resp:
            text = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    out = {}
    for family in text_string_to_metric_families(text):
        samples = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        out[family.name] = (family.type, samples)
    return out


def test_metrics_after_several_ticks(world: World, warehouse: Engine) -> None:
    assert world.salesforce is not None and world.hubspot is not None
    config = world.config(warehouse.url.render_as_string(hide_password=False))
    connectors = build_connectors(config)
    for connector in connectors:
        connector.ensure_fields(check_only=False)
    calls_before = {c.name: c.usage().calls for c in connectors}
    state = DaemonState(interval_s=60, leader=True)
    alerts, stop = Alerts(), threading.Event()
    expected = TickCounts()
    for _ in range(TICKS):
        world.salesforce.clock.advance(2)
        world.hubspot.clock.advance(2)
        daemon_tick(warehouse, config, connectors, state, alerts, stop)
    with Session(warehouse) as s:
        from schema.models import SyncRun

        for run in s.scalars(select(SyncRun).order_by(SyncRun.id)):
            tick = TickCounts.from_json(run.counts)
            for key, counts in tick.streams.items():
                expected.of(*key).__iadd__(counts)
            for k, v in tick.match.items():
                expected.match[k] = expected.match.get(k, 0) + v
            expected.tick.update(tick.tick)
        pending = s.execute(select(func.count()).select_from(WritebackError).where(
            WritebackError.status == DeadLetterStatus.PENDING)).scalar_one()
        marks = {(w.source, w.stream) for w in s.scalars(select(Watermark))}
    metrics = scrape(state)

    def one(name: str) -> tuple[str, float]:
        kind, samples = metrics[name]
        assert list(samples) == [()], (name, samples)
        return kind, samples[()]

    assert one("ecosync_leader") == ("gauge", 1.0)
    assert one("ecosync_ticks") == ("counter", float(TICKS))
    assert one("ecosync_tick_failures") == ("counter", 0.0)
    assert one("ecosync_tick_duration_seconds")[0] == "gauge"
    assert one("ecosync_last_success_timestamp_seconds")[1] > 0
    assert one("ecosync_dead_letters") == ("gauge", float(pending))
    # Per-stream counters: the sums of what each tick recorded in the run log.
    assert expected.totals().pulled > 0 and expected.totals().written > 0
    for measure in MEASURES:
        kind, samples = metrics[f"ecosync_{measure}"]
        assert kind == "counter", measure
        assert samples == {
            (("source", source), ("stream", stream.value)): float(getattr(counts, measure))
            for (source, stream), counts in expected.streams.items()}, measure
    kind, samples = metrics["ecosync_match"]
    assert kind == "counter"
    assert samples == {(("kind", k),): float(v) for k, v in expected.match.items()}
    assert one("ecosync_stamped") == ("counter", float(expected.tick["stamped"]))
    # API calls: a counter of the calls made; the day's use, limit and cap are gauges equal
    # to what each CRM says now, not multiplied by the number of ticks.
    kind, samples = metrics["ecosync_api_calls"]
    assert kind == "counter"
    assert samples == {(("source", c.name),): float(c.usage().calls - calls_before[c.name])
                       for c in connectors}
    limits = {"salesforce": world.salesforce.daily_limit,
              "hubspot": world.hubspot.limits.daily_max}
    used = {"salesforce": world.salesforce.api_usage, "hubspot": world.hubspot.limits.daily_used}
    for name, want in (("ecosync_api_daily_limit", limits), ("ecosync_api_daily_used", used)):
        kind, samples = metrics[name]
        assert kind == "gauge", name
        assert samples == {(("source", k),): float(v) for k, v in want.items()}, name
    kind, samples = metrics["ecosync_api_daily_cap"]
    assert kind == "gauge"
    assert samples == {(("source", c.name),): float(c.usage().daily_cap or 0)
                       for c in connectors}
    kind, samples = metrics["ecosync_api_budget_used_ratio"]
    assert kind == "gauge"
    assert samples == pytest.approx({(("source", k),): used[k] / limits[k] for k in limits})
    kind, samples = metrics["ecosync_data_lag_seconds"]
    assert kind == "gauge"
    assert set(samples) == {(("source", src), ("stream", Stream(stm).value))
                            for src, stm in marks}
    assert all(v >= 0 for v in samples.values())
    assert metrics["ecosync_alerts"][0] == "gauge"
    # Nothing else is exported without a type and a test above.
    tested = {"ecosync_leader", "ecosync_ticks", "ecosync_tick_failures",
              "ecosync_tick_duration_seconds", "ecosync_last_success_timestamp_seconds",
              "ecosync_dead_letters", "ecosync_match", "ecosync_api_calls",
              "ecosync_api_daily_limit", "ecosync_api_daily_used", "ecosync_api_daily_cap",
              "ecosync_api_budget_used_ratio", "ecosync_data_lag_seconds", "ecosync_alerts",
              *(f"ecosync_{m}" for m in MEASURES)}
    events = {f"ecosync_{k}" for k in expected.tick}
    assert set(metrics) == tested | events
    for name in events:
        assert one(name) == ("counter", float(expected.tick[name.removeprefix("ecosync_")]))
