"""One tick: pull → land → match → stamp → plan → push → record.

Each stage commits before the next, so a kill between stages loses nothing: pulled pages
are committed with their watermarks, dirty flags survive until the push that clears them,
and a re-run converges to the same CRM state.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, and_, exists, select, update
from sqlalchemy.orm import Session

from connectors.base import BudgetExhausted, Connector, ConnectorError, Watermark
from schema.models import Account, Opportunity, Overlap, Partner
from schema.models import Watermark as WatermarkRow
from schema.records import Stream
from sync.attribution.credited import crediting, replanned_on_overlap_change
from sync.config import Config
from sync.errors import UserError
from sync.ingest import land_page, read_watermark
from sync.logs import get_logger
from sync.matching.keys import generic_domains
from sync.plan import PlannedChunk, plan_accounts, plan_opportunities
from sync.runs import finish_run, heartbeat, start_run
from sync.writeback import RecordChange, push

Progress = Callable[[str, str, int], None]  # (stage, source/stream label, amount)
STREAMS = (Stream.ACCOUNTS, Stream.OPPORTUNITIES)
PUSH_BATCH = 10_000


@dataclass
class TickOptions:
    dry_run: bool = False
    backfill: bool = False
    since: datetime | None = None  # backfill: start here instead of the beginning
    kind: str = "tick"
    # Set by a signal: finish the current page or batch, commit it, and stop.
    stop: threading.Event | None = None

    def stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()


@dataclass
class TickReport:
    run_id: int
    status: str = "running"
    counts: Counter[str] = field(default_factory=Counter)
    api_calls: dict[str, int] = field(default_factory=dict)
    planned: list[RecordChange] = field(default_factory=list)  # dry run: what would be written
    errors: list[str] = field(default_factory=list)


def utcnow() -> datetime:
    return datetime.now(UTC)


_LOGGED_RUN = "ecosync_run_id"


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
    run_id = start_run(engine, opts.kind, started, dry_run=opts.dry_run)
    calls_before = {c.name: c.usage().calls for c in connectors}
    report = TickReport(run_id)
    log = get_logger("ecosync.tick", run_id=run_id, kind=opts.kind)
    bar: Progress = progress or (lambda _stage, _label, _n: None)
    # Every line logged during the tick, connectors' retries included, names the run.
    with structlog.contextvars.bound_contextvars(run_id=run_id):
        _run_stages(engine, config, connectors, opts, started, report, bar, log,
                    calls_before)
    return report


def _run_stages(
    engine: Engine, config: Config, connectors: Sequence[Connector], opts: TickOptions,
    started: datetime, report: TickReport, bar: Progress, log: Any,
    calls_before: dict[str, int],
) -> None:
    run_id = report.run_id
    try:
        for connector in connectors:
            if not opts.stopping():
                _pull(engine, config, connector, opts, started, report, bar, log)
        heartbeat(engine, run_id, utcnow(), report.counts)
        if not opts.stopping():
            _sync_partners_and_match(engine, config, started, report, log)
            heartbeat(engine, run_id, utcnow(), report.counts)
        if not opts.stopping() and not opts.dry_run:
            _stamp(engine, config, connectors, opts, started, report, log)
        for connector in connectors:
            if not opts.stopping():
                _plan_and_push(engine, connector, opts, started, report, bar, log)
        if opts.stopping():
            report.status = "interrupted"
        else:
            report.status = "succeeded" if not report.errors else "partial"
    except ConnectorError as exc:
        report.status = "failed"
        report.errors.append(f"{exc.__class__.__name__}: {exc}")
        log.error("tick stopped", error=str(exc), error_type=exc.__class__.__name__)
        setattr(exc, _LOGGED_RUN, run_id)
        raise
    except Exception as exc:
        report.status = "failed"
        report.errors.append(f"{exc.__class__.__name__}: {exc}")
        log.exception("tick failed", error=str(exc), error_type=exc.__class__.__name__)
        setattr(exc, _LOGGED_RUN, run_id)
        raise
    except BaseException as exc:
        report.status = "failed"
        report.errors.append(f"{exc.__class__.__name__}: {exc}")
        raise
    finally:
        # This run's calls only: connectors live across ticks in the daemon.
        report.api_calls = {c.name: c.usage().calls - calls_before.get(c.name, 0)
                            for c in connectors}
        for c in connectors:
            usage = c.usage()
            if usage.daily_limit:
                # The org/portal's whole use today, as the API last reported it.
                report.api_calls[f"{c.name}.daily_used"] = usage.daily_used or 0
                report.api_calls[f"{c.name}.daily_limit"] = usage.daily_limit
        finish_run(engine, run_id, utcnow(), status=report.status, counts=report.counts,
                   api_calls=report.api_calls, error="; ".join(report.errors) or None)
        log.info("tick summary", status=report.status, **dict(report.counts),
                 api_calls=report.api_calls)


def _pull(
    engine: Engine, config: Config, connector: Connector, opts: TickOptions, until: datetime,
    report: TickReport, bar: Progress, log: Any,
) -> None:
    generic = generic_domains(config.matching.generic_domains)
    for stream in STREAMS:
        label = f"{connector.name}/{stream.value}"
        if budget_short(config, connector):
            _defer_reads(report, connector, stream, log)
            return
        since = _start_cursor(engine, connector.name, stream, opts)
        pulled = 0
        try:
            for page in connector.pull(stream, since, until):
                with Session(engine) as session, session.begin():
                    landed = land_page(session, connector.name, page, now=until,
                                       run_id=report.run_id, generic=generic)
                pulled += landed.records
                report.counts[f"pulled.{label}"] += landed.records
                report.counts[f"deleted.{label}"] += landed.deleted
                bar("pull", label, landed.records)
                if opts.stopping():
                    report.status = "interrupted"
                    return
                if budget_short(config, connector):
                    _defer_reads(report, connector, stream, log)
                    return
        except BudgetExhausted:
            _defer_reads(report, connector, stream, log)
            return
        if opts.backfill:
            _finish_backfill(engine, connector.name, stream, until)
        log.info("pulled", source=connector.name, stream=stream.value, records=pulled,
                 since=since.modified_at.isoformat() if since else None)


# Reads stop this far below ecosync's share of the daily API allocation, so that the calls
# left go to write-back (closed opportunities and changed overlaps) rather than to reading.
WRITE_RESERVE = 0.1


def budget_short(config: Config, connector: Connector) -> bool:
    usage = connector.usage()
    if not usage.daily_limit or usage.daily_used is None:
        return False
    share = {config.crm.salesforce.name: config.crm.salesforce.max_api_share,
             config.crm.hubspot.name: config.crm.hubspot.max_api_share}.get(connector.name, 1.0)
    return usage.daily_used >= share * (1 - WRITE_RESERVE) * usage.daily_limit


def _defer_reads(report: TickReport, connector: Connector, stream: Stream, log: Any) -> None:
    """Committed pages stay; the rest of the window is read on a later tick."""
    report.counts[f"reads_deferred.{connector.name}/{stream.value}"] += 1
    report.errors.append(f"{connector.name}: API budget short; reads deferred, writes first")
    log.warning("API budget short: reads deferred so write-back goes first",
                source=connector.name, stream=stream.value)


def _start_cursor(engine: Engine, source: str, stream: Stream,
                  opts: TickOptions) -> Watermark | None:
    """Incremental: the watermark. Backfill: resume an unfinished one, else start over."""
    with Session(engine) as session, session.begin():
        mark = read_watermark(session, source, stream)
        if not opts.backfill:
            return mark
        row = session.get(WatermarkRow, (source, stream.value))
        if row is not None and row.backfill_cursor == "in_progress" and mark is not None:
            return mark  # a killed backfill continues from its last committed page
        if row is None:
            row = WatermarkRow(source=source, stream=stream.value, updated_at=utcnow())
            session.add(row)
        row.backfill_cursor, row.backfill_completed_at = "in_progress", None
        row.modified_at, row.last_id = None, None
    return Watermark(opts.since, "") if opts.since else None


def _finish_backfill(engine: Engine, source: str, stream: Stream, now: datetime) -> None:
    with Session(engine) as session, session.begin():
        row = session.get(WatermarkRow, (source, stream.value))
        if row is not None:
            row.backfill_cursor, row.backfill_completed_at = None, now
            if row.modified_at is None or row.modified_at > now:
                row.modified_at, row.last_id = now, ""


def _sync_partners_and_match(
    engine: Engine, config: Config, now: datetime, report: TickReport, log: Any
) -> None:
    from sync.matching.engine import rematch
    from sync.partners.registry import sync_partners_from_config

    with Session(engine) as session, session.begin():
        before = {p.id: p.share for p in session.scalars(select(Partner))}
        sync_partners_from_config(session, config, now=now)
        session.flush()
        after = {p.id: p.share for p in session.scalars(select(Partner))}
        changed = [pid for pid, share in after.items() if pid in before and before[pid] != share]
        if changed:
            _mark_partner_accounts_dirty(session, changed)
    _import_watched_partner_files(engine, config, now, report, log)
    with Session(engine) as session, session.begin():
        # rematch raises fields_dirty on accounts whose overlaps changed and on their open
        # opportunities, so the plan stage re-renders exactly those.
        stats = rematch(session, config.matching, now=now)
    for key, value in vars(stats).items():
        if isinstance(value, int) and not isinstance(value, bool):
            report.counts[f"match.{key}"] += value
    log.info("matched", **{k: v for k, v in vars(stats).items()
                           if isinstance(v, int | float) and not isinstance(v, bool)})


def partner_file_path(config: Config, path: str) -> Path:
    """Relative partner paths are relative to the config file, not the working directory."""
    candidate = Path(path)
    if candidate.is_absolute() or not config.source_path or config.source_path.startswith("<"):
        return candidate
    return Path(config.source_path).parent / candidate


def _import_watched_partner_files(
    engine: Engine, config: Config, now: datetime, report: TickReport, log: Any
) -> None:
    from sync.matching.keys import generic_domains
    from sync.partners.csv_import import import_partner_csv

    generic = generic_domains(config.matching.generic_domains)
    for partner in config.partners:
        if partner.source != "csv" or not partner.path:
            continue
        path = partner_file_path(config, partner.path)
        try:
            with Session(engine) as session, session.begin():
                result = import_partner_csv(
                    session, partner.id, path, columns=partner.columns or None,
                    encoding=partner.encoding, generic=generic, now=now)
        except UserError as exc:
            # All-or-nothing import: the previous snapshot stays; the daemon goes on.
            report.errors.append(f"partner {partner.id}: {exc.message}")
            log.error("partner file rejected", partner=partner.id, error=exc.message)
            continue
        if not result.file_unchanged:
            report.counts["partner_files_imported"] += 1
            log.info("partner file imported", partner=partner.id, summary=result.summary())


def exchange_rates(config: Config, connectors: Sequence[Connector]) -> Any:
    """Dated rates the CRMs keep first, the config's static rates last (DESIGN.md 6)."""
    from sync.attribution.currency import ChainedRates, DatedRates, StaticRates

    dated = DatedRates()
    for connector in connectors:
        reader = getattr(connector, "exchange_rates", None)
        if reader is None:
            continue
        for rate in reader():
            dated.add(rate.currency, rate.effective_from, rate.corporate_per_unit)
    return ChainedRates((dated, StaticRates.from_config(config.attribution)))


