"""`ecosync doctor`: everything a production run needs, checked, with a fix for each failure.

Each check yields `Check` lines (area, name, status, detail, fix). The checks only read: the
warehouse is never created or migrated, no CRM field is created, no record is written, and a
partner file is parsed but not imported. Any exception a check meets becomes a failing line,
never a traceback, so one broken thing cannot hide the state of the others.

Secrets: no line quotes a config value of a secret key, and every line is passed through the
log masker (which knows the secrets in force) before it is rendered, in case an error message
from a client library echoes one.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import socket
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from connectors.base import (
    AuthFailed,
    BudgetExhausted,
    Connector,
    ConnectorError,
    FieldStatus,
    MissingFields,
    RateLimited,
    TransientError,
    Watermark,
)
from schema.records import Stream
from sync.config import (
    POPULATIONS,
    SHARE_LEVELS,
    Config,
    HubSpotConfig,
    PartnerConfig,
    SalesforceConfig,
)
from sync.errors import UserError
from sync.logs import MASKER

Status = Literal["ok", "warn", "fail", "skip"]
# A warning is worth reading but does not stop a production run, so it still passes.
PASSING: frozenset[str] = frozenset({"ok", "warn"})
# How many bad rows of a partner file to quote; the import command lists all of them.
MAX_ROW_PROBLEMS = 5
# Warn when the org/portal has used this share of what ecosync may use today; it matches
# the daemon's `api_budget_high` alert, so doctor and the alert agree.
BUDGET_WARN_SHARE = 0.8
# The window read to prove the objects are readable: recent, so it is one small query.
READ_PROBE = timedelta(minutes=1)

SF_GUIDE = "docs/salesforce-admin.md"
HS_GUIDE = "docs/hubspot-admin.md"
PARTNER_GUIDE = "docs/partner-data.md"
OPS_GUIDE = "docs/operations.md"

CRM_OBJECTS: dict[str, dict[Stream, str]] = {
    "salesforce": {Stream.ACCOUNTS: "Account", Stream.OPPORTUNITIES: "Opportunity"},
    "hubspot": {Stream.ACCOUNTS: "companies", Stream.OPPORTUNITIES: "deals"},
}

AUTH_FIX: dict[str, dict[str, str]] = {
    "salesforce": {
        "client_credentials": (
            "check crm.salesforce.client_id and client_secret against the Connected App, that "
            "its client credentials flow is enabled with a 'Run As' integration user, and that "
            f"instance_url is your My Domain URL ({SF_GUIDE}, 'Client credentials')"),
        "jwt": (
            "check crm.salesforce.client_id (the Connected App's consumer key), username (the "
            "integration user, pre-authorized for the app) and private_key_file (the key of the "
            f"certificate uploaded to the app) ({SF_GUIDE}, 'JWT bearer')"),
        "password": (
            "check crm.salesforce.username, password and security_token (reset the token "
            "after a password change) and login_url (https://test.salesforce.com for "
            f"sandboxes) ({SF_GUIDE}, 'Username and password')"),
        "session": (
            "the session id has expired or was revoked; issue a new one, or switch to "
            f"client_credentials or jwt auth for a daemon ({SF_GUIDE}, 'Auth modes')"),
    },
    "hubspot": {
        "private_app": (
            "copy the private app's access token again into the variable that "
            "crm.hubspot.access_token names (it changes when rotated) and confirm the app is "
            f"installed ({HS_GUIDE}, 'Private app')"),
        "oauth": (
            "check crm.hubspot.client_id, client_secret and refresh_token; a refresh token "
            "dies when the app is uninstalled from the portal: re-authorize to get a new one "
            f"({HS_GUIDE}, 'OAuth app')"),
    },
}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist."""

    area: str  # config, warehouse, a CRM source name, "partner <id>", sharing, daemon
    name: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.status in PASSING

    def as_dict(self) -> dict[str, str]:
        return {"area": self.area, "name": self.name, "status": self.status,
                "detail": self.detail, "fix": self.fix}

    def masked(self) -> Check:
        return Check(self.area, self.name, self.status, MASKER.mask(self.detail),
                     MASKER.mask(self.fix))


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "warn": 0, "fail": 0, "skip": 0}
        for c in self.checks:
            out[c.status] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(),
                "checks": [c.as_dict() for c in self.checks]}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]


