"""The delivery stage: after the tick's data is committed, send what the outbox holds.

At least once: an event is marked sent only after its receiver answered 2xx, so a kill
between the two sends it again, with the same idempotency key (receivers deduplicate on
it). A failing or hanging receiver never holds the tick for long:
- each request has a bounded timeout (`timeout_seconds`, cut to what the stage has left);
- quick failures (5xx, 429, refused connection) are retried in the stage with exponential
  backoff (tenacity, at most IN_STAGE_ATTEMPTS); a timeout is not retried in the stage;
- the first failure stops that alert: its other events wait with it, later ticks retry
  with a backoff that doubles up to an hour, and after `max_attempts` the event is marked
  failed (`ecosync alerts list` shows it);
- alerts are sent side by side (one thread each) and the stage stops starting requests
  after `budget_s` (STAGE_BUDGET_S): a tick waits at most about that long for alerts.

Webhook signature: `X-Ecosync-Signature-256: sha256=<hex>`, the HMAC-SHA256 under the
alert's secret of `<timestamp>.<body>`, with the timestamp (Unix seconds) in
`X-Ecosync-Timestamp`; docs/alerts.md shows the receiver's side.
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.stop import stop_base

from schema.models import AlertEvent, Partner
from sync.alerts.periodic import queue_periodic
from sync.alerts.render import Message, render, slack_body, webhook_body
from sync.config import Config
from sync.config.alerts import AlertConfig, EventKind
from sync.errors import masked_text
from sync.logs import get_logger

if TYPE_CHECKING:  # loaded to send: `alerts list` and the reports need no HTTP client
    import requests

SIGNATURE_HEADER = "X-Ecosync-Signature-256"
TIMESTAMP_HEADER = "X-Ecosync-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Ecosync-Event"
STAGE_BUDGET_S = 10.0
IN_STAGE_ATTEMPTS = 3
PER_ALERT_PER_TICK = 200
BACKOFF_FIRST_S, BACKOFF_MAX_S = 30, 3600

log = get_logger("ecosync.alerts")


class Status(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"  # sharing left nothing to say: never sent


class _Quick(Exception):
    """The last attempt failed in a way worth retrying at once (5xx, 429, refused)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    attempts: int
    detail: str  # "HTTP 200", "timed out after 5.0 s", ...
    quick: bool = False  # worth retrying at once
    retry_after_s: float | None = None


@dataclass
class DeliveryStats:
    queued_periodic: int = 0
    sent: int = 0
    failed_attempts: int = 0
    gave_up: int = 0
    suppressed: int = 0
    outcomes: dict[int, Outcome] = field(default_factory=dict)


class _UsageSource(Protocol):
    name: str

    def usage(self) -> Any: ...


def api_use(connectors: Sequence[_UsageSource]) -> dict[str, tuple[int, int]]:
    out = {}
    for c in connectors:
        usage = c.usage()
        if usage.daily_limit:
            out[c.name] = (int(usage.daily_used or 0), int(usage.daily_limit))
    return out


def request_for(alert: AlertConfig, msg: Message, key: str,
                occurred_at: str, now_s: float) -> tuple[bytes, dict[str, str]]:
    """The bytes and headers one attempt sends (the timestamp is the attempt's own)."""
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key,
               EVENT_HEADER: msg.event, "User-Agent": "ecosync-alerts"}
    if alert.kind == "slack":
        return slack_body(msg, key=key), headers
    body = webhook_body(msg, alert=alert.name, key=key, occurred_at=occurred_at)
    stamp = str(int(now_s))
    headers[TIMESTAMP_HEADER] = stamp
    headers[SIGNATURE_HEADER] = sign(alert.secret, stamp, body)
    return body, headers


