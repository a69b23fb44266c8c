"""One side of an exchange: a migrated warehouse with our accounts and their opportunities,
and the config naming the other side as a partner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from schema.db import transaction
from schema.models import Account, Opportunity, Overlap
from sync.config import Config, parse_config
from sync.matching.engine import rematch
from sync.matching.keys import normalize_name, registrable_domain
from sync.partners.registry import sync_partners_from_config
from sync.populations import our_populations

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POPULATIONS = ("customer", "open_opportunity", "prospect")


@dataclass(frozen=True)
class Company:
    name: str
    domain: str
    population: str  # how this side's CRM makes it: a won deal, an open one, or neither
    duns: str | None = None


def company(i: int, population: str) -> Company:
    return Company(f"Company {i:03d} Holdings", f"company{i:03d}.com", population,
                   f"{100_000_000 + i:09d}" if i % 5 == 0 else None)


def build_side(engine: Engine, companies: Sequence[Company], *, source: str = "salesforce",
               prefix: str = "001") -> None:
    with transaction(engine) as session:
        for n, c in enumerate(companies):
            ext = f"{prefix}{n:012d}"
            session.add(Account(
                source=source, external_id=ext, name=c.name, website=f"https://www.{c.domain}/",
                domain_key=registrable_domain(c.domain), name_key=normalize_name(c.name),
                duns=c.duns, modified_at=NOW, ingested_at=NOW))
            if c.population != "prospect":
                won = c.population == "customer"
                session.add(Opportunity(
                    source=source, external_id=f"006{prefix}{n:09d}", account_external_id=ext,
                    name=f"{c.name} deal", stage="Closed Won" if won else "Negotiation",
                    status="won" if won else "open", amount=Decimal("1000"), currency="USD",
                    close_date=date(2026, 2, 1) if won else date(2026, 6, 1),
                    created_at=NOW - timedelta(days=30 + n), modified_at=NOW,
                    ingested_at=NOW))


def side_config(url: str, *, organisation: str, partner_id: str, partner_name: str,
                outbound: Mapping[str, str], share: Mapping[str, str] | None = None,
                extra: Mapping[str, Any] | None = None) -> Config:
    partner: dict[str, Any] = {"id": partner_id, "name": partner_name,
                               "outbound": dict(outbound)}
    if share is not None:
        partner["share"] = dict(share)
    partner.update(extra or {})
    return parse_config({"warehouse": {"url": url}, "exchange": {"organisation": organisation},
                         "partners": [partner]}, "<test>", {})


def match(engine: Engine, config: Config) -> None:
    with transaction(engine) as session:
        sync_partners_from_config(session, config, now=NOW)
        rematch(session, config.matching, now=NOW, full=True)


def overlap_matrix(engine: Engine, partner_id: str) -> dict[tuple[str, str], int]:
    """(our population, the partner's population) -> accounts of ours overlapping."""
    pops = our_populations().subquery()
    with Session(engine) as session:
        rows = session.execute(
            select(pops.c.population, Overlap.population, Overlap.account_id)
            .join(pops, pops.c.account_id == Overlap.account_id)
            .where(Overlap.partner_id == partner_id, Overlap.ended_at.is_(None)))
        out: dict[tuple[str, str], int] = {}
        for ours, theirs, _ in rows:
            out[(ours, theirs)] = out.get((ours, theirs), 0) + 1
    return out
