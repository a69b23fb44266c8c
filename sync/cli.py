"""The `ecosync` command: a thin click layer over functions the tests call directly."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

import migrations
from sync import warehouse
from sync.commands.alerts import alerts, next_accounts_command
from sync.commands.attribution import attribution
from sync.commands.doctor import doctor_command
from sync.commands.engine import ALL as ENGINE_COMMANDS
from sync.commands.match import match
from sync.commands.partners import partners
from sync.commands.psi import psi
from sync.commands.report import report
from sync.commands.sandbox import ALL as SANDBOX_COMMANDS
from sync.commands.web import web_command
from sync.config import load_config, masked
from sync.context import AppContext
from sync.errors import UserError, WarehouseError, describe_error, is_database_error
from sync.logs import configure_logging, install_masking_streams


class _Group(click.Group):
    """Turns every UserError, and a database failure, into one clear line on stderr and its
    exit code. The line goes through the masker: an error may quote a CRM's answer, and a
    CRM may echo the credentials it was sent."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {describe_error(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            if not is_database_error(exc):
                raise
            # Only the driver's first line: the statement's parameters carry row data.
            click.echo(f"error: the warehouse failed ({describe_error(exc)}); "
                       f"{_warehouse_fix(exc)}", err=True)
            ctx.exit(WarehouseError.exit_code)


def _warehouse_fix(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).lower()
    if "full" in text or "no space" in text or "could not extend" in text:
        return ("free disk space where the warehouse lives, then run the command again; the "
                "failed transaction was rolled back, nothing was half-written")
    return ("check the warehouse with `ecosync doctor`, then run the command again; the failed "
            "transaction was rolled back")


@click.group(cls=_Group)
@click.option("--config", "config_path", envvar="ECOSYNC_CONFIG", type=click.Path(dir_okay=False),
              help="TOML config file (default ./ecosync.toml; env ECOSYNC_CONFIG).")
@click.option("--log-format", type=click.Choice(["auto", "console", "json"]), default=None,
              help="Log format (default: console on a terminal, JSON lines otherwise).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_format: str | None) -> None:
    """ecosync: partner account mapping and attribution, synced into Salesforce and HubSpot."""
    install_masking_streams()  # every byte this command prints passes the masker
    config = load_config(config_path)
    fmt = log_format or config.logging.format
    configure_logging(fmt, config.logging.level, secrets=config.secrets())
    app = AppContext(config=config, log_format=fmt)
    ctx.obj = app
    ctx.call_on_close(app.close)


def app_context() -> AppContext:
    obj = click.get_current_context().find_object(AppContext)
    assert obj is not None
    return obj


@cli.group()
def db() -> None:
    """Warehouse migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the warehouse to the current schema."""
    app = app_context()
    head = warehouse.upgrade(app.engine())
    click.echo(f"warehouse at revision {head} ({app.engine().url.render_as_string(True)})")


@db.command("current")
def db_current() -> None:
    """Print the warehouse's migration revision."""
    app = app_context()
    rev = warehouse.current(app.engine())
    head = migrations.head_revision()
    suffix = " (head)" if rev == head else f" (head is {head}; run `ecosync db upgrade`)"
    click.echo(f"{rev or 'none'}{suffix}")


@cli.group("config")
def config_group() -> None:
    """Configuration."""


@config_group.command("check")
def config_check() -> None:
    """Validate the config and print it resolved, with every secret masked."""
    app = app_context()
    click.echo(json.dumps(masked(app.config), indent=2))
    click.echo(f"config OK ({app.config.source_path or 'built-in defaults'})", err=True)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def status(fmt: str) -> None:
    """Warehouse reachability, migration head, last runs, watermarks, dead letters."""
    app = app_context()
    st = warehouse.status(app.engine())
    if fmt == "json":
        click.echo(json.dumps(st.__dict__, indent=2, default=str))
        return
    console = Console()
    if not st.reachable:
        console.print(f"[red]warehouse unreachable[/red] {st.url}: {st.error}")
        sys.exit(3)
    mark = "[green]at head[/green]" if st.revision == st.head else (
        f"[yellow]at {st.revision or 'none'}, head {st.head}: run `ecosync db upgrade`[/yellow]")
    console.print(f"warehouse {st.url} {mark}")
    if st.last_runs:
        table = Table("run", "kind", "status", "started", "ended", "pulled", "written",
                      "failed", "API calls", title="last runs")
        for r in st.last_runs:
            counts = r["counts"]

            def total(prefix: str, counts: dict[str, int] = counts) -> str:
                return str(sum(v for k, v in counts.items() if k.startswith(prefix)))

            kind = r["kind"] + (" (dry run)" if r.get("dry_run") else "")
            table.add_row(str(r["id"]), kind, r["status"], r["started_at"] or "",
                          r["ended_at"] or "", total("pulled."), total("written."),
                          total("failed."),
                          ", ".join(f"{k} {v}" for k, v in r["api_calls"].items()
                                    if "." not in k))
        console.print(table)
    if st.watermarks:
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        table = Table("source", "stream", "watermark", "lag", "backfill completed",
                      title="watermarks")
        for w in st.watermarks:
            lag = ""
            if w["modified_at"]:
                seconds = (now - datetime.fromisoformat(w["modified_at"])).total_seconds()
                lag = f"{seconds / 60:.1f} min"
            table.add_row(w["source"], w["stream"], w["modified_at"] or "", lag,
                          w["backfill_completed_at"] or "")
        console.print(table)
    console.print(f"dead letters pending: {st.dead_letters}")
    shares = {app.config.crm.salesforce.name: app.config.crm.salesforce.max_api_share,
              app.config.crm.hubspot.name: app.config.crm.hubspot.max_api_share}
    for run in st.last_runs:
        calls = run["api_calls"]
        for source, share in shares.items():
            used, limit = calls.get(f"{source}.daily_used"), calls.get(f"{source}.daily_limit")
            if limit:
                console.print(
                    f"API use {source}: {used:,} of {limit:,} calls today "
                    f"({used / limit:.0%}; ecosync stops at {share:.0%}), as of run {run['id']}")
        if any(k.endswith(".daily_limit") for k in calls):
            break


cli.add_command(partners)
cli.add_command(doctor_command)
cli.add_command(match)
cli.add_command(report)
cli.add_command(attribution)
cli.add_command(web_command)
cli.add_command(psi)
cli.add_command(alerts)
report.add_command(next_accounts_command)


for _command in [*ENGINE_COMMANDS, *SANDBOX_COMMANDS]:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="ecosync")
