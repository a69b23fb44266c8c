"""Alert tests' helpers: HTTPS receivers (trustme TLS, sandbox/common.py), a Slack-compatible
one, the receiver-side signature check exactly as docs/alerts.md shows it, and a small
warehouse builder that runs the real matching and stamping."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sandbox.common import HttpsServer, Request, Response, Traffic, make_tls
from schema.models import (
    Account,
    AlertEvent,
    Opportunity,
    Partner,
    PartnerAccount,
)
from sync import dirty
from sync.alerts.detect import DetectStats, detect_facts
from sync.attribution.stamp import stamp_closed
from sync.config import Config, parse_config
from sync.dirty import Kind, Queue
from sync.matching.engine import rematch

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
SECRET = "s3cret-for-tests"
ENV = {"HOOK_URL": "", "HOOK_SECRET": SECRET, "SLACK_URL": ""}
REPLAY_WINDOW_S = 300


def verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """The receiver's check from docs/alerts.md: fresh timestamp, constant-time compare."""
    stamp = headers.get("x-ecosync-timestamp", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > REPLAY_WINDOW_S:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("x-ecosync-signature-256", ""))


@dataclass
class Receiver:
    """What a receiver saw, and how it answers: 'ok', 'fail' (500) or 'hang'."""

    mode: str = "ok"
    slack: bool = False
    received: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    on_request: Callable[[Request], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: HttpsServer | None = None

    def app(self, request: Request) -> Response:
        with self.lock:
            self.received.append(request)
        if self.on_request is not None:
            self.on_request(request)
        if self.mode == "hang":
            self.release.wait(60)  # a hung receiver: answers only when the test ends
            return Response(504, b"")
        if self.mode == "fail":
            return Response(500, b"internal error")
        if self.slack:
            try:
                body = json.loads(request.body)
                assert isinstance(body["text"], str) and isinstance(body["blocks"], list)
            except (ValueError, KeyError, AssertionError):
                return Response(400, b"invalid_payload")
            return Response(200, b"ok", {"Content-Type": "text/html"})
        return Response(200, b'{"ok":true}', {"Content-Type": "application/json"})

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + ("/services/T000/B000/XXXX" if self.slack else "/ecosync")

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(r.body) for r in self.received]

    def keys(self) -> list[str]:
        with self.lock:
            return [r.headers["idempotency-key"] for r in self.received]


@contextmanager
def receivers(tmp: Path, *modes: tuple[str, bool]) -> Iterator[tuple[list[Receiver], Path]]:
    """Receivers for (mode, slack) pairs, over HTTPS with one trustme CA; yields the CA file."""
    tls = make_tls(tmp / "tls-receivers")
    out = []
    try:
        for mode, slack in modes:
            r = Receiver(mode=mode, slack=slack)
            r.server = HttpsServer(r.app, Traffic(), tls).start()
            out.append(r)
        yield out, tls.ca_file
    finally:
        for r in out:
            r.release.set()
            if r.server is not None:
                r.server.stop()


def alerts_toml(alerts: list[dict[str, Any]]) -> str:
    lines = []
    for a in alerts:
        lines.append("[[alerts]]")
        for k, v in a.items():
            lines.append(f"{k} = {json.dumps(v)}")
        lines.append("")
    return "\n".join(lines)


def make_config(engine: Engine, alerts: list[dict[str, Any]], env: dict[str, str],
                partners: str = "") -> Config:
    import tomllib

    url = engine.url.render_as_string(hide_password=False)
    text = f'[warehouse]\nurl = "{url}"\n\n' + partners + "\n" + alerts_toml(alerts)
    return parse_config(tomllib.loads(text), "<test>", env)


