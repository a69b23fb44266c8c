"""Operations: recent runs with their outcome and reason, dead letters, API budget per CRM.

Run errors and dead-letter messages are our own system's text; a partner that is never
named (counts only or hidden) is still redacted from them (`Policies.redact`), as from logs.
"""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from schema.models import SyncRun, WritebackError
from schema.states import DeadLetterStatus
from sync.config import Config
from sync.sharing import Policies
from sync.stages.counts import ApiUse, TickCounts, api_from_json
from sync.web.queries.common import Col, Paging, Table, View


def runs(session: Session, pol: Policies, paging: Paging) -> Table:
    found = session.execute(
        select(SyncRun.id, SyncRun.kind, SyncRun.status, SyncRun.started_at, SyncRun.ended_at,
               SyncRun.dry_run, SyncRun.counts, SyncRun.api_calls, SyncRun.error)
        .order_by(SyncRun.id.desc()).offset(paging.offset).limit(paging.size + 1)).all()
    page, nxt = paging.cut(list(found))
    rows = []
    for rid, kind, status, started, ended, dry, counts, calls, error in page:
        totals = TickCounts.from_json(counts).totals()
        rows.append({
            "run": rid, "kind": kind + (" (dry run)" if dry else ""), "outcome": status,
            "started_at": started, "ended_at": ended,
            "seconds": round((ended - started).total_seconds(), 1) if ended else None,
            "pulled": totals.pulled, "written": totals.written, "failed": totals.failed,
            "api_calls": sum(use.calls for use in api_from_json(calls).values()),
            "reason": pol.redact(error) if error else None})
    return Table("runs", "Recent runs", (
        Col("run", "Run", numeric=True), Col("kind", "Kind"), Col("outcome", "Outcome"),
        Col("started_at", "Started"), Col("seconds", "Seconds", numeric=True),
        Col("pulled", "Pulled", numeric=True), Col("written", "Written", numeric=True),
        Col("failed", "Failed", numeric=True), Col("api_calls", "API calls", numeric=True),
        Col("reason", "Reason")), rows, page=paging.page, next_page=nxt)


def dead_letters(session: Session, pol: Policies, paging: Paging) -> Table:
    pending_first = case((WritebackError.status == DeadLetterStatus.PENDING, 0), else_=1)
    found = session.execute(
        select(WritebackError.source, WritebackError.stream, WritebackError.external_id,
               WritebackError.status, WritebackError.error_code, WritebackError.message,
               WritebackError.attempts, WritebackError.last_failed_at,
               WritebackError.next_retry_at)
        .order_by(pending_first, WritebackError.last_failed_at.desc(), WritebackError.id)
        .offset(paging.offset).limit(paging.size + 1)).all()
    page, nxt = paging.cut(list(found))
    rows = [{"source": r[0], "object": r[1], "record": r[2], "status": r[3], "error": r[4],
             "message": pol.redact(r[5]) if r[5] else None, "attempts": r[6],
             "last_failed_at": r[7], "next_retry_at": r[8]} for r in page]
    return Table("dead_letters", "Dead letters (writes that failed on their own)", (
        Col("source", "CRM"), Col("object", "Object"), Col("record", "Record"),
        Col("status", "Status"), Col("error", "Error"), Col("message", "Message"),
        Col("attempts", "Attempts", numeric=True), Col("last_failed_at", "Last failed"),
        Col("next_retry_at", "Next retry")), rows, page=paging.page, next_page=nxt)


def budget(session: Session, config: Config) -> Table:
    """API use against each CRM's daily limit and ecosync's cap, as the most recent run that
    read it logged them (the connector's own figures: the same as status and /metrics)."""
    # Our own CRMs only: a partner's CRM source is named by the partner's id.
    ours = {config.crm.salesforce.name, config.crm.hubspot.name}
    found: dict[str, tuple[int, ApiUse]] = {}
    recent = session.execute(select(SyncRun.id, SyncRun.api_calls)
                             .order_by(SyncRun.id.desc()).limit(50))
    for rid, calls in recent:
        for name, use in api_from_json(calls).items():
            if name in ours and name not in found and use.daily_limit:
                found[name] = (rid, use)
        if set(found) == ours:
            break
    rows = []
    for name, (rid, use) in sorted(found.items()):
        used, limit = int(use.daily_used or 0), int(use.daily_limit or 0)
        cap = use.daily_cap
        rows.append({"crm": name, "used_today": used, "daily_limit": limit,
                     "used_pct": round(100 * used / limit, 1) if limit else None,
                     "ecosync_cap": cap,
                     "ecosync_stops_at_pct": (round(100 * cap / limit, 1)
                                              if cap is not None and limit else None),
                     "as_of_run": rid})
    return Table("budget", "API budget per CRM", (
        Col("crm", "CRM"), Col("used_today", "Calls used today", numeric=True),
        Col("daily_limit", "Daily limit", numeric=True), Col("used_pct", "Used %", numeric=True),
        Col("ecosync_cap", "ecosync stops at (calls)", numeric=True),
        Col("ecosync_stops_at_pct", "ecosync stops at %", numeric=True),
        Col("as_of_run", "As of run", numeric=True)), rows,
        note="" if rows else "No run has read the CRMs' API limits yet.")


def operations(session: Session, pol: Policies, config: Config, paging: Paging) -> View:
    return View("Operations", tables=[runs(session, pol, paging), budget(session, config),
                                      dead_letters(session, pol, paging)])
