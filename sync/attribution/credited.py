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

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from schema.models import Account, AttributionCredit, AttributionStamp, Opportunity, Overlap
from schema.records import POPULATION_RANK
from sync.attribution.rules import RULE_REFERRING_FIELD
from sync.sharing import REFERRAL

CHUNK = 500


def _rank(population: Any) -> Any:
    """SQL: the strength of a population (customer first), as POPULATION_RANK orders it."""
    return case({str(p): r for p, r in POPULATION_RANK.items()}, value=population,
                else_=len(POPULATION_RANK))


def shown_population() -> ColumnElement[str | None]:
    """SQL, over a query joining AttributionCredit, AttributionStamp and the opportunity's
    Account (outer): the population the credited partner is shown under, NULL when it may not
    be shown at all. The one expression of the rule above: the population recorded at close,
    else the account's current overlap with the partner (the strongest), else REFERRAL for
    the partner credited by our own referring field."""
    current = (select(Overlap.population)
               .where(Overlap.account_id == Account.id,
                      Overlap.partner_id == AttributionCredit.partner_id,
                      Overlap.ended_at.is_(None))
               .order_by(_rank(Overlap.population)).limit(1)
               .correlate(Account, AttributionCredit).scalar_subquery())
    referral = case((and_(AttributionStamp.sourced_rule == RULE_REFERRING_FIELD,
                          AttributionStamp.sourcing_partner_id == AttributionCredit.partner_id),
                     literal(REFERRAL)))
    return func.coalesce(AttributionCredit.population, current, referral)


def shown_credits() -> Select[int, str, str, Decimal | None, str | None]:
    """Every credit with the population it is shown under (`shown_population`); the caller
    narrows it with .where() on AttributionStamp / AttributionCredit."""
    return (select(AttributionCredit.stamp_id, AttributionCredit.partner_id,
                   AttributionCredit.kind, AttributionCredit.corporate_amount,
                   shown_population().label("population"))
            .join(AttributionStamp, AttributionStamp.id == AttributionCredit.stamp_id)
            .join(Opportunity, Opportunity.id == AttributionStamp.opportunity_id)
            .outerjoin(Account, and_(Account.source == Opportunity.source,
                                     Account.external_id == Opportunity.account_external_id)))


def credited_populations(
    session: Session, stamps: Iterable[Any],
) -> dict[int, dict[str, str | None]]:
    """stamp id -> {credited partner id: population to show it under}.

    `stamps` are flushed AttributionStamp rows (anything with an `id`). None means the
    partner may not be shown at all (fail closed: only a referral source can lack an overlap
    population). Computed by `shown_population`, the rule's one expression.
    """
    ids = [s.id for s in stamps]
    out: dict[int, dict[str, str | None]] = {i: {} for i in ids}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        for stamp_id, partner_id, _, _, population in session.execute(
                shown_credits().where(AttributionCredit.stamp_id.in_(chunk))):
            out[stamp_id][partner_id] = population
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
