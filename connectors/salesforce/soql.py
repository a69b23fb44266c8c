"""SOQL text for pulls: field lists, the tie-safe cursor predicate and the window bound.

Datetime literals are unquoted and whole seconds (`2024-01-01T00:00:00Z`, crm-api.md §S4).
Rounding a cursor's timestamp *down* to the second only ever widens a window (re-reads are
harmless upserts); rounding the upper bound down only defers rows to the next tick.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
Key = tuple[datetime, str]  # a (SystemModstamp, Id) cursor position


def literal(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; SOQL windows are UTC-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def id_literal(record_id: str) -> str:
    if not _ID.match(record_id):
        raise ValueError(f"not a Salesforce id: {record_id!r}")
    return f"'{record_id}'"


def after(modstamp: datetime, last_id: str = "") -> str:
    """Rows strictly after the cursor (modstamp, last_id) in (SystemModstamp, Id) order.

    Without an id (a lookback start, or a fresh window) the position is "before every row of
    that second": SystemModstamp >= ts.
    """
    ts = literal(modstamp)
    if not last_id:
        return f"SystemModstamp >= {ts}"
    # The leading range term is implied by the OR; it is there so the query optimizer can use
    # the SystemModstamp index instead of scanning (an OR alone may defeat it on big tables).
    return (f"SystemModstamp >= {ts} AND (SystemModstamp > {ts} OR (SystemModstamp = {ts} "
            f"AND Id > {id_literal(last_id)}))")


def upto(modstamp: datetime, last_id: str) -> str:
    """Rows at or before the cursor (modstamp, last_id): the end of a page's key range."""
    ts = literal(modstamp)
    return (f"SystemModstamp <= {ts} AND (SystemModstamp < {ts} OR (SystemModstamp = {ts} "
            f"AND Id <= {id_literal(last_id)}))")


def before(until: datetime) -> str:
    return f"SystemModstamp < {literal(until)}"


def select(fields: Sequence[str], sobject: str, where: Sequence[str], *,
           ordered: bool = True) -> str:
    """`ordered` adds ORDER BY SystemModstamp, Id: REST pages only. Bulk 2.0 does not support
    ORDER BY (it disables PK chunking), so Bulk results come unordered."""
    text = f"SELECT {', '.join(fields)} FROM {sobject}"
    if where:
        text += " WHERE " + " AND ".join(where)
    if ordered:
        text += " ORDER BY SystemModstamp ASC, Id ASC"
    return text


def count(sobject: str, where: Sequence[str]) -> str:
    text = f"SELECT COUNT() FROM {sobject}"
    if where:
        text += " WHERE " + " AND ".join(where)
    return text


def where(start: Key | None, until: datetime) -> list[str]:
    """Rows after `start` (None: from the beginning) and before `until`."""
    clauses = [before(until)]
    if start is not None:
        clauses.insert(0, after(*start))
    return clauses


def key_range(lo: Key | None, hi: Key, until: datetime) -> list[str]:
    """Rows in (lo, hi] and before `until`: exactly the rows of one ordered page."""
    return [*([after(*lo)] if lo is not None else []), upto(*hi), before(until)]