# ---- config -----------------------------------------------------------------------------------


def check_config(config: Config) -> list[Check]:
    """The config loaded (an invalid one stops the CLI before doctor runs, with the key and
    the fix); here: where it came from, and that a CRM source is enabled at all."""
    where = config.source_path or "built-in defaults (no ecosync.toml found)"
    out = [Check("config", "valid", "ok", f"loaded from {where}")]
    enabled = [c.name for c in (config.crm.salesforce, config.crm.hubspot) if c.enabled]
    if enabled:
        out.append(Check("config", "CRM sources", "ok", "enabled: " + ", ".join(enabled)))
    else:
        out.append(Check("config", "CRM sources", "fail", "no CRM source is enabled",
                         "set enabled = true under [crm.salesforce] and/or [crm.hubspot] "
                         "(see config.example.toml)"))
    return out


# ---- warehouse --------------------------------------------------------------------------------


def _missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file a URL names, if it does not exist yet. Connecting would create an
    empty file, and doctor must change nothing, so this is checked first."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


def check_warehouse(config: Config, engine: Engine | None = None) -> tuple[list[Check],
                                                                           Engine | None]:
    """Reachable and at the migration head; returns the engine when it is usable (an engine
    made here and not returned is disposed here)."""
    from schema.db import make_engine

    url = config.warehouse.url
    missing = _missing_sqlite_file(url)
    if missing is not None:
        return [Check("warehouse", "reachable", "fail", f"no SQLite warehouse at {missing}",
                      "run `ecosync db upgrade` to create it, or fix warehouse.url")], None
    try:
        made = make_engine(url, echo=False) if engine is None else None
    except UserError as exc:
        return [Check("warehouse", "reachable", "fail", exc.message,
                      "fix warehouse.url in the config")], None
    usable = engine or made
    assert usable is not None
    checks, ok = _warehouse_state(usable)
    if not ok and made is not None:
        made.dispose()
    return checks, usable if ok else None


def _warehouse_state(engine: Engine) -> tuple[list[Check], bool]:
    from sync.warehouse import status

    st = status(engine, runs=1)
    if not st.reachable:
        return [Check("warehouse", "reachable", "fail", f"cannot connect to {st.url}: {st.error}",
                      "check warehouse.url, that the database server is running and accepts "
                      f"this host, and the role's password ({OPS_GUIDE}, 'PostgreSQL')")], False
    out = [Check("warehouse", "reachable", "ok", st.url)]
    if st.revision != st.head:
        out.append(Check("warehouse", "migrations", "fail",
                         f"at revision {st.revision or 'none'}, this ecosync needs {st.head}",
                         "run `ecosync db upgrade` (before starting the new version)"))
        return out, False
    out.append(Check("warehouse", "migrations", "ok", f"at head {st.head}"))
    return out, True


# ---- CRM sources ------------------------------------------------------------------------------


def _kind(config: Config, source: str) -> tuple[str, SalesforceConfig | HubSpotConfig]:
    if source == config.crm.salesforce.name:
        return "salesforce", config.crm.salesforce
    return "hubspot", config.crm.hubspot


def _close(pages: Iterator[Any]) -> None:
    close = getattr(pages, "close", None)
    if callable(close):
        close()


def _field_fix(kind: str, source: str, obj: str, api_name: str, logical: str,
               exists: bool) -> str:
    if not exists:
        how = ("create it in Setup → Object Manager with the type in the guide"
               if kind == "salesforce" else "create it in the 'ecosync' property group")
        where = f"{SF_GUIDE}, 'Owned fields'" if kind == "salesforce" else \
            f"{HS_GUIDE}, 'Owned properties'"
        return f"run `ecosync fields ensure --source {source}`, or {how} ({where})"
    if kind == "salesforce":
        return (f"give the integration user Edit access to {obj}.{api_name}: field-level "
                f"security in its permission set ({SF_GUIDE}, 'Permission set')")
    key = "company_properties" if obj == "companies" else "deal_properties"
    return (f"HubSpot reports {obj}.{api_name} as read-only (a calculated or app-locked "
            f"property); delete it and run `ecosync fields ensure --source {source}`, or map "
            f"crm.hubspot.{key}.{logical} to a writable property ({HS_GUIDE}, 'Owned "
            "properties')")


