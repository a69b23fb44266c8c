"""/healthz and /metrics (Prometheus text format) for the daemon."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
    totals: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
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

    def add(self, counts: Mapping[str, float]) -> None:
        with self.lock:
            for key, value in counts.items():
                self.totals[key] = self.totals.get(key, 0) + value


def _name(key: str) -> tuple[str, dict[str, str]]:
    """'written.salesforce/accounts' → ('written', {source, stream})."""
    metric, _, label = key.partition(".")
    labels: dict[str, str] = {}
    if "/" in label:
        labels["source"], labels["stream"] = label.split("/", 1)
    elif label:
        labels["kind"] = label
    return metric.replace("-", "_"), labels


def render_metrics(state: DaemonState) -> str:
    lines: list[str] = []

    def emit(name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP ecosync_{name} {help_}")
        lines.append(f"# TYPE ecosync_{name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines.append(f"ecosync_{name}{{{lab}}} {value}" if lab else f"ecosync_{name} {value}")

    with state.lock:
        emit("leader", "gauge", "1 when this replica is the leader", [({}, float(state.leader))])
        emit("ticks_total", "counter", "Ticks run", [({}, state.ticks)])
        emit("tick_failures_total", "counter", "Ticks that failed", [({}, state.tick_failures)])
        emit("tick_duration_seconds", "gauge", "Duration of the last tick",
             [({}, state.last_duration_s)])
        last = state.last_success_at.timestamp() if state.last_success_at else 0.0
        emit("last_success_timestamp_seconds", "gauge", "Unix time of the last good tick",
             [({}, last)])
        grouped: dict[str, list[tuple[dict[str, str], float]]] = {}
        for key, value in sorted(state.totals.items()):
            metric, labels = _name(key)
            grouped.setdefault(metric, []).append((labels, value))
        for metric, samples in grouped.items():
            emit(f"{metric}_total", "counter", f"Records {metric} (sum over ticks)", samples)
        for key, value in sorted(state.gauges.items()):
            metric, labels = _name(key)
            emit(metric, "gauge", metric.replace("_", " "), [(labels, value)])
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