def _stamp(engine: Engine, config: Config, connectors: Sequence[Connector], opts: TickOptions,
           now: datetime, report: TickReport, log: Any) -> None:
    from sync.attribution.stamp import stamp_closed

    rates = exchange_rates(config, connectors)
    # Idempotent per close (unique close key), so a crash here and a re-run stamp once.
    with Session(engine) as session, session.begin():
        stats = stamp_closed(session, config.attribution, now=now, run_id=report.run_id,
                             late=opts.backfill, rates=rates)
    report.counts["stamped"] += stats.stamped
    report.counts["stamps_superseded"] += stats.superseded
    report.counts["reopened"] += stats.reopened
    if stats.stamped or stats.reopened:
        log.info("stamped", stamped=stats.stamped, superseded=stats.superseded,
                 reopened=stats.reopened, late=stats.late)


def _mark_partner_accounts_dirty(session: Session, partner_ids: Sequence[str]) -> None:
    """A partner's sharing policy changed: every account it overlaps must be re-rendered."""
    touched = select(Overlap.account_id).where(Overlap.partner_id.in_(partner_ids))
    session.execute(update(Account).where(Account.id.in_(touched)).values(fields_dirty=True))
    _mark_opportunities_of(session, Account.id.in_(touched))
    # Stamped opportunities show their credited partners under the current policy.
    session.execute(update(Opportunity).where(Opportunity.id.in_(crediting(partner_ids)))
                    .values(fields_dirty=True))