def _budget_check(source: str, kind: str, max_share: float, daily_used: int | None,
                  daily_limit: int | None) -> Check:
    key = f"crm.{kind}.max_api_share"
    if not daily_limit or daily_used is None:
        return Check(source, "API budget", "ok",
                     "the platform reported no daily limit on these calls (OAuth apps on "
                     "HubSpot get none); the burst pacing still applies"
                     if kind == "hubspot" else "the platform reported no daily limit")
    ceiling = math.floor(daily_limit * max_share)
    left = ceiling - daily_used
    detail = (f"{daily_used:,} of {daily_limit:,} daily calls used; ecosync may use up to "
              f"{ceiling:,} ({key} = {max_share:g}), {max(left, 0):,} left today")
    if left <= 0:
        return Check(source, "API budget", "fail", detail,
                     f"wait for the daily allocation to recover, find what else spends it, or "
                     f"raise {key}")
    if daily_used >= BUDGET_WARN_SHARE * ceiling:
        return Check(source, "API budget", "warn", detail,
                     f"close to ecosync's share; a backfill now may stop early ({key})")
    return Check(source, "API budget", "ok", detail)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep whatever a connector prints (the Salesforce one prints its field table when a
    field is read-only) out of doctor's stdout, which must stay one checklist or one JSON
    document; the lines doctor makes already name each field and its fix."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _read_probe(connector: Connector, stream: Stream, moment: datetime) -> None:
    """Read the first page of a one-minute window that ends now: one small query, which
    proves authentication and read access without paging through the object."""
    pages = iter(connector.pull(stream, Watermark(moment - READ_PROBE), moment, deleted=False))
    try:
        next(pages, None)
    finally:
        _close(pages)


