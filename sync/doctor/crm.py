"""Doctor's checks of each enabled CRM source: authentication, the objects readable, every
owned field present and updateable, and the API budget left. One generic run over the
connector contract; what differs between CRMs (object names, auth modes, the fixes and the
guides they cite) comes from each CRM's `CrmDoctor` in `CRMS`."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import (
    ApiUsage,
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
from sync.config import Config
from sync.doctor.checks import Check, first_line
from sync.doctor.hubspot import HUBSPOT
from sync.doctor.profile import CrmDoctor
from sync.doctor.salesforce import SALESFORCE
from sync.errors import UserError

# Every CRM ecosync connects to: adding one is its CrmDoctor here.
CRMS: tuple[CrmDoctor, ...] = (SALESFORCE, HUBSPOT)

# Warn when the org/portal has used this share of what ecosync may use today; it matches
# the daemon's `api_budget_high` alert, so doctor and the alert agree.
BUDGET_WARN_SHARE = 0.8
# The window read to prove the objects are readable: recent, so it is one small query.
READ_PROBE = timedelta(minutes=1)


def crm_of(config: Config, source: str) -> CrmDoctor:
    """The CRM whose config section names this source (an enabled one first: a disabled
    section keeps its default name)."""
    named = [crm for crm in CRMS if crm.settings(config).name == source]
    for crm in sorted(named, key=lambda c: not c.settings(config).enabled):
        return crm
    raise UserError(f"no CRM source is named {source!r} in the config")


def budget_check(source: str, crm: CrmDoctor, usage: ApiUsage) -> Check:
    """The day's budget as the connector reported it, with the cap it keeps to (the same
    figures the run log, status, /metrics and the web's operations page show)."""
    key = crm.key("max_api_share")
    daily_used, daily_limit = usage.daily_used, usage.daily_limit
    if not daily_limit or daily_used is None:
        return Check(source, "API budget", "ok", crm.no_daily_limit)
    ceiling = daily_limit if usage.daily_cap is None else usage.daily_cap
    left = ceiling - daily_used
    detail = (f"{daily_used:,} of {daily_limit:,} daily calls used; ecosync may use up to "
              f"{ceiling:,} ({ceiling / daily_limit:.0%}, {key}), {max(left, 0):,} left today")
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


def _close(pages: Iterator[Any]) -> None:
    close = getattr(pages, "close", None)
    if callable(close):
        close()


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
    crm = crm_of(config, source)
    settings = crm.settings(config)
    out: list[Check] = []

    def stop(name: str, detail: str, fix: str, reason: str) -> list[Check]:
        out.append(Check(source, name, "fail", detail, fix))
        return [*out, *(Check(source, n, "skip", f"not checked: {reason}")
                        for n in ("objects readable", "owned fields", "API budget")
                        if n != name)]

    def used_up(exc: Exception) -> list[Check]:
        return stop("API budget", first_line(exc), f"the API allocation is used up; retry "
                    f"later or raise {crm.key('max_api_share')}", "rate limited")

    with _quiet():
        # The connector's own readiness problems; anything it raises is kept for the reads
        # below to confirm or explain.
        problems: list[str] = []
        try:
            problems = connector.check()
        except AuthFailed as exc:
            return stop("authentication", first_line(exc), crm.auth_fix[settings.auth],
                        "authentication failed")
        except (RateLimited, BudgetExhausted) as exc:
            return used_up(exc)
        except Exception as exc:  # whatever it is, the reads below will say more
            problems = [first_line(exc)]

        # Each object readable, which also proves authentication.
        moment = now or datetime.now(UTC)
        reads: list[Check] = []
        for stream, obj in crm.objects.items():
            name = f"read {obj}"
            try:
                _read_probe(connector, stream, moment)
            except AuthFailed as exc:
                return stop("authentication", first_line(exc), crm.auth_fix[settings.auth],
                            "authentication failed")
            except (RateLimited, BudgetExhausted) as exc:
                return used_up(exc)
            except MissingFields as exc:
                # Not a read permission problem: the field lines below say what to create.
                reads.append(Check(source, name, "skip", f"not checked: {first_line(exc)}"))
            except TransientError as exc:
                return stop("connection", first_line(exc), crm.connection_fix,
                            "no connection")
            except ConnectorError as exc:
                reads.append(Check(source, name, "fail", first_line(exc), crm.read_fix(obj)))
            except Exception as exc:  # a library or network error: still only a line
                return stop("connection", first_line(exc), crm.connection_fix,
                            "no connection")
            else:
                reads.append(Check(source, name, "ok", "a recent window read"))
        out.append(Check(source, "authentication", "ok", f"{settings.auth} auth accepted"))
        out.extend(reads)
        statuses = _owned_fields(connector, crm, out)
        # The connector's problems that no failing field line already says (e.g. a
        # configured referring-partner or DUNS field that does not exist, or an owned
        # property of the wrong type, which exists and is updateable yet cannot hold it).
        failing_names = {st.api_name for st in statuses if not (st.exists and st.updateable)}
        for problem in problems:
            if not any(api_name in problem for api_name in failing_names):
                out.append(Check(source, "readiness", "fail", problem, f"see {crm.guide}"))

        # The API budget left today, as the platform reported it on the calls above.
        try:
            usage = connector.usage()
        except Exception as exc:  # bookkeeping only; worth a line, not a failure
            out.append(Check(source, "API budget", "warn", f"unknown ({first_line(exc)})"))
        else:
            out.append(budget_check(source, crm, usage))
    return out


def _owned_fields(connector: Connector, crm: CrmDoctor, out: list[Check]) -> list[FieldStatus]:
    """Every owned field exists and the integration user may update it: a line each."""
    source = connector.name
    statuses: list[FieldStatus] = []
    try:
        statuses = connector.ensure_fields(check_only=True)
    except ConnectorError as exc:
        out.append(Check(source, "owned fields", "fail", first_line(exc), crm.fields_fix))
    except Exception as exc:  # e.g. describe refused: still one line
        out.append(Check(source, "owned fields", "fail", first_line(exc), crm.connection_fix))
    for st in statuses:
        obj = crm.objects[st.stream]
        name = f"field {obj}.{st.api_name}"
        if st.exists and st.updateable:
            out.append(Check(source, name, "ok", f"{st.logical_name}: exists, updateable"))
            continue
        detail = (f"{st.logical_name}: does not exist" if not st.exists else
                  f"{st.logical_name}: exists but is read-only for {crm.read_only_for}")
        out.append(Check(source, name, "fail", detail,
                         crm.field_fix(source, obj, st.api_name, st.logical_name, st.exists)))
    return statuses


def check_crm_sources(config: Config,
                      build: Callable[[Config, str], Sequence[Connector]] | None = None,
                      now: datetime | None = None) -> list[Check]:
    """Each enabled CRM source, built on its own so one that cannot be built (a missing
    key file, a library error) does not hide the other."""
    if build is None:
        from sync.wiring import build_connectors

        build = build_connectors
    out: list[Check] = []
    for crm in CRMS:
        settings = crm.settings(config)
        if not settings.enabled:
            continue
        try:
            connectors = build(config, settings.name)
        except UserError as exc:
            out.append(Check(settings.name, "connector", "fail", exc.message,
                             "fix the key named above in the config"))
            continue
        except Exception as exc:  # never a traceback from doctor
            out.append(Check(settings.name, "connector", "fail",
                             f"cannot set up the connector: {first_line(exc)}",
                             f"check the [crm.{crm.section}] section of the config"))
            continue
        for connector in connectors:
            out.extend(check_connector(connector, config, now))
    return out
