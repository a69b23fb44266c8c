"""Stage `pull`: read each stream's window from each CRM and land it, page by page.

Each page lands with its watermark in one transaction (sync.ingest owns the watermark rules:
where a window starts, how a backfill resumes and completes). When the API budget runs short,
the rest of the window waits for a later tick so that write-back gets the calls left.
"""

from __future__ import annotations

from datetime import datetime

from connectors.base import BudgetExhausted, Connector, ConnectorError, Watermark
from schema.records import Stream
from sync.ingest import backfill_starts, complete_window, land_page, start_cursor
from sync.matching.keys import generic_domains
from sync.stages.context import HEARTBEAT_EVERY_S, TickContext, utcnow

STREAMS = (Stream.ACCOUNTS, Stream.OPPORTUNITIES)

# Reads stop this far below ecosync's share of the daily API allocation, so that the calls
# left go to write-back (closed opportunities and changed overlaps) rather than to reading.
WRITE_RESERVE = 0.1


def pull(ctx: TickContext) -> None:
    for connector in ctx.connectors:
        if ctx.stopping():
            return
        _pull_connector(ctx, connector)


def _pull_connector(ctx: TickContext, connector: Connector) -> None:
    generic = generic_domains(ctx.config.matching.generic_domains)
    opts, now = ctx.options, ctx.started
    if budget_short(connector):
        _defer_reads(ctx, connector, STREAMS[0])
        return
    # Every window of this tick ends at the CRM's own clock, never at this host's. A backfill
    # reads it first (its watermark is the moment the walk began); an incremental window
    # ends at the clock of the CRM's first answer to it (its Date header), which costs no
    # call of its own (`until=None`; the window's pages say where it ended).
    until: datetime | None = None
    if opts.backfill:
        try:
            until = connector.server_time()
        except BudgetExhausted:
            _defer_reads(ctx, connector, STREAMS[0])
            return
        ctx.report.clock_offsets[connector.name] = until - utcnow()
    starts = {}
    if opts.backfill:
        with ctx.transaction() as session:
            starts = backfill_starts(session, connector.name, STREAMS, since=opts.since,
                                     now=now)
    for stream in STREAMS:
        label = f"{connector.name}/{stream.value}"
        if budget_short(connector):
            _defer_reads(ctx, connector, stream)
            return
        if opts.backfill:
            start = starts[stream]
            if start.note:
                ctx.report.notes.append(start.note)
                ctx.log.info("backfill resumed", source=connector.name, stream=stream.value,
                             note=start.note)
            if start.done:
                continue
            since = start.since
        else:
            with ctx.transaction() as session:
                since = start_cursor(session, connector.name, stream, backfill=False,
                                     since=None, now=now)
        pulled = changed = 0
        ctx.progress.start("pull", label, _total(ctx, connector, stream, since, until))
        ended: datetime | None = None
        asked = utcnow()  # the window's first request leaves about now
        try:
            for page in connector.pull(stream, since, until):
                if page.until is not None and until is None and ended is None:
                    ended = page.until
                    ctx.report.clock_offsets[connector.name] = ended - asked
                with ctx.transaction() as session:
                    landed = land_page(session, connector.name, page, now=now,
                                       run_id=ctx.run_id, generic=generic)
                pulled += landed.records
                changed += landed.changed
                counts = ctx.report.counts.of(connector.name, stream)
                counts.pulled += landed.records
                counts.changed += landed.changed
                counts.deleted += landed.deleted
                ctx.progress.advance("pull", label, landed.records)
                ctx.heartbeat(at_most_every_s=HEARTBEAT_EVERY_S)
                if ctx.stopping():
                    return
                if budget_short(connector):
                    _defer_reads(ctx, connector, stream)
                    return
        except BudgetExhausted:
            _defer_reads(ctx, connector, stream)
            return
        end = until if until is not None else ended
        if end is None:
            raise ConnectorError(f"{connector.name}: the pull of {stream.value} did not say "
                                 "where its window ended")
        with ctx.transaction() as session:
            complete_window(session, connector.name, stream, end, now=now, run_id=ctx.run_id)
        ctx.progress.done("pull", label)
        ctx.log.info("pulled", source=connector.name, stream=stream.value, records=pulled,
                     changed=changed, since=since.modified_at.isoformat() if since else None,
                     until=end.isoformat())


def _total(ctx: TickContext, connector: Connector, stream: Stream, since: Watermark | None,
           until: datetime | None) -> int | None:
    """What a backfill from the beginning will read, when progress shows totals (one count
    call per stream); a window's size is not known in advance."""
    if not (ctx.progress.totals and ctx.options.backfill and since is None) or until is None:
        return None
    try:
        return connector.count(stream, created_until=until)
    except ConnectorError:
        return None  # only a total for a progress bar; the pull will say what is wrong


def budget_short(connector: Connector) -> bool:
    usage = connector.usage()
    if usage.daily_cap is None or usage.daily_used is None:
        return False
    return usage.daily_used >= (1 - WRITE_RESERVE) * usage.daily_cap


def _defer_reads(ctx: TickContext, connector: Connector, stream: Stream) -> None:
    """Committed pages stay; the rest of the window is read on a later tick."""
    ctx.report.counts.of(connector.name, stream).reads_deferred += 1
    ctx.report.errors.append(f"{connector.name}: API budget short; reads deferred, writes first")
    ctx.log.warning("API budget short: reads deferred so write-back goes first",
                    source=connector.name, stream=stream.value)
