"""Fuzzy name matching: rapidfuzz token_sort_ratio within a blocking key, streamed.

Names are compared only when at least one side lacks a usable domain (DESIGN.md 4). That side
is the minority, so it is indexed in memory by blocking key, and the other side is streamed
from the warehouse restricted (in SQL) to the blocks the index holds. Memory stays bounded by
the no-domain minority; the streamed side is never held.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import Connection, FromClause, Select, delete, false, func, insert, select

from schema.models import Account, PartnerAccount
from sync.matching.keys import BLOCK_PREFIX, blocking_key, sorted_tokens
from sync.matching.rules import duns_compatible, population_rank
from sync.matching.worktables import BLOCKS, DIRTY_PARTNER_ACCOUNTS, table_of

STREAM_ROWS = 5_000

ACCOUNTS = table_of(Account)
PARTNER_ACCOUNTS = table_of(PartnerAccount)


@dataclass(frozen=True, slots=True)
class Side:
    """One row's fuzzy-relevant fields (partner_id and pop_rank only for partner accounts)."""

    id: int
    name_key: str
    duns: str | None
    has_domain: bool
    partner_id: str = ""
    pop_rank: int = 0


# (account id, partner id, partner account id, population rank, score)
FuzzyPair = tuple[int, str, int, int, float]


@dataclass(slots=True)
class _Block:
    names: list[str] = field(default_factory=list)  # sorted tokens, what the scorer compares
    rows: list[Side] = field(default_factory=list)


class BlockIndex:
    """The rows of one side grouped by blocking key, ready for `process.extract`."""

    def __init__(self, rows: Iterable[Side]) -> None:
        self.blocks: dict[str, _Block] = {}
        for row in rows:
            block = self.blocks.setdefault(blocking_key(row.name_key), _Block())
            block.names.append(sorted_tokens(row.name_key))
            block.rows.append(row)

    def __len__(self) -> int:
        return len(self.blocks)

    def probe(self, other: Side, threshold: int) -> Iterator[tuple[Side, float]]:
        """Rows of this index whose name scores >= threshold against `other`, rules applied."""
        block = self.blocks.get(blocking_key(other.name_key))
        if block is None:
            return
        hits = process.extract(sorted_tokens(other.name_key), block.names, scorer=fuzz.ratio,
                               score_cutoff=threshold, limit=None)
        for _choice, score, i in hits:
            row = block.rows[i]
            if row.name_key == other.name_key:
                continue  # the exact name rule (in SQL) covers it
            if row.has_domain and other.has_domain:
                continue  # names are compared only when one side lacks a domain
            if not duns_compatible(row.duns, other.duns):
                continue
            yield row, round(float(score), 2)


def _block_of(column: Any) -> Any:
    return func.substr(column, 1, BLOCK_PREFIX)


def _fill_blocks(conn: Connection, blocks: Iterable[str]) -> None:
    conn.execute(delete(BLOCKS))
    rows = [{"block": b} for b in blocks]
    if rows:
        conn.execute(insert(BLOCKS), rows)


def _stream(conn: Connection, stmt: Select[Any]) -> Iterator[Any]:
    # Per statement: Connection.execution_options would change the whole connection.
    yield from conn.execute(stmt.execution_options(yield_per=STREAM_ROWS))


def _account_side(row: Any) -> Side:
    return Side(row.id, row.name_key, row.duns, row.domain_key is not None)


def _partner_side(row: Any) -> Side:
    return Side(row.id, row.name_key, row.duns, row.domain_key is not None, row.partner_id,
                population_rank(row.population))


def _account_columns(a: FromClause) -> Sequence[Any]:
    return (a.c.id, a.c.name_key, a.c.duns, a.c.domain_key)


def _partner_columns(pa: FromClause) -> Sequence[Any]:
    return (pa.c.id, pa.c.partner_id, pa.c.name_key, pa.c.duns, pa.c.domain_key,
            pa.c.population)


def fuzzy_pairs(conn: Connection, accounts: FromClause, threshold: int) -> list[FuzzyPair]:
    """All fuzzy pairs for the accounts of `accounts` (the accounts table, or it joined to
    the run's scope), against every partner account."""
    a, pa = ACCOUNTS, PARTNER_ACCOUNTS
    live = (a.c.is_deleted == false(), a.c.name_key.is_not(None))
    pairs: list[FuzzyPair] = []

    # Pass 1: our accounts without a domain, against every partner account in their blocks.
    ours = BlockIndex(_account_side(r) for r in conn.execute(
        select(*_account_columns(a)).select_from(accounts)
        .where(*live, a.c.domain_key.is_(None))))
    if ours:
        _fill_blocks(conn, ours.blocks)
        stmt = (select(*_partner_columns(pa))
                .join(BLOCKS, _block_of(pa.c.name_key) == BLOCKS.c.block))
        for row in _stream(conn, stmt):
            theirs = _partner_side(row)
            for acc, score in ours.probe(theirs, threshold):
                pairs.append((acc.id, theirs.partner_id, theirs.id, theirs.pop_rank, score))

    # Pass 2: partner accounts without a domain, against our accounts that have one (pairs
    # where both lack a domain were found in pass 1). Only blocks our accounts use are loaded.
    _fill_blocks(conn, (r.block for r in conn.execute(
        select(_block_of(a.c.name_key).label("block")).select_from(accounts)
        .where(*live, a.c.domain_key.is_not(None)).distinct())))
    index = BlockIndex(_partner_side(r) for r in conn.execute(
        select(*_partner_columns(pa))
        .join(BLOCKS, _block_of(pa.c.name_key) == BLOCKS.c.block)
        .where(pa.c.domain_key.is_(None))))
    if index:
        _fill_blocks(conn, index.blocks)
        stmt = (select(*_account_columns(a)).select_from(accounts)
                .join(BLOCKS, _block_of(a.c.name_key) == BLOCKS.c.block)
                .where(*live, a.c.domain_key.is_not(None)))
        for row in _stream(conn, stmt):
            acc = _account_side(row)
            for theirs, score in index.probe(acc, threshold):
                pairs.append((acc.id, theirs.partner_id, theirs.id, theirs.pop_rank, score))
    return pairs


def accounts_near_dirty_partner_accounts(conn: Connection, threshold: int) -> set[int]:
    """Accounts that fuzzy-match a dirty partner account: an incremental run re-matches them."""
    a, pa = ACCOUNTS, PARTNER_ACCOUNTS
    dirty = BlockIndex(_partner_side(r) for r in conn.execute(
        select(*_partner_columns(pa))
        .join(DIRTY_PARTNER_ACCOUNTS, DIRTY_PARTNER_ACCOUNTS.c.id == pa.c.id)
        .where(pa.c.name_key.is_not(None))))
    if not dirty:
        return set()
    _fill_blocks(conn, dirty.blocks)
    stmt = (select(*_account_columns(a))
            .join(BLOCKS, _block_of(a.c.name_key) == BLOCKS.c.block)
            .where(a.c.is_deleted == false()))
    if all(row.has_domain for block in dirty.blocks.values() for row in block.rows):
        stmt = stmt.where(a.c.domain_key.is_(None))
    found: set[int] = set()
    for row in _stream(conn, stmt):
        acc = _account_side(row)
        if any(True for _ in dirty.probe(acc, threshold)):
            found.add(acc.id)
    return found