def check_connector(connector: Connector, config: Config,
                    now: datetime | None = None) -> list[Check]:
    """Authentication, the objects readable, every owned field present and updateable, and
    the API budget left, for one CRM source. Real reads decide whether authentication works
    (a connector's check() may report a rejected credential as a problem string, which
    cannot be told apart reliably); a failure that stops everything skips the rest."""
    source = connector.name
    kind, crm = _kind(config, source)
    objects = CRM_OBJECTS[kind]
    guide = SF_GUIDE if kind == "salesforce" else HS_GUIDE
    conn_fix = (f"check {'instance_url' if kind == 'salesforce' else 'base_url'}, the network "
                f"path to it (proxy, firewall) and ca_bundle under [crm.{kind}]")
    out: list[Check] = []

    def stop(name: str, detail: str, fix: str, reason: str) -> list[Check]:
        out.append(Check(source, name, "fail", detail, fix))
        return [*out, *(Check(source, n, "skip", f"not checked: {reason}")
                        for n in ("objects readable", "owned fields", "API budget")
                        if n != name)]

    with _quiet():
        # The connector's own readiness problems; anything it raises is kept for the reads
        # below to confirm or explain.
        problems: list[str] = []
        try:
            problems = connector.check()
        except AuthFailed as exc:
            return stop("authentication", _first_line(exc), AUTH_FIX[kind][crm.auth],
                        "authentication failed")
        except (RateLimited, BudgetExhausted) as exc:
            return stop("API budget", _first_line(exc), f"the API allocation is used up; "
                        f"retry later or raise crm.{kind}.max_api_share", "rate limited")
        except Exception as exc:  # whatever it is, the reads below will say more
            problems = [_first_line(exc)]

        # Each object readable, which also proves authentication.
        moment = now or datetime.now(UTC)
        reads: list[Check] = []
        for stream, obj in objects.items():
            name = f"read {obj}"
            try:
                _read_probe(connector, stream, moment)
            except AuthFailed as exc:
                return stop("authentication", _first_line(exc), AUTH_FIX[kind][crm.auth],
                            "authentication failed")
            except (RateLimited, BudgetExhausted) as exc:
                return stop("API budget", _first_line(exc), f"the API allocation is used up; "
                            f"retry later or raise crm.{kind}.max_api_share", "rate limited")
            except MissingFields as exc:
                # Not a read permission problem: the field lines below say what to create.
                reads.append(Check(source, name, "skip", f"not checked: {_first_line(exc)}"))
            except TransientError as exc:
                return stop("connection", _first_line(exc), conn_fix, "no connection")
            except ConnectorError as exc:
                fix = (f"give the integration user Read on {obj} and its fields in the "
                       f"permission set ({SF_GUIDE}, 'Permission set')" if kind == "salesforce"
                       else f"add the crm.objects.{obj}.read scope to the app ({HS_GUIDE}, "
                       "'Scopes')")
                reads.append(Check(source, name, "fail", _first_line(exc), fix))
            except Exception as exc:  # a library or network error: still only a line
                return stop("connection", _first_line(exc), conn_fix, "no connection")
            else:
                reads.append(Check(source, name, "ok", "a recent window read"))
        out.append(Check(source, "authentication", "ok", f"{crm.auth} auth accepted"))
        out.extend(reads)

        # Every owned field exists and the integration user may update it.
        statuses: list[FieldStatus] = []
        try:
            statuses = connector.ensure_fields(check_only=True)
        except ConnectorError as exc:
            out.append(Check(source, "owned fields", "fail", _first_line(exc),
                             f"see {guide}, 'Owned fields'" if kind == "salesforce" else
                             f"see {guide}, 'Owned properties'"))
        except Exception as exc:  # e.g. describe refused: still one line
            out.append(Check(source, "owned fields", "fail", _first_line(exc), conn_fix))
        for st in statuses:
            obj = objects[st.stream]
            name = f"field {obj}.{st.api_name}"
            if st.exists and st.updateable:
                out.append(Check(source, name, "ok", f"{st.logical_name}: exists, updateable"))
                continue
            who = "the integration user" if kind == "salesforce" else "apps (HubSpot)"
            detail = (f"{st.logical_name}: does not exist" if not st.exists else
                      f"{st.logical_name}: exists but is read-only for {who}")
            out.append(Check(source, name, "fail", detail,
                             _field_fix(kind, source, obj, st.api_name, st.logical_name,
                                        st.exists)))

        # The connector's problems that no failing field line already says (e.g. a
        # configured referring-partner or DUNS field that does not exist, or an owned
        # property of the wrong type, which exists and is updateable yet cannot hold it).
        failing_names = {st.api_name for st in statuses if not (st.exists and st.updateable)}
        for problem in problems:
            if not any(api_name in problem for api_name in failing_names):
                out.append(Check(source, "readiness", "fail", problem, f"see {guide}"))

        # The API budget left today, as the platform reported it on the calls above.
        try:
            usage = connector.usage()
        except Exception as exc:  # bookkeeping only; worth a line, not a failure
            out.append(Check(source, "API budget", "warn", f"unknown ({_first_line(exc)})"))
        else:
            out.append(_budget_check(source, kind, crm.max_api_share, usage.daily_used,
                                     usage.daily_limit))
    return out


def check_crm_sources(config: Config,
                      build: Callable[[Config, str], Sequence[Connector]] | None = None,
                      now: datetime | None = None) -> list[Check]:
    """Each enabled CRM source, built on its own so one that cannot be built (a missing
    key file, a library error) does not hide the other."""
    if build is None:
        from sync.wiring import build_connectors

        build = build_connectors
    out: list[Check] = []
    for crm in (config.crm.salesforce, config.crm.hubspot):
        if not crm.enabled:
            continue
        try:
            connectors = build(config, crm.name)
        except UserError as exc:
            out.append(Check(crm.name, "connector", "fail", exc.message,
                             "fix the key named above in the config"))
            continue
        except Exception as exc:  # never a traceback from doctor
            kind, _ = _kind(config, crm.name)
            out.append(Check(crm.name, "connector", "fail",
                             f"cannot set up the connector: {_first_line(exc)}",
                             f"check the [crm.{kind}] section of the config"))
            continue
        for connector in connectors:
            out.extend(check_connector(connector, config, now))
    return out


# ---- partners and sharing ---------------------------------------------------------------------


