"""Fuzzy name matching: rapidfuzz token_sort_ratio within a blocking key, streamed.

Names are compared only when at least one side lacks a usable domain (DESIGN.md 4). That side
is the minority, so it is indexed in memory by blocking key. The other side is read from the
warehouse in its natural order (a sequential scan: reading in name order costs SQLite a random
table lookup per row, several times slower), grouped by block in chunks of bounded size, and
each group is scored against its index block: per block, each row of the smaller side goes
through one `process.extract` call against the other side. Memory is bounded by the no-domain
minority plus one chunk.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import (
    Connection,
    FromClause,
    Select,
    and_,
    delete,
    false,
    func,
    insert,
    select,
    text,
    true,
)

from schema.models import Account, PartnerAccount
from sync.matching.keys import block_upper, blocking_key, sorted_tokens
from sync.matching.rules import duns_compatible, population_rank
from sync.matching.worktables import BLOCKS, DIRTY_PARTNER_ACCOUNTS, table_of

STREAM_ROWS = 5_000
CHUNK_ROWS = 50_000
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


def account_side(row: Any) -> Side:
    return Side(row.id, row.name_key, row.duns, row.domain_key is not None)


def partner_side(row: Any) -> Side:
    return Side(row.id, row.name_key, row.duns, row.domain_key is not None, row.partner_id,
                population_rank(row.population))


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
            block = self.blocks.setdefault(blocking_key(row.name_key), _Block())
            block.names.append(sorted_tokens(row.name_key))
            block.rows.append(row)

    def __len__(self) -> int:
        return len(self.blocks)

    def scan(self, groups: Iterable[dict[str, list[Any]]], side: Any,
             threshold: int) -> Iterator[tuple[Side, Side, float]]:
        """(indexed row, other row, score) for every pair scoring >= threshold.

        `groups` are raw rows of the other side by block; `side` turns one into a Side (only
        rows that score are converted).
        """
        for group in groups:
            for key, raw in group.items():
                block = self.blocks[key]
                names = [sorted_tokens(r.name_key) for r in raw]
                if len(block.rows) <= len(raw):
                    for row, name in zip(block.rows, block.names, strict=True):
                        for _, score, j in process.extract(
                                name, names, scorer=fuzz.ratio, score_cutoff=threshold,
                                limit=None):
                            other = side(raw[j])
                            if _allowed(row, other):
                                yield row, other, round(float(score), 2)
                else:
                    for r, name in zip(raw, names, strict=True):
                        other = None
                        for _, score, j in process.extract(
                                name, block.names, scorer=fuzz.ratio, score_cutoff=threshold,
                                limit=None):
                            other = other or side(r)
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


def _stream(conn: Connection, stmt: Select[Any]) -> Iterator[Any]:
    # Per statement: Connection.execution_options would change the whole connection.
    yield from conn.execute(stmt.execution_options(yield_per=STREAM_ROWS))


def _ranges(conn: Connection, stmt: Select[Any], name_key: Any,
            blocks: Sequence[str]) -> Iterator[Any]:
    """Rows of `stmt` whose name is in one of `blocks`, each row once.

    The blocks go to a work table and drive one index range search each: a plain join on
    SQLite (which, with the table analyzed, loops over the blocks), a LATERAL join on
    PostgreSQL (whose estimate of a range join is blind and which would otherwise drive it
    from the big table). Not streamed: the rows of a few blocks are few, and a PostgreSQL
    cursor is planned for its first rows. Ranges nest ("acme" holds "acmec…"), so a row is
    kept only for its own block.
    """
    conn.execute(delete(BLOCKS))
    conn.execute(insert(BLOCKS), [{"block": b, "hi": block_upper(b)} for b in blocks])
    conn.execute(text(f"ANALYZE {BLOCKS.name}"))
    ranged = and_(name_key >= BLOCKS.c.block, name_key < BLOCKS.c.hi)
    if conn.dialect.name == "postgresql":
        # LATERAL with OFFSET 0 (so it is not flattened into a plain join): one index range
        # scan per block, an order the planner cannot turn round. Its cost estimate is
        # pessimistic enough to trigger JIT compilation, which costs more than the query:
        # off for the rest of this transaction.
        conn.execute(text("SET LOCAL jit = off"))
        per_block = stmt.where(ranged).offset(0).lateral("per_block")
        query: Select[Any] = (select(per_block, BLOCKS.c.block.label("range_block"))
                              .select_from(BLOCKS).join(per_block, true()))
    else:
        query = stmt.add_columns(BLOCKS.c.block.label("range_block")).join(BLOCKS, ranged)
    for row in conn.execute(query):
        if blocking_key(row.name_key) == row.range_block:
            yield row


def in_blocks(conn: Connection, stmt: Select[Any], name_key: Any, blocks: Collection[str], *,
              ranges: bool) -> Iterator[dict[str, list[Any]]]:
    """The rows of `stmt` whose name is in one of `blocks`, as chunks grouped by block.

    With `ranges` (an incremental run: a big table, few blocks) and a binary collation, only
    the rows of those blocks are read: every name of a block lies in
    [block, block_upper(block)), one range of the name_key index (see `_ranges`). Otherwise
    (a full run needs nearly every block) the table is read once, sequentially.
    """
    wanted = set(blocks)
    if not wanted:
        return
    stmt = stmt.where(name_key.is_not(None))
    if ranges and code_point_order(conn):
        sources: Iterable[Any] = _ranges(conn, stmt, name_key, sorted(wanted))
    else:
        sources = _stream(conn, stmt)
    group: dict[str, list[Any]] = {}
    size = 0
    for row in sources:
        key = blocking_key(row.name_key)
        if key in wanted:
            group.setdefault(key, []).append(row)
            size += 1
            if size >= CHUNK_ROWS:
                yield group
                group, size = {}, 0
    if group:
        yield group


def lacks(conn: Connection, column: Any, *, full: bool = False) -> Any:
    """`column IS NULL` ("no usable domain"), phrased for the planner of this run.

    SQLite's statistics make NULL look as rare as any one domain (one value among a million)
    when it is a tenth of the rows, so in an incremental run it would drive the join from the
    domain index instead of from the small scope: there the test is hidden in an expression.
    PostgreSQL knows the NULL fraction and needs the plain test to estimate it; a full run
    wants the index (the no-domain tenth is what drives the join).
    """
    if full or conn.dialect.name != "sqlite":
        return column.is_(None)
    return func.coalesce(column, "") == ""


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
    ours = BlockIndex(account_side(r) for r in conn.execute(
        select(*_account_columns(a)).select_from(accounts)
        .where(*live, lacks(conn, a.c.domain_key, full=full))))
    if ours:
        groups = in_blocks(conn, select(*_partner_columns(pa)), pa.c.name_key, ours.blocks,
                           ranges=not full)
        pairs.extend((acc.id, theirs.partner_id, theirs.id, theirs.pop_rank, score)
                     for acc, theirs, score in ours.scan(groups, partner_side, threshold))

    # Pass 2: partner accounts without a domain, against our accounts that have one (pairs
    # where both lack a domain were found in pass 1). An incremental run loads only the
    # blocks its accounts use.
    if full:
        theirs_index = BlockIndex(partner_side(r) for r in conn.execute(
            select(*_partner_columns(pa)).where(pa.c.domain_key.is_(None),
                                                pa.c.name_key.is_not(None))))
    else:
        needed = {blocking_key(r.name_key) for r in conn.execute(
            select(a.c.name_key).select_from(accounts)
            .where(*live, a.c.domain_key.is_not(None)))}
        theirs_index = BlockIndex(
            partner_side(r)
            # "No domain" as an expression: per block, the name range is the index to use.
            for group in in_blocks(conn, select(*_partner_columns(pa))
                                   .where(func.coalesce(pa.c.domain_key, "") == ""),
                                   pa.c.name_key, needed, ranges=True)
            for rows in group.values() for r in rows)
    if theirs_index:
        # `accounts` is the whole table (full run) or the small scope: read it sequentially.
        groups = in_blocks(conn, select(*_account_columns(a)).select_from(accounts)
                           .where(*live, a.c.domain_key.is_not(None)), a.c.name_key,
                           theirs_index.blocks, ranges=False)
        pairs.extend((acc.id, theirs.partner_id, theirs.id, theirs.pop_rank, score)
                     for theirs, acc, score in theirs_index.scan(groups, account_side,
                                                                 threshold))
    return pairs


def accounts_near_dirty_partner_accounts(conn: Connection, threshold: int) -> set[int]:
    """Accounts that fuzzy-match a dirty partner account: an incremental run re-matches them."""
    a, pa = ACCOUNTS, PARTNER_ACCOUNTS
    dirty = BlockIndex(partner_side(r) for r in conn.execute(
        select(*_partner_columns(pa))
        .join(DIRTY_PARTNER_ACCOUNTS, DIRTY_PARTNER_ACCOUNTS.c.id == pa.c.id)
        .where(pa.c.name_key.is_not(None))))
    if not dirty:
        return set()
    stmt = select(*_account_columns(a)).where(a.c.is_deleted == false())
    groups = in_blocks(conn, stmt, a.c.name_key, dirty.blocks, ranges=True)
    return {acc.id for _, acc, _ in dirty.scan(groups, account_side, threshold)}
