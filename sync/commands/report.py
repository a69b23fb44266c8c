"""`ecosync report overlaps|accounts`: a thin click layer over sync.reports."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from schema.db import transaction
from sync.attribution.currency import kept_rates
from sync.commands.reports_attribution import attribution_command, working_set_command
from sync.context import AppContext
from sync.errors import UserError
from sync.partners.registry import sync_partners_from_config
from sync.reports import accounts as accounts_report
from sync.reports import overlaps as overlaps_report
from sync.reports.formats import FORMATS, render
from sync.warehouse import require_head

_format_opt = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                           show_default=True)


def _app() -> AppContext:
    obj = click.get_current_context().find_object(AppContext)
    if obj is None:
        raise UserError("no ecosync context; run this as `ecosync report …`")
    return obj


@click.group("report")
def report() -> None:
    """Reports over the warehouse, honouring each partner's share policy."""


@report.command("overlaps")
@_format_opt
def overlaps_command(fmt: str) -> None:
    """Per partner: overlaps by the partner's population and by our account status."""
    app = _app()
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        rows = overlaps_report.rows(overlaps_report.overlaps_report(session))
    click.echo(render(rows, overlaps_report.COLUMNS, fmt, title="Overlaps by partner"),
               nl=False)


@report.command("accounts")
@_format_opt
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--min-density", type=click.IntRange(min=1), default=1, show_default=True,
              help="Only accounts overlapping at least this many partners.")
def accounts_command(fmt: str, limit: int, min_density: int) -> None:
    """Named accounts ranked by overlap density, then open pipeline in the corporate currency
    (at the rates attribution uses, in force today; the original currencies beside it)."""
    app = _app()
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        attribution = app.config.attribution
        rows = accounts_report.rows(accounts_report.accounts_report(
            session, limit=limit, min_density=min_density,
            corporate=attribution.corporate_currency, rates=kept_rates(session, attribution),
            today=datetime.now(UTC).date()))
    click.echo(render(rows, accounts_report.COLUMNS, fmt, title="Accounts by overlap density"),
               nl=False)


report.add_command(attribution_command)
report.add_command(working_set_command)