def partner_path(config: Config, path: str) -> Path:
    """As the daemon resolves it: relative paths are relative to the config file's folder."""
    candidate = Path(path)
    if candidate.is_absolute() or not config.source_path or config.source_path.startswith("<"):
        return candidate
    return Path(config.source_path).parent / candidate


def check_partner(config: Config, partner: PartnerConfig) -> Check:
    from sync.matching.keys import generic_domains
    from sync.partners.staging import check_partner_file

    area = f"partner {partner.id}"
    if partner.source != "csv":
        return Check(area, "source", "ok",
                     f"source '{partner.source}': no file to check")
    if not partner.path:
        return Check(area, "file", "ok",
                     "no watched file; its list comes from `ecosync partners import`")
    path = partner_path(config, partner.path)
    if not path.exists():
        return Check(area, "file", "fail", f"{path} does not exist",
                     "fix the partner's path (relative paths start at the config file's "
                     f"folder) or put the file there ({PARTNER_GUIDE})")
    if not path.is_file():
        return Check(area, "file", "fail", f"{path} is not a file", "point path at the CSV file")
    try:
        result = check_partner_file(path, encoding=partner.encoding,
                                    columns=partner.columns or None,
                                    generic=generic_domains(config.matching.generic_domains),
                                    keep=MAX_ROW_PROBLEMS)
    except UserError as exc:
        return Check(area, "file", "fail", exc.message,
                     f"fix the file or the partner's encoding/columns in the config "
                     f"({PARTNER_GUIDE})")
    except OSError as exc:
        return Check(area, "file", "fail", f"{path}: cannot read ({exc.strerror})",
                     "give the ecosync user read access to the file")
    if result.problems:
        shown = "; ".join(p.describe() for p in result.problems)
        more = result.invalid_rows - len({p.line for p in result.problems})
        tail = f"; and {more} more" if more > 0 else ""
        if partner.skip_invalid:
            return Check(area, "file", "warn",
                         f"{path}: {result.rows:,} valid rows imported, {result.invalid_rows} "
                         f"invalid row(s) skipped (skip_invalid = true): {shown}{tail}",
                         "fix those rows in the partner's file to import them too")
        return Check(area, "file", "fail",
                     f"{path}: {result.invalid_rows} invalid row(s): {shown}{tail}",
                     "fix those rows: the daemon imports a watched file only when every row "
                     f"is valid, or set skip_invalid = true on the partner to import the "
                     f"others (`ecosync partners import {partner.id} FILE` lists them all)")
    return Check(area, "file", "ok", f"{path}: {result.rows:,} valid rows")


def _share_problems(share: Any) -> list[str]:
    if not isinstance(share, dict):
        return [f"share policy is {type(share).__name__}, not a table"]
    out = []
    for population, level in share.items():
        if population not in POPULATIONS:
            out.append(f"'{population}' is not a population ({', '.join(POPULATIONS)})")
        elif level not in SHARE_LEVELS:
            out.append(f"{population} = '{level}' is not a level ({', '.join(SHARE_LEVELS)})")
    return out


def check_sharing(config: Config, engine: Engine | None) -> list[Check]:
    """Sharing policies name known partners, populations and levels: the config's (validated
    at load, re-checked here for one report) and those stored in the warehouse by
    `ecosync partners add` or edited there by hand, and every override names a partner."""
    from schema.models import MatchOverride, Partner

    problems: list[str] = []
    for partner in config.partners:
        problems += [f"config partner {partner.id}: {p}" for p in _share_problems(partner.share)]
    stored = 0
    if engine is not None:
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(Partner.id, Partner.share)).all()
                known = {r.id for r in rows}
                orphans = conn.execute(
                    select(MatchOverride.partner_id).distinct()
                    .where(MatchOverride.partner_id.not_in(known) if known else
                           MatchOverride.partner_id.is_not(None))).scalars().all()
        except SQLAlchemyError as exc:
            return [Check("sharing", "policies", "fail", _first_line(exc),
                          "see the warehouse lines above")]
        stored = len(rows)
        for row in rows:
            problems += [f"warehouse partner {row.id}: {p}" for p in _share_problems(row.share)]
        problems += [f"a match override names partner '{p}', which is not registered"
                     for p in orphans]
    if problems:
        return [Check("sharing", "policies", "fail", "; ".join(problems),
                      "until fixed, ecosync treats an unknown level as hidden; correct the "
                      "partner's share in the config (a partner added from the CLI: in the "
                      f"warehouse's partners table) ({PARTNER_GUIDE}, 'Sharing levels')")]
    checked = f"{len(config.partners)} in config" + (f", {stored} in the warehouse"
                                                      if engine is not None else "")
    return [Check("sharing", "policies", "ok", f"valid ({checked})")]


