"""Fuzzy name matching: rapidfuzz token_sort_ratio within a blocking key, streamed.

Names are compared only when at least one side lacks a usable domain (DESIGN.md 4). That side
is the minority, so it is indexed in memory by blocking key; the other side is streamed from the
warehouse, restricted in SQL to the blocks the index holds and ordered by name, so rows of one
block arrive together and are scored as one batch: per block, each row of the smaller side is
compared with `process.extract` against the whole other side (one C call per row of the smaller
side, not per pair). Memory stays bounded by the no-domain minority.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import Connection, FromClause, Select, and_, false, or_, select

from schema.models import Account, PartnerAccount
from sync.matching.keys import block_upper, blocking_key, sorted_tokens
from sync.matching.rules import duns_compatible, population_rank
from sync.matching.worktables import DIRTY_PARTNER_ACCOUNTS, table_of

STREAM_ROWS = 5_000
# Collations whose order is code point order: there, a block is one contiguous range of the
# name_key index.
BINARY_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"})

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

    @property
    def block(self) -> str:
        return blocking_key(self.name_key)


# (account id, partner id, partner account id, population rank, score)
FuzzyPair = tuple[int, str, int, int, float]


@dataclass(slots=True)
class _Block:
    names: list[str] = field(default_factory=list)  # sorted tokens, what the scorer compares
    rows: list[Side] = field(default_factory=list)


def _allowed(a: Side, b: Side) -> bool:
    # Exact names are the SQL name rule's; names are compared only when a domain is missing;
    # different DUNS numbers never match.
    return (a.name_key != b.name_key and not (a.has_domain and b.has_domain)
            and duns_compatible(a.duns, b.duns))


class BlockIndex:
    """The rows of one side grouped by blocking key."""

    def __init__(self, rows: Iterable[Side]) -> None:
        self.blocks: dict[str, _Block] = {}
        for row in rows:
            block = self.blocks.setdefault(row.block, _Block())
            block.names.append(sorted_tokens(row.name_key))
            block.rows.append(row)

    def __len__(self) -> int:
        return len(self.blocks)

    def scan(self, stream: Iterable[Side], threshold: int) -> Iterator[tuple[Side, Side, float]]:
        """(indexed row, streamed row, score) for every pair scoring >= threshold."""
        for key, group in groupby(stream, key=lambda s: s.block):
            block = self.blocks.get(key)
            if block is None:
                continue
            batch = list(group)
            names = [sorted_tokens(s.name_key) for s in batch]
            if len(block.rows) <= len(batch):
                for row, name in zip(block.rows, block.names, strict=True):
                    for _, score, j in process.extract(name, names, scorer=fuzz.ratio,
                                                       score_cutoff=threshold, limit=None):
                        if _allowed(row, batch[j]):
                            yield row, batch[j], round(float(score), 2)
            else:
                for other, name in zip(batch, names, strict=True):
                    for _, score, j in process.extract(name, block.names, scorer=fuzz.ratio,
                                                       score_cutoff=threshold, limit=None):
                        if _allowed(block.rows[j], other):
                            yield block.rows[j], other, round(float(score), 2)


def code_point_order(conn: Connection) -> bool:
    """Whether text comparisons on this connection follow code points (binary collation)."""
    if conn.dialect.name == "sqlite":
        return True  # BINARY collation
    if conn.dialect.name == "postgresql":
        collation = conn.exec_driver_sql(
            "SELECT datcollate FROM pg_database WHERE datname = current_database()").scalar()
        return collation in BINARY_COLLATIONS
    return False


RANGES_PER_QUERY = 200


def in_blocks(conn: Connection, stmt: Select[Any], name_key: Any, blocks: Collection[str], *,
              how: str) -> Iterator[Any]:
    """The rows of `stmt` whose name is in one of `blocks`, in name order (blocks together).

    `how` is "ranges" (a big table, few blocks: an incremental run), "scan" (a big table,
    most blocks: a full run) or "small" (`stmt` itself selects few rows: the run's scope).

    Every name of a block lies in [block, block_upper(block)) in code point order, so under a
    binary collation a block is one range of the name_key index, and "ranges" reads only the
    rows of its blocks, in batches of OR'ed ranges. Under a linguistic collation it falls back
    to "scan". Ranges nest ("acme" holds "acmec…"), so each row is kept only for its own block.
    """
    wanted = set(blocks)
    if how == "ranges" and not code_point_order(conn):
        how = "scan"
    if how == "scan":
        for row in _stream(conn, stmt.where(name_key.is_not(None)).order_by(name_key)):
            if blocking_key(row.name_key) in wanted:
                yield row
        return
    ordered = sorted(wanted) if how == "ranges" else [""]
    for start in range(0, len(ordered), RANGES_PER_QUERY):
        chunk = ordered[start:start + RANGES_PER_QUERY]
        query = stmt.where(name_key.is_not(None))
        if how == "ranges":
            query = query.where(or_(*(and_(name_key >= b, name_key < block_upper(b))
                                      for b in chunk)))
        # Sorted here, not by ORDER BY: with one, SQLite prefers walking the whole name index
        # in order over range lookups (or over the small scope). Few rows per chunk.
        found = [r for r in conn.execute(query) if blocking_key(r.name_key) in wanted]
        found.sort(key=lambda r: r.name_key)
        yield from found


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


def fuzzy_pairs(conn: Connection, accounts: FromClause, threshold: int, *,
                full: bool) -> list[FuzzyPair]:
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
        stream = (_partner_side(r) for r in in_blocks(
            conn, select(*_partner_columns(pa)), pa.c.name_key, ours.blocks,
            how="scan" if full else "ranges"))
        pairs.extend((acc.id, theirs.partner_id, theirs.id, theirs.pop_rank, score)
                     for acc, theirs, score in ours.scan(stream, threshold))

    # Pass 2: partner accounts without a domain, against our accounts that have one (pairs
    # where both lack a domain were found in pass 1). An incremental run loads only the
    # blocks its accounts use.
    if full:
        found: Iterable[Any] = conn.execute(select(*_partner_columns(pa)).where(
            pa.c.domain_key.is_(None), pa.c.name_key.is_not(None)))
    else:
        needed = {blocking_key(r.name_key) for r in conn.execute(
            select(a.c.name_key).select_from(accounts)
            .where(*live, a.c.domain_key.is_not(None)))}
        # "No domain" is tested here, not in SQL: there it would tempt the planner into the
        # domain_key index (NULL looks selective) instead of the name ranges.
        found = (r for r in in_blocks(conn, select(*_partner_columns(pa)), pa.c.name_key,
                                      needed, how="ranges") if r.domain_key is None)
    theirs_index = BlockIndex(_partner_side(r) for r in found)
    if theirs_index:
        stream = (_account_side(r) for r in in_blocks(
            conn, select(*_account_columns(a)).select_from(accounts)
            .where(*live, a.c.domain_key.is_not(None)), a.c.name_key, theirs_index.blocks,
            how="scan" if full else "small"))
        pairs.extend((acc.id, theirs.partner_id, theirs.id, theirs.pop_rank, score)
                     for theirs, acc, score in theirs_index.scan(stream, threshold))
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
    stmt = select(*_account_columns(a)).where(a.c.is_deleted == false(),
                                              a.c.name_key.is_not(None))
    if all(row.has_domain for block in dirty.blocks.values() for row in block.rows):
        stmt = stmt.where(a.c.domain_key.is_(None))
    stream = (_account_side(r)
              for r in in_blocks(conn, stmt, a.c.name_key, dirty.blocks, how="ranges"))
    return {acc.id for _, acc, _ in dirty.scan(stream, threshold)}
