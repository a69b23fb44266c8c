"""`ecosync psi request|respond|finish|log`: a thin click layer over sync.psi."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
import structlog

from schema.db import transaction
from sync import terminal
from sync.commands.options import progress_option
from sync.config import POPULATIONS
from sync.context import AppContext, pass_app
from sync.progress_bars import shown
from sync.psi.log import log_rows
from sync.psi.requester import finish, request
from sync.psi.responder import respond
from sync.warehouse import require_head

log = structlog.get_logger(__name__)
_FILE = click.Path(path_type=Path, dir_okay=False)


@click.group("psi")
def psi() -> None:
    """Private matching with a partner's ecosync: the overlap, and nothing else
    (docs/private-matching.md)."""


@psi.command("request")
@click.argument("partner_id", metavar="PARTNER")
@click.option("--out", "out", required=True, type=_FILE, help="Request file to write.")
@click.option("--population", "populations", multiple=True, type=click.Choice(POPULATIONS),
              help="The partner's populations to ask for; repeatable (default: all).")
@progress_option
@pass_app
def request_command(app: AppContext, partner_id: str, out: Path,
                    populations: tuple[str, ...], progress: bool) -> None:
    """Step 1 (our side): write a request for PARTNER."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session, shown(progress) as stages:
        result = request(session, app.config, partner_id, out, now=datetime.now(UTC),
                         populations=populations or POPULATIONS, progress=stages)
    log.info("psi request", run=result.run_id, partner=result.partner_id,
             keys=sum(result.sizes.values()), bytes=result.bytes)
    click.echo(result.summary())


@psi.command("respond")
@click.option("--in", "in_", required=True, type=_FILE, help="Request file received.")
@click.option("--out", "out", required=True, type=_FILE, help="Response file to write.")
@click.option("--partner", "partner_id", default=None,
              help="The partner who sent it (default: the one whose id or name the request "
                   "names).")
@progress_option
@pass_app
def respond_command(app: AppContext, in_: Path, out: Path, partner_id: str | None,
                    progress: bool) -> None:
    """Step 2 (their side): answer a request under our outbound policy for its sender."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session, shown(progress) as stages:
        result = respond(session, app.config, in_, out, now=datetime.now(UTC),
                         partner_id=partner_id, progress=stages)
    log.info("psi respond", run=result.run_id, partner=result.partner_id, bytes=result.bytes)
    click.echo(result.summary())


@psi.command("finish")
@click.option("--in", "in_", required=True, type=_FILE, help="Response file received.")
@click.option("--out", "out", default=None, type=_FILE,
              help="Where to write the contacts request, when the partner shares owners "
                   "(default: beside the response).")
@progress_option
@pass_app
def finish_command(app: AppContext, in_: Path, out: Path | None, progress: bool) -> None:
    """Step 3 (our side): land the partner's answer."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session, shown(progress) as stages:
        result = finish(session, app.config, in_, now=datetime.now(UTC), contacts_out=out,
                        progress=stages)
    # Run and partner only: what was in common is for `psi log`, through the sharing rule.
    log.info("psi finish", run=result.run_id, partner=result.partner_id)
    click.echo(result.summary())


@psi.command("log")
@click.option("--partner", "partner_id", default=None, help="Only runs with this partner.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@pass_app
def log_command(app: AppContext, partner_id: str | None, limit: int, fmt: str) -> None:
    """Every private-matching run, on both sides: newest first."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        rows = log_rows(session, partner_id=partner_id, limit=limit)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no private-matching runs{f' with {partner_id}' if partner_id else ''} "
                   f"yet: start one with `ecosync psi request PARTNER --out FILE`, or answer "
                   f"a partner's with `ecosync psi respond` (docs/private-matching.md)")
        return
    table = terminal.table("when (UTC)", terminal.Col("run", "id"), "role",
                           terminal.Col("partner", "id"), "status", "shared", "our keys",
                           "their keys", "in common", "contacts", "by",
                           title="private-matching runs")
    for r in rows:
        terminal.add_row(table, (
            r["created_at"][:19].replace("T", " "), r["run_id"], r["role"], r["partner_id"],
            r["status"], r["shared_text"], r["our_keys"], r["their_keys"], r["found_text"],
            r["contacts"], r["actor"]))
    terminal.console().print(table)