class _StopAt(stop_base):
    """Stop retrying once the stage's time is spent."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self.deadline, self.clock = deadline, clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.clock() >= self.deadline


def send(alert: AlertConfig, msg: Message, key: str, occurred_at: str, *, deadline: float,
         clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """POST one message, retrying quick failures with backoff until `deadline` (on clock)."""
    attempts = 0
    last = Outcome(False, 0, "not attempted: the stage's time was spent")

    import requests

    retrying = Retrying(
        stop=stop_after_attempt(IN_STAGE_ATTEMPTS) | _StopAt(deadline, clock),
        wait=wait_exponential(multiplier=0.5, max=4), sleep=sleep,
        retry=retry_if_exception_type(_Quick), reraise=True)
    with requests.Session() as client:
        try:
            for attempt in retrying:
                with attempt:
                    left = deadline - clock()
                    if left <= 0:
                        return last
                    attempts += 1
                    body, headers = request_for(alert, msg, key, occurred_at, time.time())
                    last = _post(client, alert, body, headers,
                                 min(alert.timeout_seconds, left), attempts)
                    if last.quick:
                        raise _Quick(last.detail)
        except _Quick:
            pass
    return last


def _post(client: requests.Session, alert: AlertConfig, body: bytes, headers: dict[str, str],
          timeout: float, attempts: int) -> Outcome:
    import requests

    try:
        resp = client.post(alert.webhook_url, data=body, headers=headers,
                           timeout=(timeout, timeout), allow_redirects=False,
                           verify=alert.ca_bundle or True)
    except requests.Timeout:
        return Outcome(False, attempts, f"timed out after {timeout:.1f} s")
    except requests.ConnectionError as exc:
        return Outcome(False, attempts, f"connection failed ({exc.__class__.__name__})",
                       quick=True)
    if 200 <= resp.status_code < 300:
        return Outcome(True, attempts, f"HTTP {resp.status_code}")
    detail = f"HTTP {resp.status_code} {resp.text[:200].strip()}".strip()
    quick = resp.status_code in (408, 425, 429) or resp.status_code >= 500
    return Outcome(False, attempts, detail, quick, _retry_after(resp.headers.get("Retry-After")))


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def backoff(attempts: int) -> timedelta:
    """Wait before the next tick retries an event that failed `attempts` times."""
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class _Job:
    event_id: int
    alert: AlertConfig
    message: Message
    key: str
    occurred_at: str
    attempts_before: int


def utcnow() -> datetime:
    return datetime.now(UTC)


def shares_of(session: Session) -> dict[str, tuple[str, dict[str, Any]]]:
    return {p.id: (p.name, p.share or {}) for p in session.scalars(select(Partner))}


def deliver_alerts(
    engine: Engine, config: Config, *, now: datetime | None = None, run_id: int | None = None,
    connectors: Sequence[_UsageSource] = (), budget_s: float = STAGE_BUDGET_S,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> DeliveryStats:
    """The delivery stage: queue the period's events, then send what is due, side by side
    per alert, for at most about `budget_s` seconds. Call it after the tick committed."""
    stats = DeliveryStats()
    if not config.alerts:
        return stats
    when = now or utcnow()
    with Session(engine) as session, session.begin():
        stats.queued_periodic = queue_periodic(session, config, now=when, run_id=run_id,
                                               api_use=api_use(connectors))
    jobs = _due_jobs(engine, config, when, stats)
    if not jobs:
        return stats
    deadline = clock() + budget_s
    results: queue.Queue[tuple[_Job, Outcome]] = queue.Queue()
    by_alert: dict[str, list[_Job]] = {}
    for job in jobs:
        by_alert.setdefault(job.alert.name, []).append(job)
    workers = [threading.Thread(target=_work, args=(js, deadline, clock, sleep, results),
                                name=f"alerts-{name}", daemon=True)
               for name, js in by_alert.items()]
    for w in workers:
        w.start()
    # Results are committed one by one as they come: a kill loses at most the few in flight,
    # which are then sent again with the same key.
    while any(w.is_alive() for w in workers) or not results.empty():
        try:
            job, outcome = results.get(timeout=0.05)
        except queue.Empty:
            if clock() > deadline + 1.0:
                break  # a worker overran its bounded timeouts; its event stays pending
            continue
        _record(engine, job, outcome, utcnow() if now is None else when, stats)
    return stats


def _work(jobs: Sequence[_Job], deadline: float, clock: Callable[[], float],
          sleep: Callable[[float], None], results: queue.Queue[tuple[_Job, Outcome]]) -> None:
    for job in jobs:
        if clock() >= deadline:
            return
        outcome = send(job.alert, job.message, job.key, job.occurred_at, deadline=deadline,
                       clock=clock, sleep=sleep)
        if outcome.attempts == 0:
            return
        results.put((job, outcome))
        if not outcome.ok:
            return  # this receiver is failing: its other events wait for a later tick


def _due_jobs(engine: Engine, config: Config, now: datetime,
              stats: DeliveryStats) -> list[_Job]:
    alerts = {a.name: a for a in config.alerts}
    jobs: list[_Job] = []
    suppressed: list[int] = []
    with Session(engine) as session:
        shares = shares_of(session)
        for name, alert in alerts.items():
            rows = session.scalars(
                select(AlertEvent).where(AlertEvent.alert_name == name,
                                         AlertEvent.status == Status.PENDING.value,
                                         AlertEvent.next_attempt_at <= now)
                .order_by(AlertEvent.id).limit(PER_ALERT_PER_TICK)).all()
            for row in rows:
                msg = render(row.event, row.payload, shares)
                if msg is None:
                    suppressed.append(row.id)
                    continue
                jobs.append(_Job(row.id, alert, msg, row.idempotency_key,
                                 row.created_at.isoformat(), row.attempts))
    if suppressed:
        with Session(engine) as session, session.begin():
            session.execute(update(AlertEvent).where(AlertEvent.id.in_(suppressed))
                            .values(status=Status.SUPPRESSED.value,
                                    last_error="nothing the partners share to say"))
        stats.suppressed += len(suppressed)
    return jobs


def _record(engine: Engine, job: _Job, outcome: Outcome, now: datetime,
            stats: DeliveryStats) -> None:
    stats.outcomes[job.event_id] = outcome
    attempts = job.attempts_before + outcome.attempts
    # A receiver's answer may quote what it was sent (its URL, a signature): masked.
    values: dict[str, Any] = {"attempts": attempts, "last_error": None if outcome.ok
                              else masked_text(outcome.detail)}
    if outcome.ok:
        values.update(status=Status.SENT.value, sent_at=now)
        stats.sent += 1
    elif attempts >= job.alert.max_attempts:
        values.update(status=Status.FAILED.value)
        stats.gave_up += 1
    else:
        wait = backoff(attempts)
        if outcome.retry_after_s:
            wait = max(wait, timedelta(seconds=outcome.retry_after_s))
        values.update(next_attempt_at=now + wait)
        stats.failed_attempts += 1
    with Session(engine) as session, session.begin():
        session.execute(update(AlertEvent).where(AlertEvent.id == job.event_id,
                                                 AlertEvent.status == Status.PENDING.value)
                        .values(**values))
        if "next_attempt_at" in values:
            # The receiver is failing, not this event: its other events wait as long, so the
            # next ticks do not pay a timeout each for them.
            session.execute(update(AlertEvent).where(
                AlertEvent.alert_name == job.alert.name,
                AlertEvent.status == Status.PENDING.value,
                AlertEvent.next_attempt_at < values["next_attempt_at"])
                .values(next_attempt_at=values["next_attempt_at"]))
    # Ids and outcomes only: a log line never carries a partner (sync.sharing).
    log.info("alert delivered" if outcome.ok else "alert delivery failed",
             alert=job.alert.name, event_id=job.event_id, kind=job.message.event,
             attempts=attempts, detail=outcome.detail)


def send_test(alert: AlertConfig, *, budget_s: float = STAGE_BUDGET_S) -> Outcome:
    """`ecosync alerts test NAME`: one sample message, signed and sent like the real ones."""
    import uuid

    msg = render(EventKind.TEST.value, {"alert": alert.name}, {})
    assert msg is not None
    return send(alert, msg, f"test-{uuid.uuid4().hex}", utcnow().isoformat(),
                deadline=time.monotonic() + budget_s)


