"""`ecosync partners add|list|import`: a thin click layer over sync.partners."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
import structlog

from schema.db import transaction
from sync import terminal
from sync.commands.options import progress_option
from sync.context import AppContext, pass_app
from sync.errors import UserError
from sync.exchange.importer import import_partner_file
from sync.matching.keys import generic_domains
from sync.partners.registry import (
    KINDS,
    SOURCES,
    add_partner,
    list_partners,
    partner_config,
    sync_partners_from_config,
)
from sync.progress_bars import shown
from sync.warehouse import require_head

log = structlog.get_logger(__name__)


def _parse_shares(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        population, sep, level = value.partition("=")
        if not sep:
            raise UserError(f"--share '{value}' must look like POPULATION=LEVEL, e.g. "
                            f"prospect=hidden")
        out[population.strip()] = level.strip()
    return out


@click.group("partners")
def partners() -> None:
    """Partners and the account lists they share with us."""


@partners.command("add")
@click.argument("partner_id")
@click.option("--name", required=True, help="Display name, e.g. \"Acme Cloud\".")
@click.option("--kind", type=click.Choice(KINDS), default="technology", show_default=True)
@click.option("--source", type=click.Choice(SOURCES), default="csv", show_default=True,
              help="Where the partner's account list comes from.")
@click.option("--share", "shares", multiple=True, metavar="POPULATION=LEVEL",
              help="Sharing level per population (full, names, counts, hidden); repeatable. "
                   "Unset populations are shared in full.")
@pass_app
def add(app: AppContext, partner_id: str, name: str, kind: str, source: str,
        shares: tuple[str, ...]) -> None:
    """Register partner PARTNER_ID."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        partner = add_partner(session, partner_id, name, kind=kind, source=source,
                              share=_parse_shares(shares))
    click.echo(f"added partner {partner.id} ({partner.name}, {partner.kind}); share: "
               + ", ".join(f"{p}={lvl}" for p, lvl in partner.share.items()))


@partners.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@pass_app
def list_command(app: AppContext, fmt: str) -> None:
    """Partners with their shared rows by population and last import."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        summaries = list_partners(session)
    if fmt == "json":
        click.echo(json.dumps([s.as_dict() for s in summaries], indent=2))
        return
    table = terminal.table(
        terminal.Col("id", "id"), "name", "kind", "source", terminal.Col("rows", "number"),
        terminal.Col("customer", "number"), terminal.Col("open opp.", "number"),
        terminal.Col("prospect", "number"), "share", terminal.Col("snapshot", "number"),
        "last import (UTC)", title="partners")
    for s in summaries:
        terminal.add_row(table, (
            s.id, s.name, s.kind, s.source, s.rows,
            *("hidden" if s.by_population[p] is None else s.by_population[p]
              for p in ("customer", "open_opportunity", "prospect")),
            ", ".join(f"{p}={lvl}" for p, lvl in s.share.items()), s.snapshot_version,
            s.last_import_at or "never"))
    terminal.console().print(table)


@partners.command("import")
@click.argument("partner_id", metavar="PARTNER")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--skip-invalid/--no-skip-invalid", default=None,
              help="Import the valid rows and report the invalid ones (default: the "
                   "partner's skip_invalid in the config, else a file with any invalid row "
                   "imports nothing).")
@click.option("--encoding", default=None,
              help="The file's text encoding (default: the partner's config, else UTF-8 with "
                   "or without BOM), e.g. cp1252.")
@click.option("--force", is_flag=True, help="Re-import even if the file is unchanged.")
@progress_option
@pass_app
def import_command(app: AppContext, partner_id: str, file: Path, skip_invalid: bool | None,
                   encoding: str | None, force: bool, progress: bool) -> None:
    """Replace PARTNER's shared account list with the rows of FILE: a CSV, or an ecosync
    exchange file (its manifest or its rows), recognised and imported with no mapping."""
    engine = app.engine()
    require_head(engine)
    configured = partner_config(app.config, partner_id)
    if configured is not None and configured.source == "psi":
        # The mirror of `psi request` refusing a csv partner: one source per partner list.
        raise UserError(f"partner '{partner_id}' has source = \"psi\": its rows are the "
                        f"result of private-matching runs, and this file would replace them; "
                        f"to take its list from files instead, set source = \"csv\" under "
                        f"[[partners]] id = \"{partner_id}\" in the config")
    with transaction(engine) as session, shown(progress) as stages:
        sync_partners_from_config(session, app.config)
        imported = import_partner_file(
            session, partner_id, file,
            columns=configured.columns if configured else None,
            encoding=encoding or (configured.encoding if configured else None),
            skip_invalid=(skip_invalid if skip_invalid is not None
                          else bool(configured and configured.skip_invalid)),
            force=force, generic=generic_domains(app.config.matching.generic_domains),
            now=datetime.now(UTC), progress=stages,
        )
    result = imported.result
    if result.skipped_rows:
        click.echo(result.skipped_message(), err=True)
    log.info("partner import", partner=partner_id, rows=result.rows, added=result.added,
             changed=result.changed, removed=result.removed, skipped=result.skipped_rows,
             snapshot=result.snapshot_version, unchanged_file=result.file_unchanged,
             exchange=imported.manifest is not None)
    click.echo(imported.summary())
