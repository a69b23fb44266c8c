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
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import FrameType

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.base import Connector, RateLimited
from schema.models import Watermark, WritebackError
from schema.states import DeadLetterStatus
from sync.config import Config
from sync.errors import UserError, describe_error
from sync.health import DaemonState, Gauges, serve_health
from sync.leader import WriterLock
from sync.logs import get_logger
from sync.runs import abandon_dead_runs
from sync.stages.counts import ApiUse
from sync.tick import TickOptions, TickReport, failed_report, failed_run_id, run_tick
from sync.warehouse import require_head
from sync.wiring import build_connectors

log = get_logger("ecosync.daemon")


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("stop requested; finishing the current batch", signal=signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


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

    def check(self, report: TickReport, gauges: Gauges) -> list[str]:
        alerts = []
        totals = report.counts.totals()
        pulled, written = totals.pulled, totals.written
        if self._spike(list(self.pulled), pulled):
            alerts.append("pulled_spike")
        if self._spike(list(self.written), written):
            alerts.append("written_spike")
        self.pulled.append(pulled)
        self.written.append(written)
        dead_letters = gauges.dead_letters
        share = dead_letters / max(1, dead_letters + written)
        if len(self.dead_share) >= 3 and share > 0.05 and share > max(self.dead_share):
            alerts.append("dead_letter_share_rising")
        self.dead_share.append(share)
        for source, use in gauges.api.items():
            if use.daily_cap and use.daily_used is not None \
                    and use.daily_used >= 0.8 * use.daily_cap:
                alerts.append(f"api_budget_high:{source}")
        for alert in alerts:
            log.warning("alert", alert=alert, run_id=report.run_id)
        return alerts


def read_gauges(engine: Engine, connectors: Sequence[Connector], now: datetime,
                offsets: Mapping[str, timedelta]) -> Gauges:
    """Dead letters pending, each stream's lag behind the CRM's clock (its watermark is the
    end of the last window read whole; `offsets`: each CRM's clock minus this host's), and
    each CRM's API day as it last reported it."""
    with Session(engine) as session:
        dead = int(session.execute(
            select(func.count()).select_from(WritebackError)
            .where(WritebackError.status == DeadLetterStatus.PENDING)).scalar_one())
        lag = {(source, stream):
               (now + offsets.get(source, timedelta(0)) - modified).total_seconds()
               for source, stream, modified in session.execute(
                   select(Watermark.source, Watermark.stream, Watermark.modified_at))
               if modified is not None}
    api = {c.name: ApiUse.of(c.usage(), c.usage().calls) for c in connectors}
    return Gauges(dead_letters=dead, lag_seconds=lag, api=api)


def run_daemon(engine: Engine, config: Config, *, stop: threading.Event | None = None,
               max_ticks: int | None = None, connectors: Sequence[Connector] | None = None,
               health: bool = True,
               pause: Callable[[float], object] | None = None) -> DaemonState:
    """Tick until `stop` is set (or `max_ticks` ticks). Between ticks the daemon waits on
    `stop` for the interval; `pause` replaces that wait (a test advances its sandbox clocks
    instead of letting wall-clock time pass)."""
    stop = stop or threading.Event()
    pause = pause or stop.wait
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
                abandon_dead_runs(engine, datetime.now(UTC))
            wait = daemon_tick(engine, config, conns, state, alerts, stop)
            ticks += 1
            if max_ticks is not None and ticks >= max_ticks:
                break
            pause(wait)
    finally:
        lock.release()
        if web is not None:
            web.stop()
        if server is not None:
            server.shutdown()
            server.server_close()
        log.info("daemon stopped", ticks=ticks)
    return state


def daemon_tick(engine: Engine, config: Config, conns: Sequence[Connector], state: DaemonState,
                alerts: Alerts, stop: threading.Event) -> float:
    """One tick as the leader, and what /metrics and /healthz learn from it; returns how long
    to wait before the next (longer after a rate-limit stop)."""
    interval = state.interval_s
    wait = interval + random.uniform(0, config.daemon.jitter_seconds)
    started = time.monotonic()
    try:
        report = run_tick(engine, config, conns, options=TickOptions(stop=stop))
        now = datetime.now(UTC)
        state.clock_offsets.update(report.clock_offsets)
        gauges = read_gauges(engine, conns, now, state.clock_offsets)
        found = alerts.check(report, gauges)
        with state.lock:
            state.ticks += 1
            state.last_tick_at = now
            if report.status.ok:
                state.last_success_at = now
            state.last_duration_s = time.monotonic() - started
            state.gauges = gauges
            state.alerts = found
        _count(state, report)
    except RateLimited as exc:
        _count_failed(state, exc)
        wait = max(wait, exc.retry_after_s or interval)
        run_id = failed_run_id(exc)
        if run_id is None:
            log.error("rate limited; pausing", retry_after_s=wait,
                      error=describe_error(exc))
        else:  # the tick logged the failure itself; this line says what happens next
            log.info("rate limited; pausing", retry_after_s=wait, run_id=run_id)
    except Exception as exc:  # a failing tick must never crash-loop the daemon
        _count_failed(state, exc)
        if failed_run_id(exc) is None:  # else the tick logged it, with its run id
            log.exception("tick failed", error=describe_error(exc))
    return wait


def _count(state: DaemonState, report: TickReport) -> None:
    state.add(report.counts, {name: use.calls for name, use in report.api.items()})


def _count_failed(state: DaemonState, exc: BaseException) -> None:
    """A failed tick still counts what it did before it failed (calls made, records read)."""
    with state.lock:
        state.ticks += 1
        state.tick_failures += 1
        state.last_tick_at = datetime.now(UTC)
    report = failed_report(exc)
    if report is not None:
        _count(state, report)
