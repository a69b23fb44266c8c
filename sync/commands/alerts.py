"""`ecosync alerts list|test` and `ecosync report next-accounts`: thin over sync.alerts and
sync.reports.next_accounts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import select

from schema.db import transaction
from schema.models import AlertEvent
from sync.alerts.deliver import Status, send_test, shares_of
from sync.alerts.render import render
from sync.attribution.open_pipeline import open_pipeline
from sync.context import AppContext, pass_app
from sync.errors import UserError
from sync.partners.registry import sync_partners_from_config
from sync.reports import next_accounts as na
from sync.reports.formats import FORMATS, Column
from sync.reports.formats import render as render_rows
from sync.warehouse import require_head

_format_opt = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                           show_default=True)
LIST_COLUMNS = (
    Column("id", "Id", numeric=True), Column("alert", "Alert"), Column("event", "Event"),
    Column("status", "Status"), Column("attempts", "Attempts", numeric=True),
    Column("created_at", "Queued"), Column("next_attempt_at", "Next attempt"),
    Column("sent_at", "Sent"), Column("last_error", "Last error"),
    Column("summary", "Summary"), Column("idempotency_key", "Idempotency key"),
)


@click.group("alerts")
def alerts() -> None:
    """Co-sell signals to Slack and signed webhooks ([[alerts]] in the config)."""


def list_events(app: AppContext, status: str | None, limit: int) -> list[dict[str, Any]]:
    """Outbox rows, newest first, each summarised through the sharing rules."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        shares = shares_of(session)
        query = select(AlertEvent).order_by(AlertEvent.id.desc()).limit(limit)
        if status:
            query = query.where(AlertEvent.status == status)
        out = []
        for e in session.scalars(query):
            msg = render(e.event, e.payload, shares)
            out.append({"id": e.id, "alert": e.alert_name, "event": e.event,
                        "status": e.status, "attempts": e.attempts, "created_at": e.created_at,
                        "next_attempt_at": e.next_attempt_at if e.status == "pending" else None,
                        "sent_at": e.sent_at, "last_error": e.last_error,
                        "summary": msg.summary() if msg else "(nothing shared to say)",
                        "idempotency_key": e.idempotency_key})
    return out


@alerts.command("list")
@_format_opt
@click.option("--status", type=click.Choice([s.value for s in Status]), default=None,
              help="Only events in this state (default: all).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@pass_app
def list_command(app: AppContext, fmt: str, status: str | None, limit: int) -> None:
    """Queued alert events, newest first: pending, sent, failed (and suppressed)."""
    rows = list_events(app, status, limit)
    click.echo(render_rows(rows, LIST_COLUMNS, fmt, title="Alert events"), nl=False)


@alerts.command("test")
@click.argument("name")
@pass_app
def test_command(app: AppContext, name: str) -> None:
    """Send a sample message to alert NAME, signed and sent like the real ones."""
    found = [a for a in app.config.alerts if a.name == name]
    if not found:
        names = ", ".join(a.name for a in app.config.alerts) or "none configured"
        raise UserError(f"no alert named '{name}' in {app.config.source_path or 'the config'}"
                        f" (alerts: {names}); add an [[alerts]] entry or fix the name")
    outcome = send_test(found[0])
    if not outcome.ok:
        raise UserError(f"alert '{name}': the receiver did not accept the sample "
                        f"({outcome.detail}, {outcome.attempts} attempt(s)); check "
                        f"webhook_url, the receiver, and for webhooks the shared secret")
    click.echo(f"alert '{name}': sample delivered ({outcome.detail})")


@click.command("next-accounts")
@_format_opt
@click.option("--partner", default=None, help="Only this partner id.")
@click.option("--limit", type=click.IntRange(min=1), default=na.DEFAULT_LIMIT,
              show_default=True, help="Accounts per partner.")
@pass_app
def next_accounts_command(app: AppContext, fmt: str, partner: str | None, limit: int) -> None:
    """Per partner, the named accounts to work jointly this week, ranked by a documented
    score (docs/alerts.md) with each row's reasons."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        today = datetime.now(UTC).date()
        rows = na.next_accounts(
            session, today=today,
            pipeline=open_pipeline(session, app.config.attribution, today), partner=partner,
            limit=limit)
    click.echo(render_rows(na.rows(rows), na.COLUMNS, fmt,
                           title="Next accounts to work jointly"), nl=False)
