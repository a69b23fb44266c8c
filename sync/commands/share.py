"""`ecosync share export|log`: a thin click layer over sync.exchange."""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click
import structlog

from schema.db import transaction
from sync import terminal
from sync.commands.options import progress_option
from sync.context import AppContext, pass_app
from sync.exchange.export import ExportFormat, discard_files, export_for_partner
from sync.exchange.log import export_log
from sync.matching.keys import generic_domains
from sync.progress_bars import shown
from sync.warehouse import require_head

log = structlog.get_logger(__name__)


@click.group("share")
def share() -> None:
    """What we send partners: exports of our accounts under each partner's outbound policy
    (docs/exchange-format.md)."""


@share.command("export")
@click.argument("partner_id", metavar="PARTNER")
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), default=".",
              show_default=True, help="Folder to write the files into.")
@click.option("--format", "fmt", type=click.Choice([f.value for f in ExportFormat]),
              default=ExportFormat.ECOSYNC.value, show_default=True,
              help="ecosync: manifest + rows, read by a partner's `ecosync partners import`; "
                   "plain: one \"Company Name,Website\" CSV for hosted account-mapping tools.")
@click.option("--by", default=None,
              help="Who exports, for the share log (default: $ECOSYNC_USER, else the login "
                   "name).")
@progress_option
@pass_app
def export_command(app: AppContext, partner_id: str, out: Path, fmt: str,
                   by: str | None, progress: bool) -> None:
    """Write our accounts for PARTNER, under our outbound policy for it."""
    engine = app.engine()
    require_head(engine)
    who = by or os.environ.get("ECOSYNC_USER") or getpass.getuser()
    result = None
    try:
        with transaction(engine) as session, shown(progress) as stages:
            result = export_for_partner(
                session, app.config, partner_id, out, fmt=ExportFormat(fmt), by=who,
                now=datetime.now(UTC).replace(microsecond=0),
                generic=generic_domains(app.config.matching.generic_domains),
                progress=stages)
    except BaseException:
        if result is not None:  # written, but the log could not commit: nothing stays
            discard_files(result)
        raise
    # Counts and the checksum only: the rows are for the partner, not for our logs.
    log.info("share export", export=result.export_id, partner=result.partner_id,
             format=str(result.format), rows=result.rows, counts=result.counts,
             sha256=result.checksum)
    click.echo(result.summary())


@share.command("log")
@click.option("--partner", "partner_id", default=None, help="Only exports to this partner.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@pass_app
def log_command(app: AppContext, partner_id: str | None, limit: int, fmt: str) -> None:
    """Every export we made: when, by whom, policy, counts per population, checksum."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        rows = export_log(session, partner_id=partner_id, limit=limit)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no exports{f' for {partner_id}' if partner_id else ''} yet: make one "
                   f"with `ecosync share export PARTNER --out DIR` (docs/exchange-format.md)")
        return
    table = terminal.table(terminal.Col("#", "id"), "when (UTC)", "by",
                           terminal.Col("partner", "id"), "format", "policy", "counts",
                           terminal.Col("rows", "number"), terminal.Col("sha256", "id"),
                           title="exports")
    for r in rows:
        terminal.add_row(table, (
            r["id"], r["exported_at"][:19].replace("T", " "), r["exported_by"],
            r["partner_id"], r["format"],
            ", ".join(f"{p}={lvl}" for p, lvl in r["policy"].items()),
            ", ".join(f"{p} {n:,}" for p, n in r["counts"].items()), f"{r['rows']:,}",
            r["sha256"]))
    terminal.console().print(table)
