"""Named accounts ranked by overlap density and open pipeline in the corporate currency.

Density is the number of distinct partners overlapping the account as shared (counts-only
partners count, hidden ones do not: sync.sharing). Filters by partner and by a partner's
population use overlaps shared by name only: a list filtered on data a partner shares as
counts would name the accounts behind those counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, func, literal, select, text
from sqlalchemy.orm import Session

from schema.models import Account, CrmOwner, Overlap
from sync.attribution.open_pipeline import OpenPipeline
from sync.owners import OWNER_OF_ACCOUNT, owner_choices
from sync.populations import our_populations
from sync.sharing import COUNTED, NAMED, Policies, account_visibility
from sync.web.queries.common import Col, Paging, Table, UnknownPartner, View, money


@dataclass(frozen=True)
class Filters:
    partner: str = ""
    population: str = ""  # the partner's population
    our_population: str = ""
    owner: str = ""
    country: str = ""

    def query(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


def ranked(session: Session, pol: Policies, money_: OpenPipeline, filters: Filters,
           paging: Paging) -> View:
    if filters.partner and not pol.named_populations(filters.partner):
        raise UnknownPartner(filters.partner)
    counted = pol.overlap_clause(Overlap.partner_id, Overlap.population, COUNTED)
    named = pol.overlap_clause(Overlap.partner_id, Overlap.population, NAMED)
    density_where: list[Any] = [Overlap.ended_at.is_(None), counted]
    if filters.partner or filters.population:
        narrow: list[Any] = [Overlap.ended_at.is_(None), named]
        if filters.partner:
            narrow.append(Overlap.partner_id == filters.partner)
        if filters.population:
            narrow.append(Overlap.population == filters.population)
        density_where.append(Overlap.account_id.in_(select(Overlap.account_id).where(*narrow)))
    density = (select(Overlap.account_id, func.count(func.distinct(Overlap.partner_id))
                      .label("n"))
               .where(*density_where).group_by(Overlap.account_id).subquery("density"))
    pipe = money_.by_account()
    amount = func.coalesce(pipe.c.amount, literal(0))
    where: list[Any] = [Account.is_deleted == false()]
    if filters.owner:
        where.append(Account.owner_id == filters.owner)
    if filters.country:
        where.append(Account.country == filters.country)
    if filters.our_population:
        pops = our_populations().where(Account.id.in_(select(density.c.account_id))) \
            .subquery("ours")
        where.append(Account.id.in_(select(pops.c.account_id)
                                    .where(pops.c.population == filters.our_population)))
    found = session.execute(
        select(Account.id, Account.source, Account.external_id, Account.name,
               Account.domain_key, Account.owner_id, CrmOwner.name, Account.country,
               pipe.c.n, pipe.c.amount, pipe.c.unconverted)
        .join(density, density.c.account_id == Account.id)
        .outerjoin(CrmOwner, OWNER_OF_ACCOUNT)
        .outerjoin(pipe, and_(pipe.c.source == Account.source,
                              pipe.c.account_external_id == Account.external_id))
        .where(*where)
        .order_by(density.c.n.desc(), amount.desc(), Account.name, Account.id)
        .offset(paging.offset).limit(paging.size + 1)).all()
    page, nxt = paging.cut(list(found))
    seen = account_visibility(session, [r[0] for r in page])
    rows = []
    for rank, (aid, source, ext, name, domain, owner, owner_name, country, opps, total,
               unconverted) in enumerate(page, start=paging.offset + 1):
        vis = seen[aid]
        rows.append({"rank": rank, "source": source, "external_id": ext, "name": name,
                     "domain": domain, "owner": owner_name or owner, "owner_id": owner,
                     "owner_name": owner_name, "country": country,
                     "overlap_density": vis.overlap_count,
                     "partners": vis.partners_field(), "open_opportunities": int(opps or 0),
                     "open_pipeline": money(total or 0),
                     "unconverted_opportunities": int(unconverted or 0),
                     "_href": f"/accounts/{source}/{ext}"})
    cols = (Col("rank", "#", numeric=True), Col("name", "Account", link="_href"),
            Col("domain", "Domain"), Col("owner", "Owner"), Col("country", "Country"),
            Col("overlap_density", "Partners", numeric=True),
            Col("partners", "Overlapping partners (as shared)"),
            Col("open_opportunities", "Open opps", numeric=True),
            Col("open_pipeline", f"Open pipeline ({money_.corporate})", numeric=True),
            Col("unconverted_opportunities", "Opps without a rate", numeric=True))
    return View("Accounts by overlap density and open pipeline",
                facts={"filters": filters.query(), "currency": money_.corporate,
                       "partners": pol.named_partners(), "countries": countries(session),
                       "owners": owner_choices(session)},
                tables=[Table("accounts", "Accounts", cols, rows, page=paging.page,
                              next_page=nxt)])


# One index probe per distinct country (a loose index scan), not a pass over every account:
# the filter's choices cost the same for a hundred accounts as for a million.
_COUNTRIES = text("""
WITH RECURSIVE c(country) AS (
  SELECT MIN(country) FROM accounts
  UNION ALL
  SELECT (SELECT MIN(a.country) FROM accounts a WHERE a.country > c.country)
  FROM c WHERE c.country IS NOT NULL
)
SELECT country FROM c WHERE country IS NOT NULL
""")


def countries(session: Session) -> list[str]:
    """The countries our accounts are in, for the Accounts page's country filter."""
    return [str(c) for c in session.scalars(_COUNTRIES)]
