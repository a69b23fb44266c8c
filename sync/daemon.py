"""`ecosync run`: a tick every interval, one leader among replicas, clean stop on signals.

A signal only sets a flag: the current page or batch is committed and the loop exits. A
failing tick is logged and counted, never allowed to crash-loop the daemon; a rate-limit
stop waits for the time the platform asked for.
"""

from __future__ import annotations

import random
import signal
import statistics
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.base import Connector, RateLimited
from schema.models import Watermark, WritebackError
from sync.config import Config
from sync.errors import UserError, describe_error
from sync.health import DaemonState, serve_health
from sync.leader import WriterLock
from sync.logs import get_logger
from sync.runs import fail_stale_runs
from sync.tick import TickOptions, TickReport, failed_run_id, run_tick
from sync.warehouse import require_head
from sync.wiring import build_connectors

log = get_logger("ecosync.daemon")


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested; finishing the current batch", signal=signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _sum(report: TickReport, prefix: str) -> int:
    return sum(v for k, v in report.counts.items() if k.startswith(prefix))


class Alerts:
    """Deviation alerts: counts far above recent ticks, rising dead letters, API budget."""

    def __init__(self, window: int = 10) -> None:
        self.pulled: deque[int] = deque(maxlen=window)
        self.written: deque[int] = deque(maxlen=window)
        self.dead_share: deque[float] = deque(maxlen=window)

    @staticmethod
    def _spike(history: Sequence[int], value: int) -> bool:
        if len(history) < 3:
            return False
        baseline = statistics.median(history)
        return value > 5 * baseline + 100

    def check(self, report: TickReport, dead_letters: int, budget_use: dict[str, float],
              max_share: dict[str, float]) -> list[str]:
        alerts = []
        pulled, written = _sum(report, "pulled."), _sum(report, "written.")
        if self._spike(list(self.pulled), pulled):
            alerts.append("pulled_spike")
        if self._spike(list(self.written), written):
            alerts.append("written_spike")
        self.pulled.append(pulled)
        self.written.append(written)
        share = dead_letters / max(1, dead_letters + written)
        if len(self.dead_share) >= 3 and share > 0.05 and share > max(self.dead_share):
            alerts.append("dead_letter_share_rising")
        self.dead_share.append(share)
        for source, used in budget_use.items():
            if used >= 0.8 * max_share.get(source, 1.0):
                alerts.append(f"api_budget_high:{source}")
        for alert in alerts:
            log.warning("alert", alert=alert, run_id=report.run_id)
        return alerts


def _gauges(engine: Engine, connectors: Sequence[Connector], now: datetime) -> dict[str, float]:
    out: dict[str, float] = {}
    with Session(engine) as session:
        out["dead_letters"] = float(session.execute(
            select(func.count()).select_from(WritebackError)
            .where(WritebackError.status == "pending")).scalar_one())
        for source, stream, modified in session.execute(
            select(Watermark.source, Watermark.stream, Watermark.modified_at)
        ):
            if modified is not None:
                out[f"data_lag_seconds.{source}/{stream}"] = (now - modified).total_seconds()
    for connector in connectors:
        usage = connector.usage()
        if usage.daily_limit:
            used = (usage.daily_used or 0) / usage.daily_limit
            out[f"api_budget_used_ratio.{connector.name}"] = used
    return out


def run_daemon(engine: Engine, config: Config, *, stop: threading.Event | None = None,
               max_ticks: int | None = None, connectors: Sequence[Connector] | None = None,
               health: bool = True) -> DaemonState:
    stop = stop or threading.Event()
    require_head(engine)
    interval = float(config.daemon.interval_seconds)
    state = DaemonState(interval_s=interval)
    server = None
    if health:
        try:
            server = serve_health(config.daemon.health_host, config.daemon.health_port, state)
        except OSError as exc:
            raise UserError(
                f"cannot serve /healthz and /metrics on {config.daemon.health_host}:"
                f"{config.daemon.health_port} ({exc.strerror}); another process holds the "
                "port: change daemon.health_port in the config") from None
    lock = WriterLock(engine, config.daemon.lock_file, "run")
    conns = list(connectors) if connectors is not None else build_connectors(config)
    alerts = Alerts()
    max_share = {config.crm.salesforce.name: config.crm.salesforce.max_api_share,
                 config.crm.hubspot.name: config.crm.hubspot.max_api_share}
    ticks = 0
    standby_logged = False
    web = None
    if config.web.enabled:  # the web view in this process (docs/web.md)
        from sync.web.server import serve_in_thread

        web = serve_in_thread(engine, config)
    log.info("daemon started", interval_seconds=interval, sources=[c.name for c in conns])
    try:
        while not stop.is_set():
            if not lock.try_acquire() or not lock.still_held():
                if state.leader:
                    log.warning("leadership lost")
                elif not standby_logged:
                    holder = lock.holder()
                    log.info("standby: another writer holds the warehouse",
                             holder=holder.describe() if holder else None)
                    standby_logged = True
                state.leader = False
                stop.wait(min(interval / 2, 5.0))
                continue
            if not state.leader:
                log.info("became leader")
                state.leader = True
                standby_logged = False
                fail_stale_runs(engine, datetime.now(UTC), timedelta(seconds=3 * interval))
            wait = interval + random.uniform(0, config.daemon.jitter_seconds)
            started = time.monotonic()
            try:
                report = run_tick(engine, config, conns, options=TickOptions(stop=stop))
                now = datetime.now(UTC)
                gauges = _gauges(engine, conns, now)
                budget = {k.split(".", 1)[1]: v for k, v in gauges.items()
                          if k.startswith("api_budget_used_ratio.")}
                found = alerts.check(report, int(gauges.get("dead_letters", 0)), budget,
                                     max_share)
                with state.lock:
                    state.ticks += 1
                    state.last_tick_at = now
                    if report.status in ("succeeded", "partial", "interrupted"):
                        state.last_success_at = now
                    state.last_duration_s = time.monotonic() - started
                    state.gauges = gauges
                    state.alerts = found
                state.add({k: float(v) for k, v in report.counts.items()})
                state.add({f"api_calls.{k}": float(v) for k, v in report.api_calls.items()})
            except RateLimited as exc:
                state.tick_failures += 1
                wait = max(wait, exc.retry_after_s or interval)
                run_id = failed_run_id(exc)
                if run_id is None:
                    log.error("rate limited; pausing", retry_after_s=wait,
                              error=describe_error(exc))
                else:  # the tick logged the failure itself; this line says what happens next
                    log.info("rate limited; pausing", retry_after_s=wait, run_id=run_id)
            except Exception as exc:  # a failing tick must never crash-loop the daemon
                state.tick_failures += 1
                if failed_run_id(exc) is None:  # else the tick logged it, with its run id
                    log.exception("tick failed", error=describe_error(exc))
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                break
            stop.wait(wait)
    finally:
        lock.release()
        if web is not None:
            web.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        log.info("daemon stopped", ticks=ticks)
    return state
