"""Shared by the fault, crash, security and bad-input suites: a seeded scenario (backfill, then
ticks with CRM changes between them), the CRM owned-field state and the attribution ledger as
comparable values, the write-log checks, and captured structlog JSON output."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.base import Connector, ConnectorError
from sandbox.world import World
from schema.models import (
    Account,
    AttributionCredit,
    AttributionStamp,
    ChangeLog,
    Opportunity,
    SyncRun,
)
from schema.owned_fields import OWNED_FIELDS
from sync.config import Config
from sync.logs import MASKER, configure_logging
from sync.tick import TickOptions, TickReport, run_tick
from sync.wiring import build_connectors

# Datetime owned fields hold the time of the tick that wrote them: they differ between any two
# runs, so state comparisons leave them out (their presence is still compared).
DATETIME_FIELDS = {f.salesforce for f in OWNED_FIELDS if f.kind == "datetime"} | {
    f.hubspot for f in OWNED_FIELDS if f.kind == "datetime"}
SF_OWNED = {f.salesforce for f in OWNED_FIELDS}
HS_OWNED = {f.hubspot for f in OWNED_FIELDS}

CrmState = dict[tuple[str, str], dict[str, Any]]


# ---------------------------------------------------------------------------- log capture
@dataclass
class Captured:
    stream: io.StringIO = field(default_factory=io.StringIO)

    def lines(self) -> list[str]:
        return [line for line in self.stream.getvalue().splitlines() if line.strip()]

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": line, "level": "raw"})
        return out

    def text(self) -> str:
        return self.stream.getvalue()


@contextmanager
def captured_logs(level: str = "info") -> Iterator[Captured]:
    """Every structlog and stdlib log line, as JSON lines, into memory."""
    cap = Captured()
    configure_logging("json", level, stream=cap.stream)
    try:
        yield cap
    finally:
        configure_logging("json", "warning", stream=io.StringIO())


# ---------------------------------------------------------------------------- crash points
class KillAtCall:
    """SIGKILLs a command at its Nth call to the world's CRMs (both emulators counted), while
    that call is in flight (received, not yet answered): a crash point chosen by what the
    command has done, never by wall-clock timing, so it lands alike on an idle or busy host."""

    def __init__(self, world: World) -> None:
        self._lock = threading.Lock()
        self._armed = False
        self._at = 0
        self.calls = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending = False
        self.crms = [c for c in (world.salesforce, world.hubspot) if c is not None]
        for crm in self.crms:
            crm.traffic.on_call = self._on_call

    def _on_call(self, _key: str) -> None:
        with self._lock:
            if not self._armed:
                return
            self.calls += 1
            if self.calls == self._at:
                if self._proc is None:
                    self._pending = True
                elif self._proc.poll() is None:
                    os.kill(self._proc.pid, signal.SIGKILL)

    def run(self, start: Callable[[], subprocess.Popen[bytes]], at: int | None,
            timeout: float = 300) -> subprocess.Popen[bytes]:
        """Start the command and wait for it to end, by itself or killed at call `at` (None:
        never); `self.calls` then holds how many calls it made."""
        with self._lock:
            self._armed, self._at, self.calls = True, at or 0, 0
            self._proc, self._pending = None, False
        proc = start()
        with self._lock:
            self._proc = proc
            if self._pending:
                os.kill(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=timeout)
        finally:
            with self._lock:
                self._armed = False
        return proc

    def close(self) -> None:
        for crm in self.crms:
            crm.traffic.on_call = None


# ---------------------------------------------------------------------------- environment
@dataclass
class Env:
    world: World
    engine: Engine
    config: Config
    connectors: list[Connector]
    warehouse_faults: bool = False


def make_env(world: World, engine: Engine, *, config_toml: str | None = None) -> Env:
    """Connectors on the world, fields provisioned (before any fault is switched on)."""
    import tomllib

    from sync.config import parse_config

    MASKER.add(world.env().values())
    url = engine.url.render_as_string(hide_password=False)
    text = config_toml if config_toml is not None else world.config_toml(url)
    config = parse_config(tomllib.loads(text), "<test>", {**world.env(), **_oauth_env(world)})
    connectors = build_connectors(config)
    for connector in connectors:
        connector.ensure_fields(check_only=False)
    return Env(world, engine, config, connectors)


ENV_HS_CLIENT_SECRET = "ECOSYNC_TEST_HS_CLIENT_SECRET"
ENV_HS_REFRESH = "ECOSYNC_TEST_HS_REFRESH_TOKEN"


def _oauth_env(world: World) -> dict[str, str]:
    if world.hubspot is None:
        return {}
    return {ENV_HS_CLIENT_SECRET: world.hubspot.client_secret,
            ENV_HS_REFRESH: world.hubspot.refresh_token}


def oauth_config_toml(world: World, url: str) -> str:
    """The world's config with HubSpot on OAuth (refresh token) instead of a private app."""
    assert world.hubspot is not None
    hs = world.hubspot
    text = world.config_toml(url)
    return text.replace(
        'auth = "private_app"',
        f'auth = "oauth"\nclient_id = "{hs.client_id}"\n'
        f'client_secret = "${{{ENV_HS_CLIENT_SECRET}}}"\n'
        f'refresh_token = "${{{ENV_HS_REFRESH}}}"',
    ).replace('access_token = "${ECOSYNC_SANDBOX_HUBSPOT_TOKEN}"\n', "")