# ---- daemon -----------------------------------------------------------------------------------


def _ecosync_health_answers(host: str, port: int) -> bool:
    """True if what holds the port is an ecosync daemon (its /healthz answers ok/unhealthy)."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
    probe_host = f"[{probe_host}]" if ":" in probe_host else probe_host
    try:
        with urllib.request.urlopen(f"http://{probe_host}:{port}/healthz",
                                    timeout=1) as resp:
            body = resp.read(200).decode("utf-8", "replace")
    except OSError as exc:
        body = ""
        read = getattr(exc, "read", None)  # an HTTPError (503 unhealthy) still has a body
        if callable(read):
            with contextlib.suppress(Exception):
                body = read(200).decode("utf-8", "replace")
    return bool(body.startswith(("ok:", "unhealthy:")))


def check_health_port(config: Config) -> Check:
    """The daemon can bind its health/metrics port. Bound the way the daemon binds it
    (SO_REUSEADDR, as http.server does), so a socket in TIME_WAIT is not a false alarm."""
    host, port = config.daemon.health_host, config.daemon.health_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = f"{host}:{port}"
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE and _ecosync_health_answers(host, port):
            return Check("daemon", "health port", "warn",
                         f"{where} is served by a running ecosync daemon",
                         "fine if that is this host's daemon; a second one here needs another "
                         "daemon.health_port")
        reason = exc.strerror or str(exc)
        return Check("daemon", "health port", "fail", f"cannot bind {where} ({reason})",
                     "stop the process holding it (`ss -ltnp` shows it) or set "
                     "daemon.health_port / daemon.health_host in the config")
    return Check("daemon", "health port", "ok", f"{where} is free")


def check_lock_file(config: Config) -> Check | None:
    """On SQLite, leader election is a file lock the daemon creates next to its state; a
    directory it cannot write stops `ecosync run` at start. PostgreSQL needs no file."""
    try:
        backend = make_url(config.warehouse.url).get_backend_name()
    except ArgumentError:
        return None  # the warehouse line already says what is wrong with the URL
    if backend != "sqlite":
        return None
    path = Path(config.daemon.lock_file)
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    if path.exists() and not os.access(path, os.W_OK):
        return Check("daemon", "lock file", "fail", f"{path} is not writable",
                     "give the ecosync user write access to it, or set daemon.lock_file "
                     "under a directory it owns (/var/lib/ecosync)")
    if not path.exists() and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        return Check("daemon", "lock file", "fail", f"cannot create {path} (no write access "
                     f"to {folder})", "set daemon.lock_file under a directory the ecosync "
                     "user owns (/var/lib/ecosync)")
    return Check("daemon", "lock file", "ok", f"{path} can be created and locked")


# ---- all of it --------------------------------------------------------------------------------


def run_doctor(config: Config, *, engine: Engine | None = None,
               build: Callable[[Config, str], Sequence[Connector]] | None = None,
               now: datetime | None = None) -> DoctorReport:
    """Every check, in checklist order. An engine passed in is the caller's to dispose; one
    made here is disposed here."""
    report = DoctorReport()
    report.checks += check_config(config)
    warehouse_checks, usable = check_warehouse(config, engine)
    try:
        report.checks += warehouse_checks
        report.checks += check_crm_sources(config, build, now)
        report.checks += [check_partner(config, p) for p in config.partners]
        report.checks += check_sharing(config, usable)
        report.checks.append(check_health_port(config))
        lock = check_lock_file(config)
        if lock is not None:
            report.checks.append(lock)
    finally:
        if usable is not None and usable is not engine:
            usable.dispose()
    report.checks = [c.masked() for c in report.checks]
    return report
