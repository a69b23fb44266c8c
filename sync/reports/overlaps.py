"""`ecosync report overlaps`: per partner, active overlaps by the partner's population and by
our own account's population (customer / open pipeline / prospect), by the one rule of
sync.populations that our exports and private matching share with partners, so that "our
customers" here are the accounts a partner sees as our customers.

Sharing (sync.sharing): populations a partner hides are left out; populations it shares as
counts only are pooled into one unnamed row, so no per-partner figure names them. Counts a
partner shared by private matching (`ecosync psi`) join that row too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from schema.models import Overlap, Partner
from schema.records import Population
from sync.populations import our_populations
from sync.psi.log import counted_populations
from sync.reports.formats import Column
from sync.sharing import COUNTED, NAMED, share_level, shown_population_counts

POOLED_NAME = "Partners sharing counts only"
OUR_STATUSES = ("customer", "open_pipeline", "prospect")
POPULATIONS = tuple(p.value for p in Population)


@dataclass
class PartnerOverlaps:
    partner_id: str | None  # None for the pooled counts-only row
    partner: str
    by_population: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(POPULATIONS, 0))
    by_our_status: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(OUR_STATUSES, 0))
    # Populations of the partner's list known by their size only (its exchange file shares
    # them as counts): sizes of its list, not overlaps.
    counts_only: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_population.values())

    def as_row(self, *, structured: bool = False) -> dict[str, Any]:
        """The report row; `structured` (JSON) keeps the counts-only sizes as a mapping of
        population to size, else they read as in the other columns (`open opps 143`)."""
        counts_only: Any = (dict(self.counts_only) if structured else "; ".join(
            f"{COUNTS_ONLY_LABELS.get(p, p)} {n:,}" for p, n in self.counts_only.items()))
        return {"partner_id": self.partner_id, "partner": self.partner, "total": self.total,
                **{f"partner_{k}": v for k, v in self.by_population.items()},
                **{f"our_{k}": v for k, v in self.by_our_status.items()},
                "counts_only": counts_only}


# A counts-only size named as the "Their ..." columns name the population.
COUNTS_ONLY_LABELS = {"customer": "customers", "open_opportunity": "open opps",
                      "prospect": "prospects"}


COLUMNS = (
    Column("partner", "Partner"),
    Column("total", "Overlaps", numeric=True),
    Column("partner_customer", "Their customers", numeric=True),
    Column("partner_open_opportunity", "Their open opps", numeric=True),
    Column("partner_prospect", "Their prospects", numeric=True),
    Column("our_customer", "Our customers", numeric=True),
    Column("our_open_pipeline", "Our open pipeline", numeric=True),
    Column("our_prospect", "Our prospects", numeric=True),
)
COUNTS_ONLY = Column("counts_only", "Their list, counts only")


def columns_for(report: Sequence[PartnerOverlaps]) -> tuple[Column, ...]:
    """The report's columns; the counts-only column when some partner shared counts only."""
    return (*COLUMNS, COUNTS_ONLY) if any(r.counts_only for r in report) else COLUMNS


def our_status() -> Select[Any]:
    """(account id, status) for every live account: our population (sync.populations: a won
    opportunity or a CRM type of customer, else an open opportunity, else prospect), with
    open_opportunity called open_pipeline as in the report's columns."""
    pops = our_populations().subquery("pops")
    status = case((pops.c.population == Population.OPEN_OPPORTUNITY.value, "open_pipeline"),
                  else_=pops.c.population)
    return select(pops.c.account_id.label("account_id"), status.label("status"))


def overlaps_report(session: Session) -> list[PartnerOverlaps]:
    """One row per partner with something shown, then the pooled counts-only row if any."""
    status = our_status().subquery("our_status")
    counts = session.execute(
        select(Overlap.partner_id, Overlap.population, status.c.status, func.count())
        .join(status, status.c.account_id == Overlap.account_id)
        .where(Overlap.ended_at.is_(None))
        .group_by(Overlap.partner_id, Overlap.population, status.c.status)
    ).all()
    partners = {p.id: p for p in session.scalars(select(Partner))}
    named: dict[str, PartnerOverlaps] = {}
    pooled = PartnerOverlaps(None, POOLED_NAME)
    for partner_id, population, our, n in counts:
        partner = partners[partner_id]
        level = share_level(partner.share, population)
        if level not in COUNTED:
            continue
        row = (named.setdefault(partner_id, PartnerOverlaps(partner_id, partner.name))
               if level in NAMED else pooled)
        row.by_population[population] = row.by_population.get(population, 0) + n
        row.by_our_status[our] += n
    # Populations a partner shared by private matching as counts only: a figure without
    # members, so it joins the pool by their population (our side of it is unknown).
    for _, population, n in counted_populations(session):
        pooled.by_population[population] = pooled.by_population.get(population, 0) + n
    # Populations a partner's exchange file shares as counts only: sizes, never members.
    for shown in shown_population_counts(session):
        row = pooled if shown.partner_id is None else named.setdefault(
            shown.partner_id, PartnerOverlaps(shown.partner_id, shown.partner_name))
        row.counts_only[shown.population] = shown.accounts
    out = sorted(named.values(), key=lambda r: (-r.total, r.partner.casefold()))
    return out + ([pooled] if pooled.total or pooled.counts_only else [])


def rows(report: Sequence[PartnerOverlaps], *, structured: bool = False
         ) -> list[dict[str, Any]]:
    return [r.as_row(structured=structured) for r in report]
