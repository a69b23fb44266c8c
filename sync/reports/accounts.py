"""`ecosync report accounts`: our named accounts ranked by overlap density, with their open
pipeline — the list a named-account pipeline review starts from.

Density is the number of distinct partners overlapping the account *as shared*: partners that
hide the population do not count; counts-only partners count but are not named
(sync.sharing decides both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, false, func, literal, or_, select
from sqlalchemy.orm import Session

from schema.models import Account, Opportunity, Overlap, Partner
from schema.records import Population
from sync.reports.formats import Column
from sync.sharing import COUNTED, account_visibility, share_level


@dataclass(frozen=True)
class AccountRow:
    source: str
    external_id: str
    name: str | None
    domain: str | None
    overlap_density: int
    partners: str  # `Partner (population)` as shared; counts-only partners are not named
    open_opportunities: int
    open_amount: Decimal
    currency: str | None  # None when open opportunities mix currencies

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


COLUMNS = (
    Column("name", "Account"),
    Column("source", "Source"),
    Column("external_id", "Id"),
    Column("domain", "Domain"),
    Column("overlap_density", "Partners", numeric=True),
    Column("partners", "Overlapping partners"),
    Column("open_opportunities", "Open opps", numeric=True),
    Column("open_amount", "Open amount", numeric=True),
    Column("currency", "Currency"),
)


def accounts_report(session: Session, *, limit: int = 50,
                    min_density: int = 1) -> list[AccountRow]:
    """Accounts by descending shared overlap density, then open amount, then name."""
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
    pipeline = (
        select(Opportunity.source, Opportunity.account_external_id,
               func.count().label("n"), func.sum(Opportunity.amount).label("amount"),
               func.min(Opportunity.currency).label("cur_min"),
               func.max(Opportunity.currency).label("cur_max"))
        .where(Opportunity.status == "open", Opportunity.is_deleted == false())
        .group_by(Opportunity.source, Opportunity.account_external_id)
        .subquery("pipeline")
    )
    amount = func.coalesce(pipeline.c.amount, literal(0))
    found = session.execute(
        select(Account.id, Account.source, Account.external_id, Account.name,
               Account.domain_key, density.c.n, pipeline.c.n, pipeline.c.amount,
               pipeline.c.cur_min, pipeline.c.cur_max)
        .join(density, density.c.account_id == Account.id)
        .outerjoin(pipeline, and_(pipeline.c.source == Account.source,
                                  pipeline.c.account_external_id == Account.external_id))
        .where(Account.is_deleted == false(), density.c.n >= min_density)
        .order_by(density.c.n.desc(), amount.desc(), Account.name, Account.id)
        .limit(limit)
    ).all()
    seen = account_visibility(session, [r[0] for r in found])
    out = []
    for aid, source, ext, name, domain, _n, opps, total, cur_min, cur_max in found:
        vis = seen[aid]
        out.append(AccountRow(
            source, ext, name, domain, vis.overlap_count, vis.partners_field(), int(opps or 0),
            Decimal(total or 0), cur_min if cur_min == cur_max else None))
    return out


def rows(report: Sequence[AccountRow]) -> list[dict[str, Any]]:
    return [r.as_row() for r in report]
