"""Our own accounts' population (customer / open_opportunity / prospect): the one owner of
that rule, used by outbound sharing (exchange files, private matching) and the views that
compare our populations with a partner's (DESIGN.md sections 9-11).

- customer: the account has a won opportunity, or its CRM type says customer (Salesforce
  `Account.Type` such as "Customer - Direct", HubSpot lifecycle stage `customer`);
- open_opportunity: otherwise, it has an open opportunity;
- prospect: everything else.
Deleted accounts and deleted opportunities never count.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, case, false, func, literal, or_, select

from schema.models import Account, Opportunity
from schema.records import Population


def _typed_customer() -> Any:
    # Salesforce's standard picklist has "Customer - Direct" / "Customer - Channel";
    # HubSpot's lifecycle stage is the internal value `customer`.
    return func.lower(func.coalesce(Account.account_type, "")).like("customer%")


def population_expression(won: Any, open_: Any) -> Any:
    """The population CASE over aggregated won / open flags (1 or 0) of an account."""
    return case(
        (or_(won == 1, func.max(case((_typed_customer(), 1), else_=0)) == 1),
         literal(Population.CUSTOMER.value)),
        (open_ == 1, literal(Population.OPEN_OPPORTUNITY.value)),
        else_=literal(Population.PROSPECT.value),
    )


def our_populations() -> Select[Any]:
    """(account_id, population) for every live account, one row each, as SQL to join or to
    stream (never loaded whole)."""
    won = func.max(case((Opportunity.status == "won", 1), else_=0))
    open_ = func.max(case((Opportunity.status == "open", 1), else_=0))
    return (
        select(Account.id.label("account_id"),
               population_expression(won, open_).label("population"))
        .outerjoin(Opportunity, and_(Opportunity.source == Account.source,
                                     Opportunity.account_external_id == Account.external_id,
                                     Opportunity.is_deleted == false()))
        .where(Account.is_deleted == false())
        .group_by(Account.id)
    )
