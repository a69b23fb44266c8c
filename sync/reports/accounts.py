"""`ecosync report accounts`: our named accounts ranked by overlap density, with their open
pipeline — the list a named-account pipeline review starts from.

Density is the number of distinct partners overlapping the account *as shared*: partners that
hide the population do not count; counts-only partners count but are not named
(sync.sharing decides both). Ties are ranked on open pipeline in the corporate currency,
converted by sync.attribution.open_pipeline (the rates attribution uses, in force today: the
one rule every output converts with); the amounts in their own currencies are shown beside
it. An amount whose currency has no rate is left out of the converted figure and counted in
`unconverted`. Domains are shown in Unicode (`bücher.de`, not `xn--...`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, false, func, literal, or_, select
from sqlalchemy.orm import Session

from schema.models import Account, Opportunity, Overlap, Partner
from schema.records import Population
from sync.attribution.open_pipeline import OpenPipeline
from sync.reports.formats import Column
from sync.sharing import COUNTED, account_visibility, share_level

CENT = Decimal("0.01")


@dataclass(frozen=True)
class AccountRow:
    source: str
    external_id: str
    name: str | None
    domain: str | None
    overlap_density: int
    partners: str  # `Partner (population)` as shared; counts-only partners are not named
    open_opportunities: int
    open_pipeline: Decimal  # in the corporate currency, what could be converted
    corporate_currency: str
    original: str  # `1200.00 EUR; 300.00 USD`: the open amounts in their own currencies
    unconverted: int  # open opportunities whose currency has no rate

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


COLUMNS = (
    Column("name", "Account"),
    Column("source", "Source"),
    Column("external_id", "Id", ident=True),
    Column("domain", "Domain", ident=True),
    Column("overlap_density", "Partners", numeric=True),
    Column("partners", "Overlapping partners"),
    Column("open_opportunities", "Open opps", numeric=True),
    Column("open_pipeline", "Open pipeline", numeric=True),
    Column("corporate_currency", "Currency"),
    Column("original", "In their currencies"),
    Column("unconverted", "Without a rate", numeric=True),
)


def unicode_domain(domain: str | None) -> str | None:
    """`xn--bcher-kva.de` as `bücher.de`; anything that does not decode stays as it is."""
    if not domain or "xn--" not in domain:
        return domain
    try:
        return domain.encode("ascii").decode("idna")
    except (UnicodeError, ValueError):
        return domain


def accounts_report(session: Session, *, limit: int = 50, min_density: int = 1,
                    pipeline: OpenPipeline | None = None) -> list[AccountRow]:
    """Accounts by descending shared overlap density, then open pipeline in the corporate
    currency (`pipeline`: the rates in force today; None: USD with no rates), then name."""
    from datetime import date

    money = pipeline or OpenPipeline("USD", date.today(), {})
    corporate = money.corporate
    shown = [
        and_(Overlap.partner_id == p.id, Overlap.population == pop.value)
        for p in session.scalars(select(Partner))
        for pop in Population
        if share_level(p.share, pop.value) in COUNTED
    ]
    if not shown:
        return []
    density = (
        select(Overlap.account_id, func.count(func.distinct(Overlap.partner_id)).label("n"))
        .where(Overlap.ended_at.is_(None), or_(*shown))
        .group_by(Overlap.account_id)
        .subquery("density")
    )
    pipe = money.by_account()
    converted = func.coalesce(pipe.c.amount, literal(0))
    found = session.execute(
        select(Account.id, Account.source, Account.external_id, Account.name,
               Account.domain_key, pipe.c.n, pipe.c.amount, pipe.c.unconverted)
        .join(density, density.c.account_id == Account.id)
        .outerjoin(pipe, and_(pipe.c.source == Account.source,
                              pipe.c.account_external_id == Account.external_id))
        .where(Account.is_deleted == false(), density.c.n >= min_density)
        .order_by(density.c.n.desc(), converted.desc(), Account.name, Account.id)
        .limit(limit)
    ).all()
    seen = account_visibility(session, [r[0] for r in found])
    originals = _originals(session, [(r[1], r[2]) for r in found], corporate)
    out = []
    for aid, source, ext, name, domain, opps, total, unconverted in found:
        vis = seen[aid]
        out.append(AccountRow(
            source, ext, name, unicode_domain(domain), vis.overlap_count, vis.partners_field(),
            int(opps or 0), Decimal(total or 0).quantize(CENT), corporate,
            originals.get((source, ext), ""), int(unconverted or 0)))
    return out


def _originals(session: Session, accounts: Sequence[tuple[str, str]],
               corporate: str) -> dict[tuple[str, str], str]:
    """`1200.00 EUR; 300.00 USD` per account: its open amounts by their own currency."""
    sums: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(dict)
    for source in {s for s, _ in accounts}:
        ids = [e for s, e in accounts if s == source]
        for ext, currency, amount in session.execute(
            select(Opportunity.account_external_id, Opportunity.currency,
                   func.sum(Opportunity.amount))
            .where(Opportunity.source == source, Opportunity.account_external_id.in_(ids),
                   Opportunity.status == "open", Opportunity.is_deleted == false(),
                   Opportunity.amount.is_not(None))
            .group_by(Opportunity.account_external_id, Opportunity.currency)):
            sums[(source, str(ext))][(currency or corporate).upper()] = Decimal(amount or 0)
    return {key: "; ".join(f"{Decimal(v).quantize(CENT)} {c}" for c, v in sorted(per.items()))
            for key, per in sums.items()}


def rows(report: Sequence[AccountRow]) -> list[dict[str, Any]]:
    return [r.as_row() for r in report]
