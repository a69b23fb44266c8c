"""`ecosync demo`: the whole loop on the embedded default, with no configuration at all.

Starts both CRM emulators with seeded data and partner CSV files, creates a SQLite
warehouse, provisions the owned fields, runs a backfill, then two ticks with changes in
between (an opportunity closes, a website changes), and prints what matched and a few CRM
records as a rep sees them. Everything runs through the real connectors and client
libraries over HTTPS on localhost.

Everything it prints about partners goes through sync.sharing, like any other output: the
"what matched" table is the overlaps report (hidden populations left out, counts-only ones
pooled unnamed), the records shown are the fields ecosync wrote, and the changes it makes
name a partner only where that partner shares the population by name. It ends by writing an
`ecosync.toml` in its folder and printing the commands to try next there.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sandbox.world import World, running_world
from schema.db import make_engine
from schema.models import Account, Overlap, Partner
from schema.owned_fields import OWNED_FIELDS
from schema.records import Stream
from sync import terminal, warehouse
from sync.attribution.open_pipeline import open_pipeline
from sync.config import Config
from sync.logs import MASKER
from sync.matching.keys import registrable_domain
from sync.partners.csv_read import parse_population
from sync.reports import accounts as accounts_report
from sync.reports import overlaps as overlaps_report
from sync.reports.formats import render
from sync.sharing import NAMED, share_level
from sync.summary import api_calls, tick_summary
from sync.tick import TickOptions, TickReport, run_tick
from sync.wiring import build_connectors


@dataclass
class DemoResult:
    directory: Path
    reports: list[TickReport] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    config_path: Path | None = None


def run_demo(
    directory: Path | None = None, *, accounts: int = 300, opportunities: int = 600,
    partners: int = 3, seed: int = 7, console: Console | None = None,
    today: date | None = None,
) -> DemoResult:
    out = console or terminal.console()
    base = (directory or Path(tempfile.mkdtemp(prefix="ecosync-demo-"))).resolve()
    base.mkdir(parents=True, exist_ok=True)
    result = DemoResult(base)
    with running_world(base / "sandbox", seed=seed, accounts=accounts,
                       opportunities=opportunities, partners=partners, today=today) as world:
        MASKER.add(world.env().values())
        url = f"sqlite:///{base / 'ecosync.db'}"
        config = world.config(url)
        engine = make_engine(url)
        out.rule("[bold]ecosync demo")
        out.print(f"sandbox Salesforce at {world.salesforce.url if world.salesforce else '-'}, "
                  f"HubSpot at {world.hubspot.url if world.hubspot else '-'}")
        out.print(f"{len(world.seed.sf_accounts)} Salesforce accounts, "
                  f"{len(world.seed.hs_companies)} HubSpot companies, "
                  f"{len(world.seed.partners)} partner lists")
        out.print(f"warehouse {url}: revision {warehouse.upgrade(engine)}")
        connectors = build_connectors(config)
        for connector in connectors:
            created = [s for s in connector.ensure_fields(check_only=False) if s.created]
            out.print(f"{connector.name}: fields ensured ({len(created)} created)")

        step(out, "backfill", result, run_tick(
            engine, config, connectors, options=TickOptions(backfill=True, kind="backfill")))
        show_matches(out, engine)

        result.changes = make_changes(world, engine)
        for line in result.changes:
            out.print(terminal.line("[cyan]change in the CRM:[/cyan] ", terminal.value(line)))
        # Salesforce timestamps have whole seconds and a tick reads up to the CRM's clock at
        # its start: the emulated CRMs' clocks move on a few seconds so the next tick sees it.
        advance_clocks(world, seconds=5)
        step(out, "tick 1 (after changes)", result, run_tick(engine, config, connectors))
        # It re-reads ecosync's own write-back (inside the lookback window), all unchanged.
        step(out, "tick 2 (no changes)", result, run_tick(engine, config, connectors))
        show_records(out, world, engine, config)
        engine.dispose()
        result.config_path = base / "ecosync.toml"
        result.config_path.write_text(world.config_toml(url, crms=False), encoding="utf-8")
    next_steps(out, result, world)
    return result


def advance_clocks(world: World, *, seconds: float) -> None:
    """Time passes in the emulated CRMs (the demo does not wait for it)."""
    for sandbox in (world.salesforce, world.hubspot):
        if sandbox is not None:
            sandbox.clock.advance(seconds)


def step(out: Console, title: str, result: DemoResult, report: TickReport) -> None:
    result.reports.append(report)
    out.print(terminal.line(f"[bold]{title}[/bold]: ", terminal.value(tick_summary(report)),
                            f"; {api_calls(report)}; {report.status}"))


def show_matches(out: Console, engine: Engine) -> None:
    """What matched, per partner, as the partners share it (the overlaps report)."""
    with Session(engine) as session:
        rows = overlaps_report.rows(overlaps_report.overlaps_report(session))
    out.print(render(rows, overlaps_report.COLUMNS, "table", title="what matched",
                     width=out.width), end="")


def make_changes(world: World, engine: Engine) -> list[str]:
    """Close an open opportunity on an overlapping account; point a website at a partner's."""
    lines: list[str] = []
    with Session(engine) as session:
        overlapping = set(session.scalars(
            select(Account.external_id).join(Overlap, Overlap.account_id == Account.id)
            .where(Overlap.ended_at.is_(None), Account.source == "salesforce")))
        unmatched = session.scalars(
            select(Account.external_id).where(
                Account.source == "salesforce", Account.is_deleted.is_(False),
                ~Account.id.in_(select(Overlap.account_id))).order_by(Account.external_id)
        ).first()
        taken = set(session.scalars(select(Account.domain_key).where(
            Account.domain_key.is_not(None))))
        shares = {p.id: (p.share or {}, p.name) for p in session.scalars(select(Partner))}
    sf = world.salesforce
    if sf is None:
        return lines
    opp = next((o for o in sf.records("Opportunity")
                if not o.get("IsClosed") and o.get("AccountId") in overlapping), None)
    if opp is not None:
        sf.close_opportunity(opp["Id"], won=True)
        lines.append(f"Salesforce opportunity {opp['Id']} ({opp.get('Name')}) closed won")
    # An account of a partner list that is not yet one of our accounts' domains: after the
    # change, our account overlaps that partner. Only a population the partner shares by
    # name is picked, so the line may name the partner (sync.sharing decides).
    for partner_id, rows in world.seed.partner_rows.items():
        share, name = shares.get(partner_id, ({}, partner_id))
        for row in rows:
            key = registrable_domain(row.get("domain") or row.get("website"))
            population = _population(row.get("population"))
            if (key and key not in taken and unmatched and population
                    and share_level(share, population) in NAMED):
                sf.update("Account", unmatched, {"Website": f"https://www.{key}/"})
                lines.append(f"Salesforce account {unmatched} website changed to www.{key} "
                             f"(a {population.replace('_', ' ')} of {name})")
                world.extra["changed_account"] = unmatched
                world.extra["closed_opportunity"] = opp["Id"] if opp else None
                return lines
    return lines


