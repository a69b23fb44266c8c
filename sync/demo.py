"""`ecosync demo`: the whole loop on the embedded default, with no configuration at all.

Starts both CRM emulators with seeded data and partner CSV files, creates a SQLite
warehouse, provisions the owned fields, runs a backfill, then two ticks with changes in
between (an opportunity closes, a website changes), and prints what matched and a few CRM
records as a rep sees them. Everything runs through the real connectors and client
libraries over HTTPS on localhost.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from sandbox.world import World, running_world
from schema.db import make_engine
from schema.models import Account, Overlap, Partner
from schema.owned_fields import OWNED_FIELDS
from schema.records import Stream
from sync import warehouse
from sync.config import Config
from sync.logs import MASKER
from sync.matching.keys import registrable_domain
from sync.tick import TickOptions, TickReport, run_tick
from sync.wiring import build_connectors


@dataclass
class DemoResult:
    directory: Path
    reports: list[TickReport] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)


def run_demo(
    directory: Path | None = None, *, accounts: int = 300, opportunities: int = 600,
    partners: int = 3, seed: int = 7, console: Console | None = None,
) -> DemoResult:
    out = console or Console()
    base = directory or Path(tempfile.mkdtemp(prefix="ecosync-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    result = DemoResult(base)
    with running_world(base / "sandbox", seed=seed, accounts=accounts,
                       opportunities=opportunities, partners=partners) as world:
        MASKER.add(world.env().values())
        url = f"sqlite:///{base / 'ecosync.db'}"
        config = world.config(url)
        engine = make_engine(url)
        out.rule("[bold]ecosync demo")
        out.print(f"sandbox Salesforce at {world.salesforce.url if world.salesforce else '-'}, "
                  f"HubSpot at {world.hubspot.url if world.hubspot else '-'}")
        out.print(f"{len(world.seed.sf_accounts)} Salesforce accounts, "
                  f"{len(world.seed.hs_companies)} HubSpot companies, "
                  f"{len(world.seed.partners)} partners sharing "
                  f"{sum(len(r) for r in world.seed.partner_rows.values())} accounts")
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
            out.print(f"[cyan]change in the CRM:[/cyan] {line}")
        # Salesforce timestamps have whole seconds and a tick reads up to its own start:
        # let the second of the change pass so the next tick sees it.
        time.sleep(1.1)
        step(out, "tick 1 (after changes)", result, run_tick(engine, config, connectors))
        step(out, "tick 2 (no changes)", result, run_tick(engine, config, connectors))
        show_records(out, world, engine, config)
        engine.dispose()
    out.print(f"demo files in {base}")
    out.print(f"browse it: ecosync web --warehouse sqlite:///{base / 'ecosync.db'}")
    return result


def step(out: Console, title: str, result: DemoResult, report: TickReport) -> None:
    result.reports.append(report)
    counts = report.counts
    pulled = sum(v for k, v in counts.items() if k.startswith("pulled."))
    written = sum(v for k, v in counts.items() if k.startswith("written."))
    fields = sum(v for k, v in counts.items() if k.startswith("fields_written."))
    calls = ", ".join(f"{k} {v}" for k, v in report.api_calls.items() if "." not in k)
    out.print(f"[bold]{title}[/bold]: pulled {pulled}, wrote {fields} fields on {written} "
              f"records; API calls: {calls}; status {report.status}")


def show_matches(out: Console, engine: Engine) -> None:
    with Session(engine) as session:
        rows = session.execute(
            select(Partner.name, Account.source, Overlap.population, func.count())
            .join(Overlap, Overlap.partner_id == Partner.id)
            .join(Account, Account.id == Overlap.account_id)
            .where(Overlap.ended_at.is_(None))
            .group_by(Partner.name, Account.source, Overlap.population)
            .order_by(Partner.name, Account.source, Overlap.population)
        ).all()
    table = Table("partner", "CRM", "population", "overlaps", title="what matched")
    for name, source, population, count in rows:
        table.add_row(name, source, population, str(count))
    out.print(table)


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
    sf = world.salesforce
    if sf is None:
        return lines
    opp = next((o for o in sf.records("Opportunity")
                if not o.get("IsClosed") and o.get("AccountId") in overlapping), None)
    if opp is not None:
        sf.close_opportunity(opp["Id"], won=True)
        lines.append(f"Salesforce opportunity {opp['Id']} ({opp.get('Name')}) closed won")
    # A partner's customer that is not yet one of our accounts' domains: after the change,
    # the account overlaps that partner.
    for partner_id, rows in world.seed.partner_rows.items():
        for row in rows:
            key = registrable_domain(row.get("domain") or row.get("website"))
            if key and key not in taken and unmatched:
                sf.update("Account", unmatched, {"Website": f"https://www.{key}/"})
                lines.append(f"Salesforce account {unmatched} website changed to www.{key} "
                             f"(a {row.get('population') or 'listed'} account of {partner_id})")
                world.extra["changed_account"] = unmatched
                world.extra["closed_opportunity"] = opp["Id"] if opp else None
                return lines
    return lines


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def show_records(out: Console, world: World, engine: Engine, config: Config) -> None:
    with Session(engine) as session:
        ids: list[tuple[str, str]] = [(r[0], r[1]) for r in session.execute(
            select(Account.source, Account.external_id)
            .join(Overlap, Overlap.account_id == Account.id)
            .where(Overlap.ended_at.is_(None))
            .group_by(Account.source, Account.external_id)
            .order_by(func.count().desc(), Account.external_id).limit(3))]
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
        table = Table(show_header=False, title=f"{source} {ext}: "
                      f"{rec.get('Name') or rec.get('name') or ''}", title_justify="left")
        for f in OWNED_FIELDS:
            if f.stream is Stream.ACCOUNTS:
                table.add_row(f.label, _show(rec.get(f.salesforce if sf_side else f.hubspot)))
        out.print(table)
    opp_id = world.extra.get("closed_opportunity")
    if opp_id and world.salesforce is not None:
        rec = world.salesforce.get("Opportunity", opp_id) or {}
        table = Table(show_header=False, title_justify="left",
                      title=f"salesforce opportunity {opp_id}: {rec.get('Name')} "
                            f"({rec.get('StageName')})")
        for f in OWNED_FIELDS:
            if f.stream is Stream.OPPORTUNITIES:
                table.add_row(f.label, _show(rec.get(f.salesforce)))
        out.print(table)
