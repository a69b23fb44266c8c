"""`ecosync report attribution|working-set`: commands added to the `report` group."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from schema.db import transaction
from sync import terminal
from sync.attribution.periods import Quarter
from sync.context import AppContext, pass_app
from sync.partners.registry import sync_partners_from_config
from sync.reports.attribution import (
    MIN_SAMPLE,
    Section,
    attribution_report,
    closed_deals_note,
)
from sync.reports.formats import FORMATS, Column, json_dump, render
from sync.reports.working_set import COLUMNS as WORKING_SET_COLUMNS
from sync.reports.working_set import working_set_report
from sync.warehouse import require_head

SECTIONS = ("revenue", "partners", "comparison", "cohorts", "impact", "health")


def _quarter(text: str | None) -> Quarter:
    return Quarter.parse(text) if text else Quarter.of(datetime.now(UTC).date())


_format_opt = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                           show_default=True)
_quarter_opt = click.option("--quarter", help="Quarter, e.g. 2026Q3 (default: the current one).")


def render_sections(sections: list[Section], fmt: str) -> str:
    """Tables one after another; JSON as one object keyed by section; CSV as one table: the
    section's own columns for one section, else the long form (`long_csv`)."""
    if fmt == "json":
        return json_dump({s.name: [{c.key: r.get(c.key) for c in s.columns} for r in s.rows]
                          for s in sections})
    if fmt == "csv":
        if len(sections) == 1:
            return render(sections[0].rows, sections[0].columns, "csv")
        return long_csv(sections)
    return "".join(render(s.rows, s.columns, "table", title=s.title) for s in sections)


def long_csv(sections: list[Section]) -> str:
    """Every section in one CSV: a row per figure, `section`, the sections' describing
    (non-numeric) columns, then `metric` and `value`; a column a section lacks is empty."""
    dims: list[Column] = []
    for s in sections:
        dims += [c for c in s.columns if not c.numeric and c.key not in {d.key for d in dims}]
    rows = [{"section": s.name, **{d.key: r.get(d.key) for d in dims if d in s.columns},
             "metric": c.key, "value": r.get(c.key)}
            for s in sections for r in s.rows for c in s.columns if c.numeric]
    columns = (Column("section", "Section"), *dims, Column("metric", "Metric"),
               Column("value", "Value", numeric=True))
    return render(rows, columns, "csv")


@click.command("attribution")
@_format_opt
@_quarter_opt
@click.option("--section", type=click.Choice([*SECTIONS, "all"]), default="all",
              show_default=True)
@click.option("--min-sample", type=click.IntRange(min=1), default=MIN_SAMPLE,
              show_default=True, help="Closed deals a partner needs for an impact rating.")
@pass_app
def attribution_command(app: AppContext, fmt: str, quarter: str | None, section: str,
                        min_sample: int) -> None:
    """Ecosystem-influenced revenue, partner revenue, win-rate lift (raw and in matched
    cohorts), partner impact and ecosystem health, for the four quarters to --quarter."""
    anchor = _quarter(quarter)
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        sections = attribution_report(
            session, anchor=anchor, today=datetime.now(UTC).date(),
            corporate_currency=app.config.attribution.corporate_currency.upper(),
            min_sample=min_sample)
        note, nothing = closed_deals_note(session, anchor)
    chosen = [s for s in sections if section in ("all", s.name)]
    if fmt == "table" and note:
        # Instead of tables of zeros: say so, and where the data is.
        click.echo(terminal.plain(note + ("" if nothing else "; the trailing quarters:")))
        if nothing:
            return
    click.echo(render_sections(chosen, fmt), nl=False)


@click.command("working-set")
@_format_opt
@_quarter_opt
@pass_app
def working_set_command(app: AppContext, fmt: str, quarter: str | None) -> None:
    """Per partner: named accounts in joint pursuit this quarter; 8-15 is a working set,
    fewer a rolodex, more over-extended; with the influenced revenue each brought."""
    anchor = _quarter(quarter)
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        rows = working_set_report(session, anchor)
    click.echo(render(rows, WORKING_SET_COLUMNS, fmt,
                      title=f"Working-set test, {anchor.label}"), nl=False)


ALL = (attribution_command, working_set_command)
