"""One tick: the named stages of `STAGES`, in order, over one TickContext, then `record`.

    pull → refresh partners → partner sources → match → stamp → plan → push →
    deliver alerts → record

Each stage commits its own units of work before the next begins, so a kill between (or
inside) stages loses nothing: pulled pages are committed with their watermarks, queued
records stay queued until the push that writes them, and a re-run converges to the same
CRM state. A dry run runs the same stages inside one transaction that is rolled back
(sync.stages.context); only the run log keeps it.

Adding a stage is one entry in `STAGES`: a name and a function of the context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Engine

from connectors.base import Connector, ConnectorError
from schema.states import RunStatus
from sync.config import Config
from sync.errors import describe_error
from sync.ingest import finish_backfills
from sync.logs import get_logger
from sync.partners.crm_source import pull_partner_crms
from sync.progress import Progress
from sync.runs import finish_run, start_run
from sync.stages.alerts import deliver
from sync.stages.context import TickContext, TickOptions, TickReport, utcnow
from sync.stages.counts import ApiUse, api_to_json
from sync.stages.match import match
from sync.stages.partners import refresh_partners
from sync.stages.pull import pull
from sync.stages.stamp import stamp
from sync.stages.writeback import plan, push

__all__ = ["STAGES", "Progress", "Stage", "TickOptions", "TickReport", "failed_run_id",
           "run_tick"]


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[TickContext], None]


STAGES: tuple[Stage, ...] = (
    Stage("pull", pull),
    Stage("refresh partners", refresh_partners),
    # Partners whose list is their own CRM, read-only (sync.partners.crm_source).
    Stage("partner sources", pull_partner_crms),
    Stage("match", match),
    Stage("stamp", stamp),
    Stage("plan", plan),
    Stage("push", push),
    Stage("deliver alerts", deliver),
)

_LOGGED_RUN = "ecosync_run_id"
_FAILED_REPORT = "ecosync_tick_report"
RETRIED = "run log write retried after a dropped warehouse connection"


def failed_report(exc: BaseException) -> TickReport | None:
    """What the failed tick counted before it failed (for the daemon's counters)."""
    value = getattr(exc, _FAILED_REPORT, None)
    return value if isinstance(value, TickReport) else None


def failed_run_id(exc: BaseException) -> int | None:
    """The run whose failure `run_tick` already logged (each failure is logged once)."""
    value = getattr(exc, _LOGGED_RUN, None)
    return value if isinstance(value, int) else None


def run_tick(
    engine: Engine, config: Config, connectors: Sequence[Connector], *,
    options: TickOptions | None = None, now: datetime | None = None,
    progress: Progress | None = None,
) -> TickReport:
    opts = options or TickOptions()
    started = now or utcnow()
    run_id, dropped = start_run(engine, opts.kind, started, dry_run=opts.dry_run)
    ctx = TickContext(
        engine=engine, config=config, connectors=connectors, options=opts, started=started,
        report=TickReport(run_id), log=get_logger("ecosync.tick", run_id=run_id, kind=opts.kind),
        calls_before={c.name: c.usage().calls for c in connectors})
    if progress is not None:
        ctx.progress = progress
    if dropped is not None:
        ctx.log.warning(RETRIED, write="start", error=describe_error(dropped))
    # Every line logged during the tick, connectors' retries included, names the run.
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        try:
            with ctx.warehouse():
                for stage in STAGES:
                    if ctx.stopping():
                        break
                    ctx.progress.start(stage.name)
                    stage.run(ctx)
                    ctx.progress.done(stage.name)
                    ctx.heartbeat()
                if not ctx.stopping():
                    with ctx.transaction() as session:
                        finish_backfills(session, [c.name for c in connectors], now=utcnow())
            if ctx.stopping():
                ctx.report.status = RunStatus.INTERRUPTED
            else:
                ctx.report.status = (RunStatus.PARTIAL if ctx.report.errors
                                     else RunStatus.SUCCEEDED)
        except BaseException as exc:
            _failed(ctx, exc)
            setattr(exc, _FAILED_REPORT, ctx.report)
            raise
        finally:
            record(ctx)
    return ctx.report


def _failed(ctx: TickContext, exc: BaseException) -> None:
    ctx.report.status = RunStatus.FAILED
    ctx.report.errors.append(describe_error(exc))
    if isinstance(exc, ConnectorError):
        ctx.log.error("tick stopped", error=describe_error(exc),
                      error_type=exc.__class__.__name__)
    elif isinstance(exc, Exception):
        ctx.log.exception("tick failed", error=describe_error(exc),
                          error_type=exc.__class__.__name__)
    else:
        return  # KeyboardInterrupt, SystemExit: recorded, not logged as a failure
    setattr(exc, _LOGGED_RUN, ctx.run_id)


def record(ctx: TickContext) -> None:
    """Stage `record`: the run's row in the run log and its one summary line."""
    report = ctx.report
    # This run's calls only (connectors live across ticks in the daemon), and the org's or
    # portal's whole use today as the API last reported it.
    report.api = {c.name: ApiUse.of(c.usage(), c.usage().calls - ctx.calls_before.get(c.name, 0))
                  for c in ctx.connectors}
    dropped = finish_run(ctx.engine, ctx.run_id, utcnow(), status=report.status,
                         counts=report.counts.to_json(), api_calls=api_to_json(report.api),
                         error="; ".join(report.errors) or None)
    if dropped is not None:
        ctx.log.warning(RETRIED, write="finish", error=describe_error(dropped))
    ctx.log.info("tick summary", status=report.status.value, dry_run=ctx.dry_run,
                 **dict(report.counts.flat()),
                 api_calls={name: use.calls for name, use in report.api.items()})