class Warehouse:
    """Rows made directly, then the real matching, stamping and detection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.now = T0

    def tick_time(self, days: float = 0, minutes: float = 0) -> datetime:
        self.now = self.now + timedelta(days=days, minutes=minutes)
        return self.now

    def partner(self, pid: str, name: str, share: dict[str, str] | None = None) -> None:
        share = share or {"customer": "full", "open_opportunity": "full", "prospect": "full"}
        with Session(self.engine) as s, s.begin():
            s.add(Partner(id=pid, name=name, kind="technology", source_kind="manual",
                          share=share, created_at=T0, updated_at=T0))

    def account(self, ext: str, domain: str, *, owner: str = "005A", name: str | None = None,
                account_type: str | None = None) -> int:
        with Session(self.engine) as s, s.begin():
            acc = Account(source="salesforce", external_id=ext, name=name or ext,
                          website=f"https://{domain}", domain_key=domain, owner_id=owner,
                          account_type=account_type, modified_at=self.now,
                          ingested_at=self.now)
            s.add(acc)
            s.flush()
            dirty.mark(s, Queue.MATCH, Kind.ACCOUNT, [acc.id])
            dirty.mark(s, Queue.PLAN, Kind.ACCOUNT, [acc.id])
            return acc.id

    def partner_account(self, pid: str, domain: str, population: str, *,
                        owner_name: str | None = "Pat Partner",
                        owner_email: str | None = "pat@partner.example") -> None:
        with Session(self.engine) as s, s.begin():
            row = PartnerAccount(partner_id=pid, row_key=domain, name=domain, domain=domain,
                                 domain_key=domain, population=population,
                                 owner_name=owner_name, owner_email=owner_email,
                                 imported_at=self.now, updated_at=self.now)
            s.add(row)
            s.flush()
            dirty.mark(s, Queue.MATCH, Kind.PARTNER_ACCOUNT, [row.id])

    def opportunity(self, ext: str, account_ext: str, *, status: str = "open",
                    amount: str | None = "50000", currency: str = "USD",
                    stage: str = "Negotiation/Review") -> None:
        with Session(self.engine) as s, s.begin():
            opp = Opportunity(
                source="salesforce", external_id=ext, account_external_id=account_ext,
                name=f"Deal {ext}", stage=stage, status=status,
                amount=None if amount is None else Decimal(amount), currency=currency,
                created_at=self.now - timedelta(days=10),
                close_date=self.now.date() if status != "open" else None,
                modified_at=self.now, ingested_at=self.now)
            s.add(opp)
            s.flush()
            dirty.mark(s, Queue.PLAN, Kind.OPPORTUNITY, [opp.id])

    def close(self, ext: str, status: str = "won") -> None:
        with Session(self.engine) as s, s.begin():
            opp = s.scalars(select(Opportunity).where(Opportunity.external_id == ext)).one()
            opp.status, opp.close_date = status, self.now.date()
            dirty.mark(s, Queue.PLAN, Kind.OPPORTUNITY, [opp.id])

    def tick(self, config: Config) -> DetectStats:
        """Match, stamp and detect as the tick does, then clear the flags as the push would."""
        with Session(self.engine) as s, s.begin():
            rematch(s, config.matching, now=self.now)
        with Session(self.engine) as s, s.begin():
            stamp_closed(s, config.attribution, now=self.now)
            stats = detect_facts(s, config, now=self.now)
        self.pushed()
        return stats

    def pushed(self) -> None:
        with Session(self.engine) as s, s.begin():
            for kind in (Kind.ACCOUNT, Kind.OPPORTUNITY):
                dirty.clear(s, Queue.PLAN, kind, dirty.queued(Queue.PLAN, kind))

    def events(self, **where: Any) -> list[AlertEvent]:
        with Session(self.engine, expire_on_commit=False) as s:
            q = select(AlertEvent).order_by(AlertEvent.id)
            for k, v in where.items():
                q = q.where(getattr(AlertEvent, k) == v)
            return list(s.scalars(q))


class Clock:
    """A stage clock the test advances; sleeps advance it instead of waiting."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def wall() -> float:
    return time.time()


@dataclass
class CrmEnv:
    world: Any
    engine: Engine
    config: Config
    connectors: list[Any]


def crm_env(tmp: Path, engine: Engine, **sizes: int) -> Iterator[CrmEnv]:
    """A running Salesforce emulator world with its fields ensured (as tests/e2e does)."""
    from sandbox.world import running_world
    from sync.logs import MASKER
    from sync.wiring import build_connectors

    with running_world(tmp / "world", seed=3, partners=3, hubspot=False, **sizes) as world:
        MASKER.add(world.env().values())
        config = world.config(engine.url.render_as_string(hide_password=False))
        connectors = build_connectors(config)
        for connector in connectors:
            connector.ensure_fields(check_only=False)
        yield CrmEnv(world, engine, config, connectors)
