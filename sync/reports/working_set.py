"""`ecosync report working-set`: is each partner a working set, a rolodex or over-extended?

Per partner, the named accounts in joint pursuit in a quarter: accounts the partner overlapped
at some time in the quarter on which we had an opportunity open during the quarter (created
before its end, and still open or closed inside it). 8 to 15 passes (working set), fewer is a
rolodex, more is over-extended: nobody co-sells on thirty accounts at once. Beside it, the
influenced revenue those partners brought in the quarter (won stamps, each deal's full value,
and their share under the amount model).

Sharing (sync.sharing): an account counts for a partner only through overlaps the partner
shares by name; counts-only overlaps are pooled into one unnamed row that is never classified;
hidden ones do not count at all.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.orm import Session

from schema.models import Account, Opportunity, Overlap
from schema.records import Population
from sync.attribution import metrics as m
from sync.attribution.periods import Quarter, at_midnight
from sync.reports.attribution import (
    POOLED_NAME,
    load_deals,
    partner_shares,
    shown_partner,
)
from sync.reports.formats import Column
from sync.sharing import NAMED, POOLED_KEY, share_level

WORKING_SET_MIN = 8
WORKING_SET_MAX = 15

COLUMNS = (
    Column("quarter", "Quarter"), Column("partner", "Partner"),
    Column("joint_accounts", "Accounts in joint pursuit", numeric=True),
    Column("classification", "Classification"), Column("passes", "Pass"),
    Column("won_deals", "Won deals", numeric=True),
    Column("influenced_revenue", "Influenced revenue", numeric=True),
    Column("attributed_revenue", "Attributed (model)", numeric=True),
)


def classify(accounts: int) -> tuple[str, bool]:
    """(classification, passes) for a partner with this many accounts in joint pursuit."""
    if accounts < WORKING_SET_MIN:
        return "rolodex", False
    if accounts > WORKING_SET_MAX:
        return "over-extended", False
    return "working set", True


def joint_pursuit_query(quarter: Quarter) -> Select[str, str, int]:
    """(partner id, population, account id) of overlaps active in the quarter on accounts
    with an opportunity open during it, as SQL (the web view aggregates over it)."""
    start, end = at_midnight(quarter.start), at_midnight(quarter.end)
    open_during = exists(select(Opportunity.id).where(
        Opportunity.source == Account.source,
        Opportunity.account_external_id == Account.external_id,
        Opportunity.is_deleted.is_(False),
        or_(Opportunity.created_at.is_(None), Opportunity.created_at < end),
        or_(Opportunity.status == "open",
            and_(Opportunity.close_date >= quarter.start,
                 Opportunity.close_date < quarter.end))))
    return (select(Overlap.partner_id, Overlap.population, Overlap.account_id).distinct()
            .join(Account, Account.id == Overlap.account_id)
            .where(Account.is_deleted.is_(False), Overlap.first_seen_at < end,
                   or_(Overlap.ended_at.is_(None), Overlap.ended_at > start), open_during))


def joint_pursuit(session: Session, quarter: Quarter) -> set[tuple[str, str, int]]:
    """(partner id, population, account id) of overlaps active in the quarter on accounts
    with an opportunity open during it."""
    rows = session.execute(joint_pursuit_query(quarter))
    return {(r[0], r[1], r[2]) for r in rows}


def working_set_report(session: Session, quarter: Quarter) -> list[dict[str, Any]]:
    shares = partner_shares(session)
    accounts: dict[str, set[int]] = defaultdict(set)
    for pid, population, account_id in joint_pursuit(session, quarter):
        shown = shown_partner(pid, population, shares)
        if shown is not None:
            # The pool counts distinct accounts; it is never attributed to one partner.
            accounts[shown[0]].add(account_id)
    revenue = {r.key: r for r in m.by_partner(
        load_deals(session, quarter.start, quarter.end, shares))}
    named = [pid for pid, (_, share) in shares.items()
             if any(share_level(share, p.value) in NAMED for p in Population)]
    keys = set(named) | set(accounts)
    rows: list[dict[str, Any]] = []
    for key in keys:
        n = len(accounts.get(key, ()))
        r = revenue.get(key)
        pooled = key == POOLED_KEY
        status, passes = classify(n)
        rows.append({
            "quarter": quarter.label, "partner_id": None if pooled else key,
            "partner": POOLED_NAME if pooled else shares[key][0], "joint_accounts": n,
            "classification": None if pooled else status, "passes": None if pooled else passes,
            "won_deals": r.won_deals if r else 0,
            "influenced_revenue": r.influenced_revenue if r else Decimal("0.00"),
            "attributed_revenue": r.attributed_revenue if r else Decimal("0.00")})
    rows.sort(key=lambda r: (r["partner_id"] is None, -r["joint_accounts"],
                             str(r["partner"]).casefold()))
    return rows