def all_secrets(world: World) -> dict[str, str]:
    """Every credential the world's sandboxes know, by a descriptive name."""
    out: dict[str, str] = {}
    if world.salesforce is not None:
        sf = world.salesforce
        out.update({"sf.client_secret": sf.client_secret, "sf.password": sf.password,
                    "sf.security_token": sf.security_token, "sf.access_token": sf.access_token})
    if world.hubspot is not None:
        hs = world.hubspot
        out.update({"hs.access_token": hs.access_token, "hs.client_secret": hs.client_secret,
                    "hs.refresh_token": hs.refresh_token})
    return {k: v for k, v in out.items() if v}


# ---------------------------------------------------------------------------- the scenario


def tick(env: Env, options: TickOptions | None = None) -> TickReport | None:
    """One tick; a run the faults stopped (RateLimited, TransientError, and with
    `env.warehouse_faults` a dropped warehouse connection) returns None: the daemon would
    simply tick again."""
    from sqlalchemy.exc import OperationalError

    try:
        return run_tick(env.engine, env.config, env.connectors, options=options)
    except ConnectorError:
        return None
    except OperationalError:
        if env.warehouse_faults:
            return None
        raise


def converge(env: Env, *, backfill: bool = False, max_ticks: int = 25) -> int:
    """Tick until one succeeds outright with nothing left to write; returns ticks taken."""
    for n in range(1, max_ticks + 1):
        opts = TickOptions(backfill=True, kind="backfill") if backfill else TickOptions()
        report = tick(env, opts)
        if report is None or report.status != "succeeded":
            continue
        if backfill:
            backfill = False
            env.world.advance_clocks(1)  # let the second of the backfill's writes pass
            continue
        totals = report.counts.totals()
        written = totals.written + totals.failed
        if written == 0:
            return n
        env.world.advance_clocks(1)  # absorb the echo of our own writes on the next tick
    raise AssertionError(f"no quiet successful tick after {max_ticks} ticks")


def mutate(world: World, round_no: int) -> None:
    """Deterministic CRM changes between ticks: new overlaps, closes, a reopen."""
    sf, hs, seed = world.salesforce, world.hubspot, world.seed
    domains = sorted({row["domain"] for rows in seed.partner_rows.values() for row in rows
                      if row.get("domain")})
    if sf is not None:
        accounts = [r["Id"] for r in sf.records("Account")]
        for i, rid in enumerate(accounts[round_no * 4: round_no * 4 + 4]):
            domain = domains[(i * 7 + round_no) % len(domains)]
            sf.update("Account", rid, {"Website": f"https://www.{domain}/x"})
        open_opps = [r["Id"] for r in sf.records("Opportunity") if not r.get("IsClosed")]
        for i, rid in enumerate(open_opps[:6]):
            sf.close_opportunity(rid, won=i % 3 != 2)
        # A deal closed before the backfill (stamped there) is reopened.
        closed = [r["Id"] for r in sf.records("Opportunity") if r.get("IsClosed")]
        sf.reopen_opportunity(closed[round_no])
    if hs is not None:
        companies = [r.id for r in hs.records("companies")]
        for i, cid in enumerate(companies[round_no * 4: round_no * 4 + 4]):
            hs.update("companies", cid, {"domain": domains[(i * 5 + 3 + round_no) % len(domains)],
                                         "website": ""})
        deals = [r.id for r in hs.records("deals") if r.props.get("hs_is_closed") != "true"]
        for i, did in enumerate(deals[:6]):
            hs.close_deal(did, won=i % 3 != 1)


