"""`ecosync attribution restamp|explain`: a thin click layer over sync.attribution."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from schema.db import transaction
from sync import terminal
from sync.attribution.explain import explain, restamp
from sync.context import AppContext, pass_app
from sync.warehouse import require_head


@click.group("attribution")
def attribution() -> None:
    """Attribution stamps: remake one on request, or explain why partners were credited."""


@attribution.command("restamp")
@click.argument("opportunity")
@click.option("--reason", required=True, help="Why the stamp is remade (kept in the ledger).")
@pass_app
def restamp_command(app: AppContext, opportunity: str, reason: str) -> None:
    """Make a new stamp version for OPPORTUNITY (CRM id, or SOURCE:ID), superseding the
    active one; the next tick writes its fields."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        stamp = restamp(session, app.config.attribution, opportunity, reason,
                        now=datetime.now(UTC))
        version, supersedes = stamp.version, stamp.supersedes_id
    click.echo(f"restamped {opportunity}: version {version} (supersedes stamp {supersedes})")


@attribution.command("explain")
@click.argument("opportunity")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@pass_app
def explain_command(app: AppContext, opportunity: str, fmt: str) -> None:
    """The active stamp of OPPORTUNITY and its history: partners, kinds, amounts, the rule
    that fired and the overlaps it saw."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        found = explain(session, opportunity)
    if fmt == "json":
        click.echo(json.dumps(found.as_dict(), indent=2, default=str))  # ASCII: escaped
    else:
        click.echo(terminal.plain(found.text()))  # names from the CRMs: controls escaped