def _mark_opportunities_of(session: Session, account_condition: Any) -> None:
    # Closed opportunities keep their stamp; open ones show live influence (and a closed
    # one's referral source may follow the account's current overlap).
    session.execute(
        update(Opportunity)
        .where(replanned_on_overlap_change(), exists(
            select(Account.id).where(and_(
                Account.source == Opportunity.source,
                Account.external_id == Opportunity.account_external_id,
                account_condition))))
        .values(fields_dirty=True)
    )


def _plan_and_push(
    engine: Engine, connector: Connector, opts: TickOptions, now: datetime,
    report: TickReport, bar: Progress, log: Any,
) -> None:
    planners = {Stream.ACCOUNTS: plan_accounts, Stream.OPPORTUNITIES: plan_opportunities}
    # Opportunities first: a just-closed deal's stamp is what reps and reports wait for, and
    # it must not lose the API budget to account fields.
    for stream in (Stream.OPPORTUNITIES, Stream.ACCOUNTS):
        label = f"{connector.name}/{stream.value}"
        pending: list[PlannedChunk] = []
        with Session(engine) as session:
            for chunk in planners[stream](session, connector, now):
                session.rollback()  # end the read snapshot before writing
                report.counts[f"planned.{label}"] += len(chunk.changes)
                if opts.dry_run:
                    report.planned.extend(chunk.changes)
                    continue
                pending.append(chunk)
                # Batch up to the bulk-write size so large write-backs can use bulk APIs.
                if sum(len(c.changes) for c in pending) >= PUSH_BATCH or opts.stopping():
                    _push_chunks(engine, connector, pending, now, report, bar, label)
                    pending = []
                if opts.stopping():
                    break
        if pending:
            _push_chunks(engine, connector, pending, now, report, bar, label)
        log.info("written", source=connector.name, stream=stream.value,
                 records=report.counts[f"written.{label}"],
                 failed=report.counts[f"failed.{label}"])


