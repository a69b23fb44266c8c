"""The `ecosync` command: a thin click layer over functions the tests call directly.

Subcommands load on first use (sync.commands.lazy): `ecosync --help` imports click and this
module, and each command imports what it uses and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import click

from sync.commands.lazy import Lazy, LazyGroup
from sync.context import AppContext, pass_app

# Every top-level command: where it lives and its summary (a test keeps them in step).
COMMANDS: dict[str, Lazy] = {
    "alerts": Lazy("sync.commands.alerts:alerts",
                   "Co-sell signals to Slack and signed webhooks ([[alerts]] in the config)."),
    "attribution": Lazy("sync.commands.attribution:attribution",
                        "Attribution stamps: remake one on request, or explain why partners "
                        "were credited."),
    "backfill": Lazy("sync.commands.engine:backfill_command",
                     "Full pull, match and write-back; resumes from its last checkpoint after "
                     "a kill."),
    "deadletter": Lazy("sync.commands.engine:deadletter_group",
                       "Records whose write-back failed on their own, retried with backoff."),
    "demo": Lazy("sync.commands.sandbox:demo_command",
                 "The whole loop on SQLite and sandbox CRMs; needs no configuration and no "
                 "network."),
    "doctor": Lazy("sync.commands.doctor:doctor_command",
                   "Check what a production run needs: config, warehouse, CRM access and owned "
                   "fields, API budget, partner files, sharing policies, the health port."),
    "fields": Lazy("sync.commands.engine:fields_group",
                   "The custom fields / properties ecosync owns on CRM records."),
    "history": Lazy("sync.commands.engine:history_command",
                    "Every owned field ecosync wrote on RECORD (its CRM id): when, run, "
                    "old → new."),
    "match": Lazy("sync.commands.match:match",
                  "Account matching: run it, override it (pin/block), explain it."),
    "partners": Lazy("sync.commands.partners:partners",
                     "Partners and the account lists they share with us."),
    "psi": Lazy("sync.commands.psi:psi",
                "Private matching with a partner's ecosync: the overlap, and nothing else "
                "(docs/private-matching.md)."),
    "report": Lazy("sync.commands.report:report",
                   "Reports over the warehouse, honouring each partner's share policy."),
    "share": Lazy("sync.commands.share:share",
                  "What we send partners: exports of our accounts under each partner's "
                  "outbound policy (docs/exchange-format.md)."),
    "run": Lazy("sync.commands.engine:run_command",
                "The daemon: a tick every daemon.interval_seconds; one leader among replicas."),
    "sandbox": Lazy("sync.commands.sandbox:sandbox_group",
                    "Local emulators of the Salesforce and HubSpot APIs."),
    "status": Lazy("sync.commands.status:status_command",
                   "Warehouse, last runs with their reasons, watermarks and lag, dead letters, "
                   "API use."),
    "sync": Lazy("sync.commands.engine:sync_command",
                 "One tick: pull, match, stamp, and write back what changed."),
    "web": Lazy("sync.commands.web:web_command",
                "Serve the read-only web view and JSON API (matrix, accounts, partners, "
                "network, operations)."),
}


class _Group(LazyGroup):
    """Turns every UserError, and a database failure, into one clear line on stderr and its
    exit code. The line goes through the masker: an error may quote a CRM's answer, and a
    CRM may echo the credentials it was sent."""

    def invoke(self, ctx: click.Context) -> Any:
        from sync.errors import UserError, WarehouseError, describe_error, is_database_error

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


@click.group(cls=_Group, lazy=COMMANDS)
@click.option("--config", "config_path", envvar="ECOSYNC_CONFIG", type=click.Path(dir_okay=False),
              help="TOML config file (default ./ecosync.toml; env ECOSYNC_CONFIG).")
@click.option("--log-format", type=click.Choice(["auto", "console", "json"]), default=None,
              help="Log format (default: console on a terminal, JSON lines otherwise).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_format: str | None) -> None:
    """ecosync: partner account mapping and attribution, synced into Salesforce and HubSpot."""
    from sync.config import load_config
    from sync.logs import configure_logging, install_masking_streams

    install_masking_streams()  # every byte this command prints passes the masker
    config = load_config(config_path)
    fmt = log_format or config.logging.format
    configure_logging(fmt, config.logging.level, secrets=config.secrets())
    app = AppContext(config=config, log_format=fmt)
    ctx.obj = app
    ctx.call_on_close(app.close)


@cli.group()
def db() -> None:
    """Warehouse migrations."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Create or migrate the warehouse to the current schema."""
    from sync import warehouse

    head = warehouse.upgrade(app.engine())
    click.echo(f"warehouse at revision {head} ({app.engine().url.render_as_string(True)})")


@db.command("current")
@pass_app
def db_current(app: AppContext) -> None:
    """Print the warehouse's migration revision."""
    import migrations
    from sync import warehouse

    rev = warehouse.current(app.engine())
    head = migrations.head_revision()
    suffix = " (head)" if rev == head else f" (head is {head}; run `ecosync db upgrade`)"
    click.echo(f"{rev or 'none'}{suffix}")


@cli.group("config")
def config_group() -> None:
    """Configuration."""


@config_group.command("check")
@pass_app
def config_check(app: AppContext) -> None:
    """Validate the config and print it resolved, with every secret masked."""
    from sync.config import masked

    click.echo(json.dumps(masked(app.config), indent=2))
    click.echo(f"config OK ({app.config.source_path or 'built-in defaults'})", err=True)


def main() -> None:
    cli(prog_name="ecosync")
