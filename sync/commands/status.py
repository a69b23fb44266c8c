"""`ecosync status`: the warehouse, the last runs with their outcome and reason, each
stream's watermark and lag (in human units) and backfill progress, dead letters, API use.

Read-only: it never takes the writer lock and never creates a warehouse. A run still marked
`running` whose process is gone (same host) or whose heartbeat stopped long ago is shown as
abandoned; the next writer records it so (sync.runs.abandon_dead_runs).
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from schema.states import BackfillState, RunStatus
from sync.context import AppContext, pass_app
from sync.errors import ConfigError, WarehouseError

# A run's heartbeat comes at least every HEARTBEAT_EVERY_S inside a stage and after each one;
# one silent for this long has lost its process (a daemon host that died, a kill -9).
ABANDONED_AFTER_S = 15 * 60.0


def human_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 5 min`, `2 days 4 h`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} {hours} h" if hours else f"{days} {unit}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def run_outcome(run: dict[str, Any], now: datetime) -> tuple[str, str | None]:
    """(status as shown, reason) of one run of the log."""
    status = RunStatus(run["status"])
    reason = run.get("error")
    if status is RunStatus.RUNNING:
        beat = datetime.fromisoformat(run["heartbeat_at"]) if run.get("heartbeat_at") else None
        gone = (run.get("host") == socket.gethostname() and run.get("pid") is not None
                and not _pid_alive(int(run["pid"])))
        silent = beat is not None and (now - beat).total_seconds() > ABANDONED_AFTER_S
        if gone or silent:
            since = f"{beat:%Y-%m-%d %H:%M:%S} UTC" if beat else "its start"
            why = "its process is gone" if gone else "its heartbeat stopped"
            return RunStatus.ABANDONED.value, f"{why}; last heard of {since}"
    return status.value, reason


def _watermark_line(w: dict[str, Any], now: datetime) -> dict[str, Any]:
    lag = None
    if w["modified_at"]:
        lag = human_duration((now - datetime.fromisoformat(w["modified_at"])).total_seconds())
    if w.get("backfill_cursor") == BackfillState.IN_PROGRESS:
        mark = w["modified_at"]
        backfill = (f"in progress: resumes from {mark}" if mark
                    else "in progress: starts over (no page committed yet)")
    elif w.get("backfill_cursor") == BackfillState.PULLED:
        backfill = "pulled; matching and write-back finish on the next run"
    elif w["backfill_completed_at"]:
        backfill = f"completed {_moment(w['backfill_completed_at']):%Y-%m-%d %H:%M:%S}"
    else:
        backfill = ""
    return {**w, "lag": lag, "backfill": backfill}


def _moment(iso: str | None) -> datetime | None:
    """A stored ISO timestamp as a datetime, which tables show to the second (UTC)."""
    return datetime.fromisoformat(iso) if iso else None


def _no_warehouse_file(url: str) -> Path | None:
    """The SQLite file the URL names, when it does not exist (status must not create it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database \
            or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


@click.command("status")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def status_command(app: AppContext, fmt: str) -> None:
    """Warehouse, last runs with their reasons, watermarks and lag, dead letters, API use."""
    from sync import terminal, warehouse
    from sync.stages.counts import TickCounts, api_from_json

    if not app.config.source_path:
        raise ConfigError(
            "no config file: ecosync looked for ./ecosync.toml and found none (nothing was "
            "created); copy config.example.toml to ecosync.toml, or pass --config PATH or set "
            "ECOSYNC_CONFIG")
    missing = _no_warehouse_file(app.config.warehouse.url)
    if missing is not None:
        raise WarehouseError(
            f"the warehouse file {missing} does not exist (warehouse.url in "
            f"{app.config.source_path}); run `ecosync db upgrade` to create it")
    st = warehouse.status(app.engine())
    now = datetime.now(UTC)
    runs = []
    for r in st.last_runs:
        shown, reason = run_outcome(r, now)
        runs.append({**r, "status": shown, "reason": reason})
    marks = [_watermark_line(w, now) for w in st.watermarks]
    if fmt == "json":
        click.echo(json.dumps({**st.__dict__, "last_runs": runs, "watermarks": marks},
                              indent=2, default=str))
        return
    console = terminal.console()
    if not st.reachable:
        raise WarehouseError(f"warehouse unreachable at {st.url}: {st.error}")
    mark = "[green]at head[/green]" if st.revision == st.head else (
        f"[yellow]at {st.revision or 'none'}, head {st.head}: run `ecosync db upgrade`[/yellow]")
    console.print(terminal.line("warehouse ", terminal.value(st.url), f" {mark}"))
    if runs:
        table = terminal.table(terminal.Col("run", "number"), "kind", "status", "started (UTC)",
                               terminal.Col("pulled", "number"),
                               terminal.Col("written", "number"),
                               terminal.Col("failed", "number"),
                               terminal.Col("API calls", "number"), "reason",
                               title="last runs")
        for r in runs:
            totals = TickCounts.from_json(r["counts"]).totals()
            calls = sum(use.calls for use in api_from_json(r["api_calls"]).values())
            kind = r["kind"] + (" (dry run)" if r.get("dry_run") else "")
            terminal.add_row(table, (r["id"], kind, r["status"], _moment(r["started_at"]),
                                     totals.pulled, totals.written, totals.failed, calls,
                                     r["reason"] or ""))
        console.print(table)
    if marks:
        table = terminal.table("source", "stream", "read up to (UTC)", "lag", "backfill",
                               title="watermarks")
        for w in marks:
            terminal.add_row(table, (w["source"], w["stream"], _moment(w["modified_at"]),
                                     w["lag"] or "", w["backfill"]))
        console.print(table)
    console.print(f"dead letters pending: {st.dead_letters}")
    for run in st.last_runs:
        # The run log holds what each connector reported, its cap included (ApiUse): the
        # same figures /metrics and the web's operations page show, whatever the source's name.
        api = api_from_json(run["api_calls"])
        for source, use in sorted(api.items()):
            if use.daily_limit:
                console.print(terminal.line(
                    "API use ", terminal.value(source), ": ", use.budget_words(),
                    f", as of run {run['id']}"))
        if any(use.daily_limit for use in api.values()):
            break
