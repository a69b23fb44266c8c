"""`ecosync sync|backfill|fields|deadletter|history`: thin commands over the sync engine."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.text import Text
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.base import ConnectorError
from schema.models import ChangeLog, WritebackError
from schema.states import DeadLetterStatus
from sync import terminal
from sync.commands.options import progress_option
from sync.config import Config
from sync.context import AppContext, pass_app
from sync.errors import UserError
from sync.leader import Holder, writing
from sync.progress_bars import shown
from sync.runs import abandon_dead_runs
from sync.summary import api_calls, field_api_name, record_names, tick_summary
from sync.warehouse import require_head
from sync.wiring import build_connectors

if TYPE_CHECKING:
    from sync.tick import TickOptions, TickReport


def print_planned(report: TickReport, console: Console, config: Config) -> None:
    """One line per field, so the output can be read, grepped and diffed: the record (source,
    object, id and name) and the field under its CRM name."""
    console.print(f"dry run: {len(report.planned)} records would change, nothing written")
    for change in report.planned:
        name = f" {change.name!r}" if change.name else ""
        for ch in change.changes:
            old = "—" if ch.crm is None else repr(ch.crm)
            new = "—" if ch.new is None else repr(ch.new)
            api = field_api_name(config, change.source, change.stream, ch.field)
            console.print(terminal.plain(
                f"{change.source} {change.stream.value} {change.external_id}{name} "
                f"{api}: {old} → {new}", cell=True), markup=False, highlight=False,
                soft_wrap=True)


def print_report(report: TickReport, console: Console, *, dry_run: bool = False) -> None:
    """The outcome in words; the counters are in `--format json`."""
    console.print(terminal.line(f"run {report.run_id} [bold]{report.status.value}[/bold]: ",
                                terminal.value(tick_summary(report, dry_run=dry_run)),
                                f"; {api_calls(report)}"))
    for note in report.notes:
        console.print(terminal.line("note: ", terminal.value(note)))
    for err in report.errors:
        console.print(terminal.line("[yellow]warning:[/yellow] ", terminal.value(err)))


def report_json(report: TickReport) -> str:
    """The whole report for automation: status, every counter, API calls, warnings."""
    from sync.stages.counts import api_to_json

    return json.dumps({"run_id": report.run_id, "status": report.status.value,
                       "summary": tick_summary(report), "counts": report.counts.to_json(),
                       "api": api_to_json(report.api),
                       "errors": report.errors,
                       "planned": [{"source": c.source, "object": c.stream.value,
                                    "record": c.external_id, "name": c.name,
                                    "fields": {ch.field: ch.new for ch in c.changes}}
                                   for c in report.planned]}, indent=2, default=str)


def _show(app: AppContext, report: TickReport, fmt: str, dry_run: bool) -> None:
    if fmt == "json":
        click.echo(report_json(report))
        return
    console = terminal.console()
    if dry_run:
        print_planned(report, console, app.config)
    print_report(report, console, dry_run=dry_run)


_format_opt = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
    help="json: the run's status, every counter and the planned changes, for automation.")


def _waiting(holder: Holder | None) -> None:
    who = holder.describe() if holder else "another ecosync process"
    click.echo(f"waiting for {who} to finish writing the warehouse...", err=True)


def _run(app: AppContext, options: TickOptions, source: str | None, show_progress: bool, *,
         wait: bool = False) -> TickReport:
    from sync.tick import run_tick  # the engine loads only for commands that run it

    engine = app.engine()
    require_head(engine)
    connectors = build_connectors(app.config, source)
    if not connectors:
        raise UserError("no CRM source is enabled; set enabled = true under [crm.salesforce] "
                        "or [crm.hubspot] in the config")
    # One writer at a time (the daemon's leader lock). A dry run takes it too: its plan is
    # only what a real run would write if no other writer is changing the warehouse under it.
    command = ("backfill" if options.backfill else "sync --once") + (
        " --dry-run" if options.dry_run else "")
    with writing(engine, app.config.daemon.lock_file, command, wait=wait, on_wait=_waiting):
        abandon_dead_runs(engine, datetime.now(UTC))  # their writers died holding this lock
        try:
            with shown(show_progress) as progress:
                return run_tick(engine, app.config, connectors, options=options,
                                progress=progress)
        except ConnectorError as exc:
            raise UserError(str(exc)) from None


_WAIT_HELP = ("If another writer (a backfill, a sync, the daemon) holds the warehouse, wait "
              "for it instead of exiting with code 3.")


@click.command("sync")
@click.option("--once", is_flag=True, required=True, help="Run one tick and exit.")
@click.option("--dry-run", is_flag=True,
              help="Print the field changes; change nothing (CRMs and warehouse).")
@click.option("--source", default=None, help="Only this CRM source (by its name).")
@progress_option
@click.option("--wait", is_flag=True, help=_WAIT_HELP)
@_format_opt
@pass_app
def sync_command(app: AppContext, once: bool, dry_run: bool, source: str | None,
                 progress: bool, wait: bool, fmt: str) -> None:
    """One tick: pull, match, stamp, and write back what changed."""
    from sync.tick import TickOptions

    report = _run(app, TickOptions(dry_run=dry_run), source,
                  show_progress=progress and fmt == "text", wait=wait)
    _show(app, report, fmt, dry_run)


@click.command("backfill")
@click.option("--source", default=None, help="Only this CRM source (by its name).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Pull records modified since this date (UTC) instead of everything.")
@click.option("--dry-run", is_flag=True,
              help="Pull and match, print changes; change nothing (CRMs and warehouse).")
@progress_option
@click.option("--wait", is_flag=True, help=_WAIT_HELP)
@_format_opt
@pass_app
def backfill_command(app: AppContext, source: str | None, since: datetime | None,
                     dry_run: bool, progress: bool, wait: bool, fmt: str) -> None:
    """Full pull, match and write-back; resumes from its last checkpoint after a kill."""
    from sync.tick import TickOptions

    opts = TickOptions(dry_run=dry_run, backfill=True, kind="backfill",
                       since=since.replace(tzinfo=UTC) if since else None)
    report = _run(app, opts, source, show_progress=progress and fmt == "text", wait=wait)
    _show(app, report, fmt, dry_run)


@click.group("fields")
def fields_group() -> None:
    """The custom fields / properties ecosync owns on CRM records."""


@fields_group.command("ensure")
@click.option("--source", default=None, help="Only this CRM source.")
@click.option("--check", "check_only", is_flag=True, help="Only report; create nothing.")
@pass_app
def fields_ensure(app: AppContext, source: str | None, check_only: bool) -> None:
    """Create the missing owned fields (or, with --check, report them)."""
    console = terminal.console()
    missing = 0
    for connector in build_connectors(app.config, source):
        try:
            statuses = connector.ensure_fields(check_only=check_only)
        except ConnectorError as exc:
            raise UserError(f"{connector.name}: {exc}") from None
        table = terminal.table("object", "field", terminal.Col("API name", "id"), "exists",
                               "updateable", "created", title=connector.name)
        for st in statuses:
            terminal.add_row(table, (st.stream.value, st.logical_name, st.api_name,
                                     "yes" if st.exists else Text("no", style="red"),
                                     "yes" if st.updateable else Text("no", style="red"),
                                     "yes" if st.created else ""))
            missing += not (st.exists and st.updateable)
        console.print(table)
    if missing:
        raise UserError(f"{missing} owned field(s) missing or read-only; "
                        + ("run `ecosync fields ensure` without --check" if check_only else
                           "see the admin guide to grant the integration user edit access"))


@click.group("deadletter")
def deadletter_group() -> None:
    """Records whose write-back failed on their own, retried with backoff."""


@deadletter_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include skipped records.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def deadletter_list(app: AppContext, show_all: bool, fmt: str) -> None:
    """Records waiting for a retry (with --all, skipped ones too)."""
    with Session(app.engine()) as session:
        query = select(WritebackError).order_by(WritebackError.id)
        if not show_all:
            query = query.where(WritebackError.status == DeadLetterStatus.PENDING)
        rows = session.scalars(query).all()
    if fmt == "json":
        click.echo(json.dumps([
            {"id": r.id, "source": r.source, "object": r.stream, "record": r.external_id,
             "status": r.status, "attempts": r.attempts, "error_code": r.error_code,
             "message": r.message, "fields": r.payload,
             "next_retry_at": r.next_retry_at.isoformat() if r.next_retry_at else None}
            for r in rows], indent=2))
        return
    table = terminal.table(terminal.Col("id", "number"), "source", "object",
                           terminal.Col("record", "id"), "status",
                           terminal.Col("attempts", "number"), "error", "next retry (UTC)")
    for r in rows:
        terminal.add_row(table, (r.id, r.source, r.stream, r.external_id, r.status, r.attempts,
                                 f"{r.error_code}: {r.message}", r.next_retry_at))
    terminal.console().print(table)


def _set_status(app: AppContext, ids: tuple[int, ...], every: bool,
                status: DeadLetterStatus) -> int:
    if not ids and not every:
        raise UserError("name dead-letter ids (see `ecosync deadletter list`) or pass --all")
    now = datetime.now(UTC)
    with Session(app.engine()) as session, session.begin():
        stmt = update(WritebackError).values(status=status, next_retry_at=now)
        if not every:
            stmt = stmt.where(WritebackError.id.in_(ids))
        return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


@deadletter_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True)
@pass_app
def deadletter_retry(app: AppContext, ids: tuple[int, ...], every: bool) -> None:
    """Retry on the next tick."""
    retried = _set_status(app, ids, every, DeadLetterStatus.PENDING)
    click.echo(f"{retried} record(s) will be retried on the next tick")


@deadletter_group.command("skip")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True)
@pass_app
def deadletter_skip(app: AppContext, ids: tuple[int, ...], every: bool) -> None:
    """Stop retrying these records."""
    click.echo(f"{_set_status(app, ids, every, DeadLetterStatus.SKIPPED)} record(s) skipped")


@click.command("history")
@click.argument("record")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def history_command(app: AppContext, record: str, fmt: str) -> None:
    """Every owned field ecosync wrote on RECORD (its CRM id): when, run, old → new."""
    with Session(app.engine()) as session:
        rows = session.scalars(select(ChangeLog).where(ChangeLog.external_id == record)
                               .order_by(ChangeLog.id)).all()
    if not rows:
        raise UserError(f"no field of record {record!r} was ever written by ecosync")
    if fmt == "json":
        click.echo(json.dumps([
            {"run": r.run_id, "written_at": r.written_at.isoformat(), "source": r.source,
             "object": r.stream, "field": r.field,
             "api_name": field_api_name(app.config, r.source, r.stream, r.field),
             "old": r.old_value, "new": r.new_value,
             "manual_edit": r.manual_edit, "crm_value": r.crm_value} for r in rows], indent=2))
        return
    with Session(app.engine()) as session:
        names = record_names(session, [(r.source, r.stream, r.external_id) for r in rows])
    name = next((names[k] for k in names), None)
    table = terminal.table("written at (UTC)", terminal.Col("run", "number"), "source",
                           "object", terminal.Col("field", "id"), "old", "new", "note",
                           title=f"history of {record}" + (f" ({name})" if name else ""))
    for r in rows:
        note = f"rep had set {r.crm_value!r}" if r.manual_edit else ""
        terminal.add_row(table, (r.written_at, r.run_id, r.source, r.stream,
                                 field_api_name(app.config, r.source, r.stream, r.field),
                                 r.old_value or "—", r.new_value or "—", note))
    terminal.console().print(table)


ALL = [sync_command, backfill_command, fields_group, deadletter_group, history_command]


@click.command("run")
@click.option("--max-ticks", type=int, default=None, hidden=True)
@pass_app
def run_command(app: AppContext, max_ticks: int | None) -> None:
    """The daemon: a tick every daemon.interval_seconds; one leader among replicas."""
    import threading

    from sync.daemon import install_signal_handlers, run_daemon

    stop = threading.Event()
    install_signal_handlers(stop)
    run_daemon(app.engine(), app.config, stop=stop, max_ticks=max_ticks)


ALL.append(run_command)
