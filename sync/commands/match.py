"""`ecosync match run|pin|block|revoke|explain`: a thin click layer over sync.matching."""

from __future__ import annotations

import getpass
import os
from dataclasses import asdict
from datetime import UTC, datetime

import click
import structlog

from schema.db import transaction
from sync.context import AppContext, pass_app
from sync.matching.engine import rematch
from sync.matching.explain import Explanation, explain_shared
from sync.matching.overrides import block, pin, resolve_account, revoke
from sync.partners.registry import sync_partners_from_config
from sync.reports.formats import FORMATS, Column, render
from sync.warehouse import require_head

log = structlog.get_logger(__name__)

EXPLAIN_COLUMNS = (
    Column("partner_id", "Partner id"),
    Column("partner_name", "Partner"),
    Column("matched", "Matched"),
    Column("method", "Method"),
    Column("key", "Key"),
    Column("score", "Score", numeric=True),
    Column("population", "Population"),
    Column("partner_row_key", "Partner row"),
    Column("override", "Override"),
    Column("reason", "Why"),
    Column("since", "Since"),
)


def _who(by: str | None) -> str:
    return by or os.environ.get("ECOSYNC_USER") or getpass.getuser()


@click.group("match")
def match() -> None:
    """Account matching: run it, override it (pin/block), explain it."""


@match.command("run")
@click.option("--full", is_flag=True, help="Re-match every account, not only changed ones.")
@pass_app
def run_command(app: AppContext, full: bool) -> None:
    """Re-match changed accounts and partner accounts now (the daemon does this every tick)."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        stats = rematch(session, app.config.matching, now=datetime.now(UTC), full=full)
    log.info("rematch", **stats.as_dict())
    click.echo(f"matched {'all' if full else stats.scope_accounts} accounts: "
               f"{stats.overlaps} overlaps in scope, {stats.inserted} new, {stats.ended} ended, "
               f"{stats.changed_accounts} accounts changed")


def _override_command(app: AppContext, action: str, account: str, partner_id: str,
                      source: str | None, row: str | None, population: str | None,
                      reason: str, by: str | None) -> None:
    engine = app.engine()
    require_head(engine)
    now = datetime.now(UTC)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        target = resolve_account(session, account, source)
        if action == "pin":
            override = pin(session, target, partner_id, who=_who(by), why=reason, now=now,
                           row_key=row, population=population)
        else:
            override = block(session, target, partner_id, who=_who(by), why=reason, now=now,
                             row_key=row)
        rematch(session, app.config.matching, now=now)
        after = [e for e in explain_shared(session, target.source, target.external_id,
                                           app.config.matching) if e.partner_id == partner_id]
    verb = "pinned" if action == "pin" else "blocked"
    click.echo(f"{verb} {target.source}/{target.external_id} ({target.name}) "
               f"{'to' if action == 'pin' else 'from'} {partner_id} (override #{override.id})")
    if not after:  # the partner names no population: its overlaps are not shown anywhere
        click.echo(f"now: not shown ({partner_id} shares no population by name)")
        return
    now_ = after[0]
    click.echo(f"now: {'overlap, ' + str(now_.population) if now_.matched else 'no overlap'}"
               f" ({now_.reason})")


_account_arg = click.argument("account")
_partner_arg = click.argument("partner_id", metavar="PARTNER")
_source_opt = click.option("--source", default=None,
                           help="CRM source of ACCOUNT (salesforce, hubspot) when ids repeat.")
_row_opt = click.option("--row", default=None, metavar="ROW_KEY",
                        help="Only this row of the partner's list (see `match explain`).")
_reason_opt = click.option("--reason", required=True, help="Why (kept for the audit trail).")
_by_opt = click.option("--by", default=None,
                       help="Who decides (default: $ECOSYNC_USER, else the login name).")


@match.command("pin")
@_account_arg
@_partner_arg
@_source_opt
@_row_opt
@click.option("--population", type=click.Choice(["customer", "open_opportunity", "prospect"]),
              default=None, help="Population of the overlap (default: the pinned row's, "
                                 "else prospect).")
@_reason_opt
@_by_opt
@pass_app
def pin_command(app: AppContext, account: str, partner_id: str, source: str | None, row: str | None,
                population: str | None, reason: str, by: str | None) -> None:
    """Force ACCOUNT to overlap PARTNER, whatever the rules say."""
    _override_command(app, "pin", account, partner_id, source, row, population, reason, by)


@match.command("block")
@_account_arg
@_partner_arg
@_source_opt
@_row_opt
@_reason_opt
@_by_opt
@pass_app
def block_command(app: AppContext, account: str, partner_id: str, source: str | None,
                  row: str | None, reason: str, by: str | None) -> None:
    """Forbid ACCOUNT to overlap PARTNER (or one of its rows), whatever the rules say."""
    _override_command(app, "block", account, partner_id, source, row, None, reason, by)


@match.command("revoke")
@click.argument("override_id", type=int)
@_by_opt
@pass_app
def revoke_command(app: AppContext, override_id: int, by: str | None) -> None:
    """Withdraw override OVERRIDE_ID; the rules decide again."""
    engine = app.engine()
    require_head(engine)
    now = datetime.now(UTC)
    with transaction(engine) as session:
        override = revoke(session, override_id, who=_who(by), now=now)
        rematch(session, app.config.matching, now=now)
    click.echo(f"revoked override #{override.id} ({override.action} "
               f"{override.source}/{override.account_external_id} {override.partner_id})")


@match.command("explain")
@_account_arg
@_source_opt
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True)
@pass_app
def explain_command(app: AppContext, account: str, source: str | None, fmt: str) -> None:
    """Why ACCOUNT (CRM record id or website) matched each partner, or why not, as far as
    each partner's sharing policy allows: a partner that names no population is left out."""
    engine = app.engine()
    require_head(engine)
    with transaction(engine) as session:
        sync_partners_from_config(session, app.config)
        target = resolve_account(session, account, source)
        found: list[Explanation] = explain_shared(session, target.source, target.external_id,
                                                  app.config.matching)
        title = (f"{target.name} ({target.source}/{target.external_id}; domain "
                 f"{target.domain_key or '-'}, name key {target.name_key or '-'}, DUNS "
                 f"{target.duns or '-'})")
    rows = [asdict(e) | {"matched": "yes" if e.matched else "no"} for e in found]
    if fmt == "json":
        rows = [asdict(e) for e in found]
    click.echo(render(rows, EXPLAIN_COLUMNS, fmt, title=title), nl=False)