def run_scenario(env: Env, *, rounds: int = 1) -> None:
    """Backfill, then `rounds` rounds of CRM changes each followed by ticks to convergence."""
    converge(env, backfill=True)
    for round_no in range(rounds):
        mutate(env.world, round_no)
        env.world.advance_clocks(1)
        converge(env)


# ---------------------------------------------------------------------------- state
def crm_state(world: World) -> CrmState:
    out: CrmState = {}
    if world.salesforce is not None:
        for obj in ("Account", "Opportunity"):
            for rec in world.salesforce.records(obj):
                out[(obj, rec["Id"])] = {
                    k: (rec.get(k) if k not in DATETIME_FIELDS else bool(rec.get(k)))
                    for k in SF_OWNED if k in rec}
    if world.hubspot is not None:
        for obj in ("companies", "deals"):
            for hs_rec in world.hubspot.records(obj):
                out[(obj, hs_rec.id)] = {
                    k: (hs_rec.props.get(k) if k not in DATETIME_FIELDS
                        else bool(hs_rec.props.get(k)))
                    for k in HS_OWNED if k in hs_rec.props}
    return out


def ledger(engine: Engine) -> set[tuple[Any, ...]]:
    """The attribution ledger without ids and times: who was credited, how, for which close."""
    with Session(engine) as s:
        credits: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for c in s.scalars(select(AttributionCredit)):
            credits[c.stamp_id].append((c.partner_id, c.kind, _dec(c.amount)))
        out = set()
        rows = s.execute(select(AttributionStamp, Opportunity.source, Opportunity.external_id)
                         .join(Opportunity, Opportunity.id == AttributionStamp.opportunity_id))
        for stamp, source, external_id in rows:
            out.add((source, external_id, stamp.close_key, stamp.version, stamp.outcome,
                     stamp.superseded_at is None, _dec(stamp.amount), stamp.currency,
                     stamp.sourcing_partner_id, stamp.sourced_rule,
                     tuple(sorted(credits[stamp.id]))))
    return out


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


def active_stamps_per_close(engine: Engine) -> dict[str, int]:
    from sqlalchemy import func

    with Session(engine) as s:
        return {k: int(v) for k, v in s.execute(
            select(AttributionStamp.close_key, func.count())
            .where(AttributionStamp.superseded_at.is_(None))
            .group_by(AttributionStamp.close_key)).all()}


def repeated_writes(world: World, engine: Engine | None = None) -> list[tuple[Any, ...]]:
    """(record, field, value) written twice in a row with the same value: the sandbox write
    logs (Salesforce logs every field sent; HubSpot only changes) and ecosync's change log."""
    seen: dict[tuple[str, str, str], Any] = {}
    repeats: list[tuple[Any, ...]] = []

    def check(key: tuple[str, str, str], value: Any) -> None:
        if key in seen and seen[key] == value:
            repeats.append((*key, value))
        seen[key] = value

    if world.salesforce is not None:
        for e in world.salesforce.api_writes():
            check(("sf", e.id, e.field), e.new)
    if world.hubspot is not None:
        for h in world.hubspot.write_log:
            if h.source == "api":
                check(("hs", h.object_id, h.property), h.new)
    if engine is not None:
        with Session(engine) as s:
            for row in s.scalars(select(ChangeLog).order_by(ChangeLog.id)):
                check((f"log:{row.source}", row.external_id, row.field), row.new_value)
    return repeats


def run_ids(engine: Engine) -> set[int]:
    with Session(engine) as s:
        return set(s.scalars(select(SyncRun.id)))


def accounts_and_opportunities(engine: Engine) -> set[tuple[str, str, str]]:
    with Session(engine) as s:
        return ({("account", a, b) for a, b in s.execute(
            select(Account.source, Account.external_id))}
                | {("opportunity", a, b) for a, b in s.execute(
                    select(Opportunity.source, Opportunity.external_id))})


def write_config(world: World, engine: Engine, path: Path, extra: str = "") -> Path:
    path.write_text(world.config_toml(engine.url.render_as_string(hide_password=False)) + extra)
    return path
