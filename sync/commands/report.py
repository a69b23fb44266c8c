"""`ecosync report overlaps|accounts`: a thin click layer over sync.reports."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from schema.db import transaction
from sync.attribution.open_pipeline import open_pipeline
from sync.commands.lazy import Lazy, LazyGroup
from sync.context import AppContext, pass_app
from sync.partners.registry import sync_partners_from_config
from sync.reports import accounts as accounts_report
from sync.reports import overlaps as overlaps_report
from sync.reports.formats import FORMATS, render
from sync.warehouse import require_head

_format_opt = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                           show_default=True)


# Loaded when asked for: `report overlaps` needs none of what they import.
LAZY = {
    "attribution": Lazy("sync.commands.reports_attribution:attribution_command",
                        "Ecosystem-influenced revenue, partner revenue, win-rate lift (raw and "
                        "in matched cohorts), partner impact and ecosystem health, for the four "
                        "quarters to --quarter."),
    "next-accounts": Lazy("sync.commands.alerts:next_accounts_command",
                          "Per partner, the named accounts to work jointly this week, ranked by "
                          "a documented score (docs/alerts.md) with each row's reasons."),
    "working-set": Lazy("sync.commands.reports_attribution:working_set_command",
                        "Per partner: named accounts in joint pursuit this quarter; 8-15 is a "
                        "working set, fewer a rolodex, more over-extended; with the influenced "
                        "revenue each brought."),
}


@click.group("report", cls=LazyGroup, lazy=LAZY)
def report() -> None:
    """Reports over the warehouse, honouring each partner's share policy."""


@report.command("overlaps")
@_format_opt
@pass_app
def overlaps_command(app: AppContext, fmt: str) -> None:
    """Per partner: overlaps by the partner's population and by our account status."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        found = overlaps_report.overlaps_report(session)
    rows = overlaps_report.rows(found, structured=fmt == "json")
    if not rows and fmt == "table":
        click.echo("no overlaps that partners share yet: import partner lists "
                   "(`ecosync partners import`) and run `ecosync backfill` or `ecosync sync "
                   "--once`")
        return
    click.echo(render(rows, overlaps_report.columns_for(found), fmt,
                      title="Overlaps by partner"), nl=False)


@report.command("accounts")
@_format_opt
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--min-density", type=click.IntRange(min=1), default=1, show_default=True,
              help="Only accounts overlapping at least this many partners.")
@pass_app
def accounts_command(app: AppContext, fmt: str, limit: int, min_density: int) -> None:
    """Named accounts ranked by overlap density, then open pipeline in the corporate currency
    (at the rates attribution uses, in force today; the original currencies beside it)."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        attribution = app.config.attribution
        rows = accounts_report.rows(accounts_report.accounts_report(
            session, limit=limit, min_density=min_density,
            pipeline=open_pipeline(session, attribution, datetime.now(UTC).date())))
    if not rows and fmt == "table":
        click.echo(f"no account overlaps {min_density} or more partners as they share it"
                   + ("; try a lower --min-density" if min_density > 1 else
                      " yet: run `ecosync backfill` once partner lists are imported"))
        return
    click.echo(render(rows, accounts_report.COLUMNS, fmt, title="Accounts by overlap density"),
               nl=False)

