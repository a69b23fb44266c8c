"""The population a credited partner is shown under (DESIGN.md 5), for every output of a stamp:
the written opportunity fields (sync.plan), `attribution explain` and the reports.

A partner credited on an opportunity is shown at the level of its overlap with the
opportunity's account: the population the stamp's evidence recorded at close when it has
one, else the account's current overlap with that partner (e.g. an overlap first seen after
the close). A sourcing partner credited from our own referring field with no overlap with the
account at all is named (`REFERRAL`): that field is our own CRM data. sync.sharing turns the
population into a level; this module only finds the population.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, exists, or_, select
from sqlalchemy.orm import Session

from schema.models import Account, AttributionCredit, AttributionStamp, Opportunity, Overlap
from schema.records import POPULATION_RANK, Population
from sync.attribution.rules import RULE_REFERRING_FIELD
from sync.sharing import REFERRAL

CHUNK = 500


def _rank(population: str) -> int:
    try:
        return POPULATION_RANK[Population(population)]
    except ValueError:
        return len(POPULATION_RANK)


def recorded_populations(evidence: Mapping[str, Any] | None) -> dict[str, str | None]:
    """partner id -> the population the stamp's evidence recorded (None: none recorded)."""
    return {p["partner_id"]: p.get("population")
            for p in (evidence or {}).get("partners", [])}


def _without_population(stamp: Any) -> set[str]:
    return {pid for pid, pop in recorded_populations(stamp.evidence).items() if pop is None}


def credited_populations(
    session: Session, stamps: Iterable[Any],
) -> dict[int, dict[str, str | None]]:
    """stamp id -> {credited partner id: population to show it under}.

    `stamps` are AttributionStamp rows (or rows with id, opportunity_id, evidence,
    sourcing_partner_id and sourced_rule). None means the partner may not be shown at all
    (fail closed: only a referral source can lack an overlap population).
    """
    stamps = list(stamps)
    out = {s.id: recorded_populations(s.evidence) for s in stamps}
    missing = [s for s in stamps if _without_population(s)]
    current: dict[tuple[int, str], str] = {}
    for start in range(0, len(missing), CHUNK):
        ids = [s.id for s in missing[start:start + CHUNK]]
        rows = session.execute(
            select(AttributionStamp.id, Overlap.partner_id, Overlap.population)
            .join(Opportunity, Opportunity.id == AttributionStamp.opportunity_id)
            .join(Account, and_(Account.source == Opportunity.source,
                                Account.external_id == Opportunity.account_external_id))
            .join(Overlap, Overlap.account_id == Account.id)
            .where(AttributionStamp.id.in_(ids), Overlap.ended_at.is_(None)))
        for stamp_id, partner_id, population in rows:
            key = (stamp_id, partner_id)
            if key not in current or _rank(population) < _rank(current[key]):
                current[key] = population
    for s in missing:
        for pid in _without_population(s):
            now_pop = current.get((s.id, pid))
            if now_pop is not None:
                out[s.id][pid] = now_pop
            elif s.sourced_rule == RULE_REFERRING_FIELD and s.sourcing_partner_id == pid:
                out[s.id][pid] = REFERRAL
    return out


def replanned_on_overlap_change() -> ColumnElement[bool]:
    """Opportunities whose written fields follow their account's current overlaps: open ones
    (live influence), and closed ones whose active stamp has a referral source, which may be
    shown at the account's current overlap (see above). A condition on the opportunities
    table, for the flag updates of matching and of a sharing change."""
    opps, stamps = _table(Opportunity), _table(AttributionStamp)
    return or_(opps.c.status == "open", exists().where(
        stamps.c.opportunity_id == opps.c.id, stamps.c.superseded_at.is_(None),
        stamps.c.sourced_rule == RULE_REFERRING_FIELD))


def crediting(partner_ids: Sequence[str]) -> Select[Any]:
    """Opportunity ids whose active stamp credits one of `partner_ids`: their fields change
    when such a partner's sharing policy does (it applies retroactively)."""
    return (select(AttributionStamp.opportunity_id)
            .join(AttributionCredit, AttributionCredit.stamp_id == AttributionStamp.id)
            .where(AttributionStamp.superseded_at.is_(None),
                   AttributionCredit.partner_id.in_(list(partner_ids))))


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table