def _population(form: str | None) -> str | None:
    """A partner file's population spelling as the population it means, or None."""
    found = parse_population(form or "")
    return None if found is None else found.value


def _crm_value(value: object) -> object:
    """A field value as read from a CRM: ISO timestamps become datetimes (shown to the
    second, in UTC), like every other timestamp ecosync prints."""
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _record_table(title: str, values: list[tuple[str, object]]) -> Any:
    table = terminal.table("field", "value", title=title, show_header=False)
    for label, value in values:
        terminal.add_row(table, (label, _crm_value(value)))
    return table


def show_records(out: Console, world: World, engine: Engine, config: Config) -> None:
    """The fields ecosync wrote on the accounts with the most partners as shared, read back
    from the CRMs, as a rep sees them."""
    with Session(engine) as session:
        top = accounts_report.accounts_report(
            session, limit=3, pipeline=open_pipeline(session, config.attribution,
                                                     datetime.now(UTC).date()))
    ids = [(r.source, r.external_id) for r in top]
    changed = world.extra.get("changed_account")
    if changed:
        ids.insert(0, (config.crm.salesforce.name, changed))
    out.rule("accounts as a rep sees them (fields written by ecosync)")
    for source, ext in ids:
        sf_side = source == config.crm.salesforce.name
        if sf_side and world.salesforce is not None:
            rec: dict[str, Any] = world.salesforce.get("Account", ext) or {}
        elif world.hubspot is not None:
            rec = dict(world.hubspot.get("companies", ext))
        else:
            continue
        out.print(_record_table(
            f"{source} {ext}: {rec.get('Name') or rec.get('name') or ''}",
            [(f.label, rec.get(f.salesforce if sf_side else f.hubspot))
             for f in OWNED_FIELDS if f.stream is Stream.ACCOUNTS]))
    opp_id = world.extra.get("closed_opportunity")
    if opp_id and world.salesforce is not None:
        rec = world.salesforce.get("Opportunity", opp_id) or {}
        out.print(_record_table(
            f"salesforce opportunity {opp_id}: {rec.get('Name')} ({rec.get('StageName')})",
            [(f.label, rec.get(f.salesforce))
             for f in OWNED_FIELDS if f.stream is Stream.OPPORTUNITIES]))


def next_steps(out: Console, result: DemoResult, world: World) -> None:
    """The commands to try next, in the demo's folder (its ecosync.toml is the default)."""
    account = world.extra.get("changed_account") or "ACCOUNT_ID"
    opp = world.extra.get("closed_opportunity") or "OPPORTUNITY_ID"
    out.rule("next")
    out.print(terminal.line("the warehouse and a config for it are in ",
                            terminal.value(result.directory), "; try:"))
    for command in (f"cd {result.directory}", "ecosync report accounts",
                    "ecosync report overlaps", "ecosync report attribution",
                    f"ecosync match explain {account}", f"ecosync attribution explain {opp}",
                    f"ecosync history {account}", "ecosync partners list",
                    "ecosync sandbox serve   # CRM emulators of your own, ready config",
                    "ecosync web   # the same warehouse in a browser: http://127.0.0.1:8080/"):
        out.print(terminal.line("  ", terminal.value(command)))
