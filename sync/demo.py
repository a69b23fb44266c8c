"""`ecosync demo`: the whole loop on the embedded default, with no configuration at all.

Starts both CRM emulators with seeded data and partner CSV files, creates a SQLite
warehouse, provisions the owned fields, runs a backfill, then two ticks with changes in
between (an opportunity closes, a website changes), and prints what matched and a few CRM
records as a rep sees them. Everything runs through the real connectors and client
libraries over HTTPS on localhost.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.factory import build_connectors
from sandbox.world import World, running_world
from schema.db import make_engine
from schema.models import Account, Overlap, Partner
from schema.owned_fields import OWNED_FIELDS
from schema.records import Stream
from sync import warehouse
from sync.config import Config
from sync.logs import MASKER
from sync.tick import TickOptions, TickReport, run_tick


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
        step(out, "tick 1 (after changes)", result, run_tick(engine, config, connectors))
        step(out, "tick 2 (no changes)", result, run_tick(engine, config, connectors))
        show_records(out, world, engine, config)
        engine.dispose()
    out.print(f"demo files in {base}")
    return result


def step(out: Console, title: str, result: DemoResult, report: TickReport) -> None:
    result.reports.append(report)
    counts = report.counts
    pulled = sum(v for k, v in counts.items() if k.startswith("pulled."))
    written = sum(v for k, v in counts.items() if k.startswith("written."))
    fields = sum(v for k, v in counts.items() if k.startswith("fields_written."))
    calls = ", ".join(f"{k} {v}" for k, v in report.api_calls.items())
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
    sf = world.salesforce
    if sf is not None:
        opp = next((o for o in sf.records("Opportunity")
                    if not o.get("IsClosed") and o.get("AccountId") in overlapping), None)
        if opp is not None:
            sf.close_opportunity(opp["Id"], won=True)
            lines.append(f"Salesforce opportunity {opp['Id']} ({opp.get('Name')}) closed won")
        partner_row = next(iter(world.seed.partner_rows.values()))[0]
        domain = partner_row.get("domain") or partner_row.get("website")
        if unmatched and domain:
            sf.update("Account", unmatched, {"Website": f"https://www.{domain}"})
            lines.append(f"Salesforce account {unmatched} website changed to www.{domain}")
    return lines


def show_records(out: Console, world: World, engine: Engine, config: Config) -> None:
    with Session(engine) as session:
        ids = session.execute(
            select(Account.source, Account.external_id)
            .join(Overlap, Overlap.account_id == Account.id)
            .where(Overlap.ended_at.is_(None))
            .group_by(Account.source, Account.external_id)
            .order_by(func.count().desc(), Account.external_id).limit(6)
        ).all()
    getters: dict[str, Callable[[str], dict[str, Any] | None]] = {}
    if world.salesforce is not None:
        getters[config.crm.salesforce.name] = lambda i: world.salesforce.get("Account", i)  # type: ignore[union-attr]
    if world.hubspot is not None:
        getters[config.crm.hubspot.name] = lambda i: world.hubspot.get("companies", i)  # type: ignore[union-attr]
    table = Table("CRM", "record", "name", *[f.logical for f in OWNED_FIELDS
                                            if f.stream is Stream.ACCOUNTS],
                  title="accounts as a rep sees them (fields written by ecosync)")
    for source, ext in ids:
        rec = getters[source](ext) or {}
        names = [f.salesforce if source == config.crm.salesforce.name else f.hubspot
                 for f in OWNED_FIELDS if f.stream is Stream.ACCOUNTS]
        label = rec.get("Name") or rec.get("name") or ""
        table.add_row(source, ext, str(label), *[str(rec.get(n) or "") for n in names])
    out.print(table)