def _push_chunks(
    engine: Engine, connector: Connector, chunks: Sequence[PlannedChunk], now: datetime,
    report: TickReport, bar: Progress, label: str,
) -> None:
    changes = [c for chunk in chunks for c in chunk.changes]
    stats = push(engine, connector, changes, now=now, run_id=report.run_id)
    report.counts[f"written.{label}"] += stats.records_written
    report.counts[f"fields_written.{label}"] += stats.fields_written
    report.counts[f"failed.{label}"] += stats.records_failed
    report.counts[f"manual_edits.{label}"] += stats.manual_edits
    bar("write", label, stats.records_written)
    stream = chunks[0].stream
    model: type[Account] | type[Opportunity] = (
        Account if stream is Stream.ACCOUNTS else Opportunity)
    ids = [i for chunk in chunks for i in chunk.record_ids]
    report.counts[f"deferred.{label}"] += len(stats.deferred)
    with Session(engine) as session, session.begin():
        for start in range(0, len(ids), 900):
            stmt = update(model).where(model.id.in_(ids[start:start + 900]))
            if stats.deferred:
                # Deferred records stay dirty: the next tick plans and writes them again.
                stmt = stmt.where(model.external_id.not_in(list(stats.deferred)))
            session.execute(stmt.values(fields_dirty=False))
