"""/healthz and /metrics (Prometheus text format) for the daemon.

Counters (`_total`) add up what the ticks did since the daemon started; gauges say how things
stand now (the API's daily use and limit as the CRM last reported them, the dead letters
pending, each stream's lag). A daily figure is never summed over ticks.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from schema.records import Stream
from sync.stages.counts import MEASURES, ApiUse, StreamCounts, TickCounts

# What each per-stream counter counts (the HELP line of ecosync_<measure>_total).
_MEASURE_HELP = {
    "pulled": "Records read from the CRM",
    "changed": "Records read that were new or changed in more than their modification stamp",
    "deleted": "Deletions seen in the CRM",
    "planned": "Records with owned fields to change",
    "written": "Records written back",
    "fields_written": "Owned field values written back",
    "failed": "Records whose write failed on its own (dead-lettered)",
    "manual_edits": "Users' edits of owned fields, overwritten",
    "deferred": "Writes put off because the API said not now (budget, rate limit)",
    "reads_deferred": "Pulls cut short so that write-back gets the API budget left",
}
assert set(_MEASURE_HELP) == set(MEASURES)


@dataclass(frozen=True)
class Gauges:
    """How things stand after a tick (read from the warehouse and the connectors)."""

    dead_letters: int = 0
    lag_seconds: dict[tuple[str, str], float] = field(default_factory=dict)  # (source, stream)
    api: dict[str, ApiUse] = field(default_factory=dict)  # per source: the day's use, limit

    def budget_used(self) -> dict[str, float]:
        """Each CRM's daily use as a share of its limit, 0 to 1."""
        return {name: (use.daily_used or 0) / use.daily_limit
                for name, use in self.api.items() if use.daily_limit}


@dataclass
class DaemonState:
    interval_s: float
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    leader: bool = False
    last_success_at: datetime | None = None
    last_tick_at: datetime | None = None
    ticks: int = 0
    tick_failures: int = 0
    last_duration_s: float = 0.0
    # Sums over the ticks this process ran (counters).
    streams: dict[tuple[str, Stream], StreamCounts] = field(default_factory=dict)
    match: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    api_calls: Counter[str] = field(default_factory=Counter)
    gauges: Gauges = field(default_factory=Gauges)
    alerts: list[str] = field(default_factory=list)
    clock_offsets: dict[str, timedelta] = field(default_factory=dict)  # CRM clock - ours
    lock: threading.Lock = field(default_factory=threading.Lock)

    def healthy(self, now: datetime | None = None) -> tuple[bool, str]:
        now = now or datetime.now(UTC)
        with self.lock:
            if not self.leader:
                return True, "standby"
            reference = self.last_success_at or self.started_at
            age = (now - reference).total_seconds()
            if age > 3 * self.interval_s:
                return False, f"no successful tick for {age:.0f}s (> 3 intervals)"
            return True, "ok"

    def add(self, counts: TickCounts, api_calls: dict[str, int]) -> None:
        """Add one tick's counts to the counters."""
        with self.lock:
            for key, stream_counts in counts.streams.items():
                self.streams.setdefault(key, StreamCounts()).__iadd__(stream_counts)
            self.match.update(counts.match)
            self.events.update(counts.tick)
            self.api_calls.update(api_calls)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


Sample = tuple[dict[str, str], float]


def render_metrics(state: DaemonState) -> str:
    lines: list[str] = []

    def emit(name: str, kind: str, help_: str, samples: list[Sample]) -> None:
        lines.append(f"# HELP ecosync_{name} {help_}")
        lines.append(f"# TYPE ecosync_{name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"ecosync_{name}{{{lab}}} {value}" if lab else f"ecosync_{name} {value}")

    with state.lock:
        emit("leader", "gauge", "1 when this replica is the leader", [({}, float(state.leader))])
        emit("ticks_total", "counter", "Ticks run", [({}, float(state.ticks))])
        emit("tick_failures_total", "counter", "Ticks that failed",
             [({}, float(state.tick_failures))])
        emit("tick_duration_seconds", "gauge", "Duration of the last tick",
             [({}, state.last_duration_s)])
        last = state.last_success_at.timestamp() if state.last_success_at else 0.0
        emit("last_success_timestamp_seconds", "gauge", "Unix time of the last good tick",
             [({}, last)])
        if state.streams:
            for f in fields(StreamCounts):
                emit(f"{f.name}_total", "counter", _MEASURE_HELP[f.name], [
                    ({"source": source, "stream": stream.value},
                     float(getattr(counts, f.name)))
                    for (source, stream), counts in sorted(state.streams.items())])
        if state.match:
            emit("match_total", "counter", "The matching stage's figures, summed over ticks",
                 [({"kind": k}, float(v)) for k, v in sorted(state.match.items())])
        for event, value in sorted(state.events.items()):
            emit(f"{event}_total", "counter", f"{event.replace('_', ' ').capitalize()}",
                 [({}, float(value))])
        if state.api_calls:
            emit("api_calls_total", "counter", "API calls made, per CRM source",
                 [({"source": k}, float(v)) for k, v in sorted(state.api_calls.items())])
        g = state.gauges
        api = sorted(g.api.items())
        for name, attr, help_ in (
            ("api_daily_used", "daily_used",
             "The org's or portal's API calls today, as the CRM last reported them"),
            ("api_daily_limit", "daily_limit", "The org's or portal's daily API limit"),
            ("api_daily_cap", "daily_cap",
             "ecosync's own ceiling on the day's calls (max_api_share of the limit)"),
        ):
            samples = [({"source": source}, float(getattr(use, attr))) for source, use in api
                       if getattr(use, attr) is not None]
            if samples:
                emit(name, "gauge", help_, samples)
        ratios = g.budget_used()
        if ratios:
            emit("api_budget_used_ratio", "gauge", "The day's API use over the limit, 0 to 1",
                 [({"source": k}, v) for k, v in sorted(ratios.items())])
        emit("dead_letters", "gauge", "Write-backs pending retry", [({}, float(g.dead_letters))])
        if g.lag_seconds:
            emit("data_lag_seconds", "gauge",
                 "How far each stream's read window trails the CRM's clock",
                 [({"source": s, "stream": t}, v) for (s, t), v in sorted(g.lag_seconds.items())])
        emit("alerts", "gauge", "Active alerts", [({"alert": a}, 1.0) for a in state.alerts])
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    server: _HealthServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        state = self.server.state
        if self.path.startswith("/healthz"):
            ok, why = state.healthy()
            body = f"{'ok' if ok else 'unhealthy'}: {why}\n".encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        elif self.path.startswith("/metrics"):
            body = render_metrics(state).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        else:
            body = b"not found\n"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _HealthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: DaemonState) -> None:
        super().__init__(address, _Handler)
        self.state = state


def serve_health(host: str, port: int, state: DaemonState) -> _HealthServer:
    server = _HealthServer((host, port), state)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
