"""`ecosync report next-accounts`: per partner, the named accounts to work jointly this week.

The list a partner manager and the partner's rep go through together; the weekly digest
(`digest.weekly`) sends its top rows, and the web view's partner page can call
`next_accounts()` as it is. Each row's score (0-100) is the sum of five documented parts, and
`why` spells out each part for that row:

- their population, 30 / 20 / 10: the partner's customer / open opportunity / prospect;
- our open pipeline, 0-30: open amount in the corporate currency weighted by stage, on a log
  scale (30 at 1,000,000 or more);
- recency, 0-15: 15 the day the overlap appeared, falling linearly to 0 at 90 days;
- owner shared, 10: the partner shares its account owner (full level);
- joint pursuit, 15: already in joint pursuit this quarter (the working-set rule), so the
  list a partner works stays steady from week to week.

Stage weights are the default win probabilities of Salesforce's and HubSpot's standard stages
(`STAGE_PROBABILITY`); another stage counts 50%. Amounts convert as every open pipeline does
(sync.attribution.open_pipeline: the rates attribution uses, in force today); an amount in a
currency without a rate is left out and named in `why`.

Sharing (sync.sharing): a partner is listed only through the populations it shares by name;
the owner only where it shares in full. Counts-only and hidden overlaps never appear here: a
list per partner would name the partner.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, false, select
from sqlalchemy.orm import Session

from schema.models import Account, Opportunity, Overlap, Partner, PartnerAccount
from schema.records import Population
from sync.attribution.open_pipeline import OpenPipeline
from sync.attribution.periods import Quarter
from sync.errors import UserError
from sync.reports.formats import Column
from sync.reports.working_set import joint_pursuit
from sync.sharing import NAMED, SharedOverlap, share_level, visibility

POPULATION_POINTS = {Population.CUSTOMER.value: 30.0, Population.OPEN_OPPORTUNITY.value: 20.0,
                     Population.PROSPECT.value: 10.0}
PIPELINE_POINTS, PIPELINE_CAP = 30.0, Decimal(1_000_000)
RECENCY_POINTS, RECENCY_DAYS = 15.0, 90
CONTACT_POINTS = 10.0
JOINT_POINTS = 15.0
UNKNOWN_STAGE = Decimal("0.5")
STAGE_PROBABILITY: Mapping[str, Decimal] = {k.casefold(): Decimal(v) for k, v in {
    # Salesforce's standard Opportunity stages and their default probabilities
    "Prospecting": "0.10", "Qualification": "0.10", "Needs Analysis": "0.20",
    "Value Proposition": "0.50", "Id. Decision Makers": "0.60",
    "Perception Analysis": "0.70", "Proposal/Price Quote": "0.75",
    "Negotiation/Review": "0.90",
    # HubSpot's default sales pipeline
    "appointmentscheduled": "0.20", "qualifiedtobuy": "0.40",
    "presentationscheduled": "0.60", "decisionmakerboughtin": "0.80",
    "contractsent": "0.90",
}.items()}
DEFAULT_LIMIT = 15
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class OpenOpp:
    external_id: str
    name: str | None
    stage: str | None
    amount: Decimal | None
    currency: str | None
    corporate_amount: Decimal | None  # None: no rate for its currency today


@dataclass(frozen=True, slots=True)
class Pipeline:
    count: int
    amount: Decimal  # corporate currency, converted today
    weighted: Decimal  # each opportunity's amount times its stage's probability
    stage: str | None  # stage of the largest open opportunity
    unconverted: tuple[str, ...]  # currencies with no rate today

    @classmethod
    def of(cls, opps: Sequence[OpenOpp]) -> Pipeline:
        amount = weighted = Decimal(0)
        missing: set[str] = set()
        for o in opps:
            if o.corporate_amount is None:
                if o.amount:
                    missing.add(o.currency or "?")
                continue
            amount += o.corporate_amount
            weighted += o.corporate_amount * stage_probability(o.stage)
        largest = max(opps, key=lambda o: o.corporate_amount or Decimal(0), default=None)
        return cls(len(opps), amount, weighted, largest.stage if largest else None,
                   tuple(sorted(missing)))


EMPTY_PIPELINE = Pipeline(0, Decimal(0), Decimal(0), None, ())


def stage_probability(stage: str | None) -> Decimal:
    return STAGE_PROBABILITY.get((stage or "").casefold(), UNKNOWN_STAGE)


def open_opportunities(session: Session, account_ids: Sequence[int], *,
                       pipeline: OpenPipeline) -> dict[int, list[OpenOpp]]:
    """Open, live opportunities per account, largest first, with corporate amounts today."""
    out: dict[int, list[OpenOpp]] = defaultdict(list)
    converted = pipeline.corporate_amount(Opportunity.amount, Opportunity.currency)
    for start in range(0, len(account_ids), _CHUNK):
        rows = session.execute(
            select(Account.id, Opportunity.external_id, Opportunity.name, Opportunity.stage,
                   Opportunity.amount, Opportunity.currency, converted)
            .join(Opportunity, and_(Opportunity.source == Account.source,
                                    Opportunity.account_external_id == Account.external_id))
            .where(Account.id.in_(account_ids[start:start + _CHUNK]),
                   Opportunity.status == "open", Opportunity.is_deleted == false()))
        for aid, ext, name, stage, amount, currency, corporate_amount in rows:
            out[aid].append(OpenOpp(ext, name, stage, amount, currency, corporate_amount))
    for opps in out.values():
        opps.sort(key=lambda o: (-(o.corporate_amount or Decimal(0)), o.external_id))
    return out


@dataclass(frozen=True)
class NextAccount:
    partner_id: str
    partner: str
    rank: int
    account_id: int
    account: str | None
    source: str
    external_id: str
    their_population: str
    open_opportunities: int
    open_pipeline: Decimal
    currency: str
    stage: str | None
    overlap_since: date
    contact: str | None  # the partner's account owner, shared in full only
    joint_pursuit: bool
    score: float
    why: str

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


COLUMNS = (
    Column("partner", "Partner"), Column("rank", "#", numeric=True),
    Column("account", "Account"), Column("source", "Source"), Column("external_id", "Id"),
    Column("their_population", "Their population"),
    Column("open_pipeline", "Open pipeline", numeric=True), Column("currency", "Currency"),
    Column("stage", "Stage"), Column("overlap_since", "Overlap since"),
    Column("contact", "Partner contact"), Column("joint_pursuit", "Joint pursuit"),
    Column("score", "Score", numeric=True), Column("why", "Why"),
)


@dataclass(frozen=True, slots=True)
class Score:
    total: float
    why: str


def score(population: str, pipeline: Pipeline, age_days: int, contact: bool, joint: bool,
          corporate: str) -> Score:
    """The documented score of one (partner, account) pair, with its explanation."""
    parts: list[tuple[float, str]] = [
        (POPULATION_POINTS.get(population, 0.0), f"their {population}")]
    if pipeline.weighted > 0:
        ratio = min(1.0, math.log10(1 + float(pipeline.weighted))
                    / math.log10(1 + float(PIPELINE_CAP)))
        stage = f", largest at {pipeline.stage}" if pipeline.stage else ""
        parts.append((PIPELINE_POINTS * ratio,
                      f"open pipeline {pipeline.amount:,.0f} {corporate} "
                      f"({pipeline.weighted:,.0f} stage-weighted{stage})"))
    else:
        parts.append((0.0, "no open pipeline"))
    if pipeline.unconverted:
        parts.append((0.0, f"no rate today for {', '.join(pipeline.unconverted)}"))
    age = max(0, age_days)
    parts.append((RECENCY_POINTS * max(0.0, 1 - age / RECENCY_DAYS),
                  f"overlap {age} day{'s' if age != 1 else ''} old"))
    if contact:
        parts.append((CONTACT_POINTS, "owner shared"))
    if joint:
        parts.append((JOINT_POINTS, "in joint pursuit this quarter"))
    total = round(sum(p for p, _ in parts), 1)
    return Score(total, " + ".join(f"{label} {p:.1f}" for p, label in parts)
                 + f" = {total:.1f}")


def named_partners(session: Session, partner: str | None = None) -> list[tuple[str, str,
                                                                                 dict[str, Any]]]:
    """(id, name, share) of partners sharing at least one population by name."""
    rows = [(p.id, p.name, p.share or {}) for p in
            session.scalars(select(Partner).order_by(Partner.name, Partner.id))]
    if partner is not None:
        rows = [r for r in rows if r[0] == partner]
        if not rows:
            raise UserError(f"--partner {partner}: no such partner; `ecosync partners list` "
                            "shows the ids")
    return [r for r in rows if any(share_level(r[2], p.value) in NAMED for p in Population)]


def next_accounts(session: Session, *, today: date, pipeline: OpenPipeline | None = None,
                  partner: str | None = None,
                  limit: int = DEFAULT_LIMIT) -> list[NextAccount]:
    """Per named partner (by name), its top `limit` accounts by score, best first
    (`pipeline`: open amounts converted today; None: USD with no rates)."""
    money = pipeline or OpenPipeline("USD", today, {})
    corporate = money.corporate
    joint = {(pid, aid) for pid, _pop, aid in joint_pursuit(session, Quarter.of(today))}
    out: list[NextAccount] = []
    for pid, pname, share in named_partners(session, partner):
        pops = [p.value for p in Population if share_level(share, p.value) in NAMED]
        best = _top_for_partner(session, (pid, pname, share), pops, joint, money, today,
                                limit)
        for rank, r in enumerate(best, 1):
            out.append(NextAccount(
                pid, pname, rank, r.account_id, r.name, r.source, r.external_id, r.population,
                r.pipeline.count, r.pipeline.amount, corporate, r.pipeline.stage,
                r.first_seen.date(), r.contact, (pid, r.account_id) in joint, r.score.total,
                r.score.why))
    return out


@dataclass(frozen=True, slots=True)
class _Ranked:
    score: Score
    account_id: int
    name: str | None
    source: str
    external_id: str
    population: str
    first_seen: datetime
    pipeline: Pipeline
    contact: str | None

    def order(self) -> tuple[float, str, int]:
        """Ascending = better: higher score, then account name, then id."""
        return -self.score.total, (self.name or "").casefold(), self.account_id

    def __lt__(self, other: _Ranked) -> bool:
        # Reversed, so a heap's root is the worst row kept: the one a better row replaces.
        return self.order() > other.order()


def _top_for_partner(
    session: Session, partner: tuple[str, str, dict[str, Any]], pops: Sequence[str],
    joint: set[tuple[str, int]], money: OpenPipeline, today: date, limit: int,
) -> list[_Ranked]:
    """Stream the partner's named overlaps, keeping only the best `limit` (bounded memory)."""
    pid, pname, share = partner
    query = (
        select(Overlap.account_id, Overlap.population, Overlap.first_seen_at, Account.source,
               Account.external_id, Account.name, PartnerAccount.owner_name,
               PartnerAccount.owner_email)
        .join(Account, Account.id == Overlap.account_id)
        .outerjoin(PartnerAccount, PartnerAccount.id == Overlap.partner_account_id)
        .where(Overlap.partner_id == pid, Overlap.ended_at.is_(None),
               Overlap.population.in_(pops), Account.is_deleted == false())
        .order_by(Overlap.account_id)
        .execution_options(yield_per=_CHUNK))
    heap: list[_Ranked] = []
    for chunk in session.execute(query).partitions(_CHUNK):
        opps = open_opportunities(session, [r[0] for r in chunk], pipeline=money)
        for aid, population, first_seen, source, ext, name, owner, email in chunk:
            # What may be shown of this overlap is sync.sharing's call, row by row.
            vis = visibility([SharedOverlap(pid, pname, share, population, owner, email)])
            if not vis.named:
                continue
            contact = vis.contacts[0] if vis.contacts else None
            pipeline = Pipeline.of(opps.get(aid, []))
            sc = score(population, pipeline, (today - first_seen.date()).days,
                       contact is not None, (pid, aid) in joint, money.corporate)
            who = None if contact is None else contact.label().removesuffix(f" ({pname})")
            ranked = _Ranked(sc, aid, name, source, ext, population, first_seen, pipeline,
                             who)
            if len(heap) < limit:
                heapq.heappush(heap, ranked)
            elif heap[0] < ranked:
                heapq.heapreplace(heap, ranked)
    return sorted(heap, key=_Ranked.order)


def rows(report: Iterable[NextAccount]) -> list[dict[str, Any]]:
    return [r.as_row() for r in report]
