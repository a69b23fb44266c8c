"""Fuzzy name matching: rapidfuzz token_sort_ratio within a blocking key, streamed.

Names are compared only when at least one side lacks a usable domain (DESIGN.md 4). That side
is the minority, so it is indexed in memory by blocking key. The other side is read from the
warehouse in its natural order (a sequential scan: reading in name order costs SQLite a random
table lookup per row, several times slower), names only, grouped by block in chunks of bounded
size, and each group is scored against its index block in rapidfuzz's C++ loop: ONE
`process.cdist` call per block (a matrix of every pair of the two, scores under the cutoff left
at 0), or for a block of one or two indexed names one `process.extract` call per name: the
Python loop runs per block, never per pair. The few rows that score are then fetched whole, by id.
Memory is bounded by the no-domain minority plus one chunk of names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple

import numpy as np
from rapidfuzz import fuzz, process
from sqlalchemy import (
    Connection,
    FromClause,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    column,
    delete,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql

from schema.models import Account, PartnerAccount
from sync.matching.keys import BLOCK_PREFIX, block_upper, blocking_keys, sorted_tokens
from sync.matching.rules import duns_compatible, population_rank
from sync.matching.worktables import BLOCKS, DIRTY_PARTNER_ACCOUNTS, table_of

# How names are scored, reported in the run's stats (bench/matching.py prints it), and whether
# that path scores a whole block per call inside rapidfuzz's C++ loops.
SCORING = ("rapidfuzz.process.cdist (token_sort_ratio, score_cutoff), one call per block, or "
           "process.extract, one call per name of a block of one or two: every pair of the "
           "block in C++")
SCORES_WHOLE_BLOCKS = True

STREAM_ROWS = 5_000
# Blocks with at most this many indexed names are scored one `process.extract` call per name;
# larger ones in one `process.cdist` call (see `score_block`).
EXTRACT_CHOICES = 2
# Rows of the streamed side held at once (ids and names only, about 150 bytes each). A full
# match reads the streamed side in its natural order, so a block's rows are spread over the
# whole scan: chunks this large keep nearly every block whole (one cdist call each) in a
# warehouse of a million accounts.
CHUNK_ROWS = 1_000_000
# A full run's first pass reads the partner names by block ranges (not one scan) when the
# partner accounts outnumber its blocks this many times.
FEW_BLOCKS = 20
# Collations whose order is code point order: there, a block is one contiguous range of the
# name_key index.
BINARY_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"})

ACCOUNTS = table_of(Account)
PARTNER_ACCOUNTS = table_of(PartnerAccount)
# Literals, not parameters: a planner proves a partial index applies only from the same text.
NO_DOMAIN = (func.coalesce(PARTNER_ACCOUNTS.c.domain_key, literal_column("''"))
             == literal_column("''"))


class Side(NamedTuple):
    """One row's fuzzy-relevant fields (partner_id and pop_rank only for partner accounts).
    A named tuple: a full match builds one per no-domain row, and a tuple is built several
    times faster than a frozen dataclass."""

    id: int
    name_key: str
    duns: str | None
    has_domain: bool
    partner_id: str = ""
    pop_rank: int = 0


def account_side(row: Sequence[Any]) -> Side:
    """A row of `_account_columns`, by position: a driver's tuple or a SQLAlchemy Row."""
    return Side(row[0], row[1], row[2], row[3] is not None)


def partner_side(row: Sequence[Any]) -> Side:
    """A row of `_partner_columns`, by position."""
    return Side(row[0], row[2], row[3], row[4] is not None, row[1], population_rank(row[5]))


# (account id, partner id, partner account id, population rank, score)
FuzzyPair = tuple[int, str, int, int, float]
# Per block, the shortest and longest name worth reading (see `length_window`).
Windows = Mapping[str, tuple[int, int]]


def length_window(length: int, threshold: float) -> tuple[int, int]:
    """The lengths of the names that can score >= `threshold` against one of `length`.

    fuzz.ratio is 100 * (1 - indel / (a + b)) and an indel distance is at least |a - b|, so
    a score >= t needs t / (200 - t) <= b / a <= (200 - t) / t: at 92, within about 15%.
    One character of slack either side. Reading only these rows halves what a block costs.
    """
    if threshold <= 0:
        return 0, 1 << 30
    lo = math.ceil(length * threshold / (200 - threshold)) - 1
    hi = math.floor(length * (200 - threshold) / threshold) + 1
    return max(lo, 0), hi


def windows(named_blocks: Iterable[tuple[str, str]],
            threshold: float) -> dict[str, tuple[int, int]]:
    """Per block, the union of the length windows of its (block, name) pairs."""
    lengths: dict[str, tuple[int, int]] = {}
    for block, name in named_blocks:
        n = len(name)
        shortest, longest = lengths.get(block, (n, n))
        lengths[block] = (min(shortest, n), max(longest, n))
    # The window grows with the length: the shortest name bounds it below, the longest above.
    return {block: (length_window(shortest, threshold)[0], length_window(longest, threshold)[1])
            for block, (shortest, longest) in lengths.items()}


@dataclass(slots=True)
class _Block:
    names: list[str] = field(default_factory=list)  # sorted tokens, what the scorer compares
    rows: list[Side] = field(default_factory=list)


def _allowed(a: Side, b: Side) -> bool:
    # Exact names are the SQL name rule's; names are compared only when a domain is missing;
    # different DUNS numbers never match.
    return (a.name_key != b.name_key and not (a.has_domain and b.has_domain)
            and duns_compatible(a.duns, b.duns))


def score_block(queries: Sequence[str], choices: Sequence[str],
                threshold: int) -> list[tuple[int, int, float]]:
    """(query index, choice index, score) of every pair whose token_sort_ratio is >=
    threshold, every pair scored in rapidfuzz's C++ loop.

    A block of a few choices (the indexed side: most blocks hold one name) is scored with one
    `process.extract` call per choice, over all the queries: it returns only the pairs at or
    above `score_cutoff`, and costs half a `process.cdist` call with the numpy that reads its
    matrix. A larger block is one `cdist` call for the whole matrix (each query's tokens
    sorted once, there); a pair under `score_cutoff` comes back as 0, so above a threshold of
    0 the matrix's non-zero cells are exactly the pairs `extract` would return. float64 in
    both, the scorer's own precision (scores are rounded to 0.01 afterwards, as before).
    The index's names are already sorted (`sorted_tokens`): sorting them again changes
    nothing.
    """
    if not queries or not choices:
        return []
    if len(choices) <= EXTRACT_CHOICES:
        return [(i, j, score)
                for j, choice in enumerate(choices)
                for _, score, i in process.extract(choice, queries, scorer=fuzz.token_sort_ratio,
                                                   score_cutoff=threshold, limit=None)]
    matrix = process.cdist(queries, choices, scorer=fuzz.token_sort_ratio,
                           score_cutoff=threshold, dtype=np.float64)
    if threshold > 0:
        if not matrix.any():  # most blocks: nothing scores
            return []
        rows, columns = np.nonzero(matrix)
    else:
        rows, columns = np.nonzero(matrix >= threshold)
    return list(zip(rows.tolist(), columns.tolist(), matrix[rows, columns].tolist(),
                    strict=True))


class BlockIndex:
    """The rows of one side grouped by blocking key."""

    def __init__(self, rows: Iterable[Side]) -> None:
        self.blocks: dict[str, _Block] = {}
        blocks = self.blocks
        sides = list(rows)
        for row, key in zip(sides, blocking_keys(row.name_key for row in sides), strict=True):
            block = blocks.get(key)
            if block is None:
                block = blocks[key] = _Block()
            block.names.append(sorted_tokens(row.name_key))
            block.rows.append(row)

    def __len__(self) -> int:
        return len(self.blocks)

    def windows(self, threshold: float) -> dict[str, tuple[int, int]]:
        return windows(((key, name) for key, block in self.blocks.items()
                        for name in block.names), threshold)

    def candidates(self, groups: Iterable[dict[str, list[Any]]],
                   threshold: int) -> Iterator[tuple[Side, Any, float]]:
        """(indexed row, raw other row, score) for every pair of different names scoring >=
        threshold (equal names are the SQL name rule's). `groups` are raw rows of the other
        side by block, each row its id first and its name_key second. One `score_block` call
        per block."""
        for group in groups:
            for key, raw in group.items():
                block = self.blocks[key]
                for i, j, score in score_block([r[1] for r in raw], block.names, threshold):
                    if raw[i][1] != block.rows[j].name_key:
                        yield block.rows[j], raw[i], round(score, 2)

    def scan(self, groups: Iterable[dict[str, list[Any]]], side: Any,
             threshold: int) -> Iterator[tuple[Side, Side, float]]:
        """(indexed row, other row, score) for every allowed pair scoring >= threshold;
        `side` turns a raw row into a Side (only rows that score are converted)."""
        for row, raw, score in self.candidates(groups, threshold):
            other = side(raw)
            if _allowed(row, other):
                yield row, other, score


def code_point_order(conn: Connection) -> bool:
    """Whether text comparisons on this connection follow code points (binary collation)."""
    if conn.dialect.name == "sqlite":
        return True  # BINARY collation
    if conn.dialect.name == "postgresql":
        # A database's collation is fixed when it is created: asked once per connection
        # (the pool keeps `info` with it), not once per explain or web request.
        if "code_point_order" not in conn.info:
            collation = conn.exec_driver_sql(
                "SELECT datcollate FROM pg_database WHERE datname = current_database()"
            ).scalar()
            conn.info["code_point_order"] = collation in BINARY_COLLATIONS
        return bool(conn.info["code_point_order"])
    return False


def _blocks_relation(conn: Connection, blocks: Windows) -> FromClause:
    """`blocks` as rows (block, hi, shortest, longest), in block order.

    On PostgreSQL, four arrays unnested in the query itself: no table to fill row by row
    (psycopg sends an executemany as one statement per row) and nothing to analyze, since the
    LATERAL join fixes the plan. Elsewhere the BLOCKS work table, analyzed: SQLite then loops
    over it (and the executemany is one C loop there).
    """
    ordered = sorted(blocks.items())
    if conn.dialect.name == "postgresql":
        def array(name: str, values: list[Any], of: Any) -> Any:
            return bindparam(name, values, type_=postgresql.ARRAY(of))

        return func.unnest(
            array("blocks", [b for b, _ in ordered], Text),
            array("upper", [block_upper(b) for b, _ in ordered], Text),
            array("shortest", [lo for _, (lo, _) in ordered], Integer),
            array("longest", [hi for _, (_, hi) in ordered], Integer),
        ).table_valued(column("block", Text), column("hi", Text), column("shortest", Integer),
                       column("longest", Integer)).render_derived(name="blocks")
    conn.execute(delete(BLOCKS))
    conn.execute(insert(BLOCKS), [
        {"block": b, "hi": block_upper(b), "shortest": lo, "longest": hi}
        for b, (lo, hi) in ordered])
    conn.execute(text(f"ANALYZE {BLOCKS.name}"))
    return BLOCKS


def _ranges(conn: Connection, stmt: Select[Any], name_key: Any,
            blocks: Windows) -> Iterator[tuple[str, Any]]:
    """(block, row) for the rows of `stmt` whose name is in one of `blocks` and its length
    window, each row once.

    The blocks drive one index range search each: a plain join on SQLite (which, with the
    table analyzed, loops over the blocks), a LATERAL join on PostgreSQL (whose estimate of a
    range join is blind and which would otherwise drive it from the big table). Not
    streamed: the rows of a few blocks are few, and a PostgreSQL cursor is planned for its
    first rows. Ranges nest ("ibm" holds "ibmx…"), so a block shorter than the prefix keeps
    only the names whose first word it is.
    """
    src = _blocks_relation(conn, blocks)
    block_length = func.length(src.c.block)
    ranged = and_(
        name_key >= src.c.block, name_key < src.c.hi,
        func.length(name_key).between(src.c.shortest, src.c.longest),
        or_(block_length == BLOCK_PREFIX, name_key == src.c.block,
            func.substr(name_key, block_length + 1, 1) == " "),
    )
    if conn.dialect.name == "postgresql":
        # LATERAL with OFFSET 0 (so it is not flattened into a plain join): one index range
        # scan per block, an order the planner cannot turn round. Its cost estimate is
        # pessimistic enough to trigger JIT compilation, which costs more than the query:
        # off for the rest of this transaction.
        conn.execute(text("SET LOCAL jit = off"))
        per_block = stmt.where(ranged).offset(0).lateral("per_block")
        query: Select[Any] = (select(per_block, src.c.block.label("range_block"))
                              .select_from(src).join(per_block, true()))
    else:
        query = stmt.add_columns(src.c.block.label("range_block")).join(src, ranged)
    # One fetch of them all, the driver's tuples: iterating a buffered result fetches row
    # by row (psycopg's fetchone costs more than the row's scoring), and a Row costs more
    # than the tuple it wraps (ids and text: no result processing).
    result = conn.execute(query)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    for row in rows:
        yield row[-1], row


def rows_of(conn: Connection, stmt: Select[Any]) -> Iterator[Sequence[Any]]:
    """The rows of `stmt`, streamed STREAM_ROWS at a time, to be read by position.

    On SQLite the driver's own tuples: pysqlite's cursor steps the statement as it is read,
    and its tuples cost a fraction of SQLAlchemy Rows in the loops that read every name of
    the warehouse (the columns read here, ids and text, have no result processing). Elsewhere
    Rows from a server-side cursor (`yield_per`), which psycopg needs to stream (SQLAlchemy
    has already read the first row from that cursor: its rows are read through the result).
    """
    if conn.dialect.name == "sqlite":
        result = conn.execute(stmt)
        cursor = result.cursor
        try:
            while chunk := cursor.fetchmany(STREAM_ROWS):
                yield from chunk
        finally:
            result.close()
        return
    # Per statement: Connection.execution_options would change the whole connection. In
    # chunks: iterating the result row by row costs a fetch call per row (3 s of a full
    # match's 7 s fuzzy stage on PostgreSQL).
    result = conn.execute(stmt.execution_options(yield_per=STREAM_ROWS))
    while chunk := result.fetchmany(STREAM_ROWS):
        yield from chunk


def _in_windows(conn: Connection, stmt: Select[Any],
                blocks: Windows) -> Iterator[dict[str, list[Any]]]:
    """The rows of `stmt` (id first, name_key second; read in its natural order) in one of
    `blocks` and that block's length window, as chunks of up to CHUNK_ROWS rows grouped by
    block. One tight loop per STREAM_ROWS rows: a full match runs it for every name of the
    warehouse."""
    window = blocks.get
    group: dict[str, list[Any]] = {}
    size = 0
    rows = rows_of(conn, stmt)
    while chunk := list(islice(rows, STREAM_ROWS)):
        names = [row[1] for row in chunk]
        for row, name, key in zip(chunk, names, blocking_keys(names), strict=True):
            bounds = window(key)
            if bounds is None or not bounds[0] <= len(name) <= bounds[1]:
                continue
            members = group.get(key)
            if members is None:
                group[key] = [row]
            else:
                members.append(row)
            size += 1
            if size >= CHUNK_ROWS:
                yield group
                group, size = {}, 0
    if group:
        yield group


def in_blocks(conn: Connection, stmt: Select[Any], name_key: Any, blocks: Windows, *,
              ranges: bool) -> Iterator[dict[str, list[Any]]]:
    """The rows of `stmt` (id first, name_key second) whose name is in one of `blocks` (and
    that block's length window), as chunks grouped by block.

    With `ranges` (an incremental run: a big table, few blocks) and a binary collation, only
    the rows of those blocks are read: every name of a block lies in
    [block, block_upper(block)), one range of the name_key index (see `_ranges`). Otherwise
    (a full run needs nearly every block) the table is read once, sequentially.
    """
    if not blocks:
        return
    stmt = stmt.where(name_key.is_not(None))
    if not (ranges and code_point_order(conn)):
        yield from _in_windows(conn, stmt, blocks)
        return
    group: dict[str, list[Any]] = {}
    size = 0
    for key, row in _ranges(conn, stmt, name_key, blocks):
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


def _count(conn: Connection, table: FromClause) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _account_columns(a: FromClause) -> Sequence[Any]:
    return (a.c.id, a.c.name_key, a.c.duns, a.c.domain_key)


def _partner_columns(pa: FromClause) -> Sequence[Any]:
    return (pa.c.id, pa.c.partner_id, pa.c.name_key, pa.c.duns, pa.c.domain_key,
            pa.c.population)


def _sides(conn: Connection, columns: Sequence[Any], side: Any,
           ids: Iterable[int]) -> dict[int, Side]:
    """Whole rows (as Sides) of the ids that scored, fetched by primary key."""
    id_column, ordered, out = columns[0], sorted(ids), {}
    for start in range(0, len(ordered), 1_000):
        for row in conn.execute(select(*columns)
                                .where(id_column.in_(ordered[start:start + 1_000]))):
            out[row.id] = side(row)
    return out


def _partner_sides(conn: Connection, ids: Iterable[int]) -> dict[int, Side]:
    return _sides(conn, _partner_columns(PARTNER_ACCOUNTS), partner_side, ids)


def _against_partner_names(conn: Connection, ours: BlockIndex, names: Select[Any],
                           threshold: int, *, ranges: bool) -> Iterator[FuzzyPair]:
    """Pairs of our indexed accounts with the partner rows of `names` (id and name only: an
    index-only read of name_key); the few rows that score are then fetched whole, by id."""
    pa = PARTNER_ACCOUNTS
    groups = in_blocks(conn, names, pa.c.name_key, ours.windows(threshold), ranges=ranges)
    hits = list(ours.candidates(groups, threshold))
    sides = _partner_sides(conn, {raw[0] for _, raw, _ in hits})
    for acc, raw, score in hits:
        theirs = sides[raw[0]]
        if _allowed(acc, theirs):
            yield acc.id, theirs.partner_id, theirs.id, theirs.pop_rank, score


def fuzzy_pairs(conn: Connection, accounts: FromClause, threshold: int, *,
                full: bool) -> list[FuzzyPair]:
    """All fuzzy pairs for the accounts of `accounts` (the accounts table, or the run's scope
    read into a work table with the same column names), against every partner account."""
    a, pa = accounts, PARTNER_ACCOUNTS
    live = (a.c.is_deleted == false(), a.c.name_key.is_not(None))
    pairs: list[FuzzyPair] = []

    # Pass 1: our accounts without a domain, against every partner account in their blocks.
    ours = BlockIndex(account_side(r) for r in rows_of(
        conn, select(*_account_columns(a))
        .where(*live, lacks(conn, a.c.domain_key, full=full))))
    if ours:
        # A full run reads the partner names by block ranges too when our blocks are few
        # against the partner accounts (most accounts have a domain): an index range per block
        # reads a tenth of the names where a scan reads them all through Python.
        ranges = not full or len(ours) * FEW_BLOCKS <= _count(conn, pa)
        pairs.extend(_against_partner_names(conn, ours, select(pa.c.id, pa.c.name_key),
                                            threshold, ranges=ranges))

    # Pass 2: partner accounts without a domain, against our accounts that have one (pairs
    # where both lack a domain were found in pass 1).
    if not full:
        # The run's few accounts index the blocks; the partner names without a domain in
        # them are read as in pass 1. "No domain" is phrased as the predicate of the partial
        # index ix_partner_accounts_name_key_no_domain (a plain IS NULL would draw SQLite to
        # the domain index): one range of that index per block.
        with_domain = BlockIndex(account_side(r) for r in rows_of(
            conn, select(*_account_columns(a))
            .where(*live, a.c.domain_key.is_not(None))))
        if with_domain:
            pairs.extend(_against_partner_names(
                conn, with_domain, select(pa.c.id, pa.c.name_key).where(NO_DOMAIN), threshold,
                ranges=True))
        return pairs
    theirs_index = BlockIndex(partner_side(r) for r in rows_of(
        conn, select(*_partner_columns(pa)).where(pa.c.domain_key.is_(None),
                                                  pa.c.name_key.is_not(None))))
    if theirs_index:
        # A full run: the no-domain partner rows are indexed, our accounts read once, in order.
        # Ids and names only; the few accounts that score are then fetched whole, by id.
        groups = in_blocks(conn, select(a.c.id, a.c.name_key)
                           .where(*live, a.c.domain_key.is_not(None)), a.c.name_key,
                           theirs_index.windows(threshold), ranges=False)
        hits = list(theirs_index.candidates(groups, threshold))
        sides = _sides(conn, _account_columns(a), account_side, {raw[0] for _, raw, _ in hits})
        for theirs, raw, score in hits:
            acc = sides[raw[0]]
            if _allowed(theirs, acc):
                pairs.append((acc.id, theirs.partner_id, theirs.id, theirs.pop_rank, score))
    return pairs


def accounts_near_dirty_partner_accounts(conn: Connection, threshold: int) -> set[int]:
    """Accounts that fuzzy-match a dirty partner account: an incremental run re-matches them."""
    a, pa = ACCOUNTS, PARTNER_ACCOUNTS
    dirty = BlockIndex(partner_side(r) for r in rows_of(
        conn, select(*_partner_columns(pa))
        .join(DIRTY_PARTNER_ACCOUNTS, DIRTY_PARTNER_ACCOUNTS.c.id == pa.c.id)
        .where(pa.c.name_key.is_not(None))))
    if not dirty:
        return set()
    stmt = select(*_account_columns(a)).where(a.c.is_deleted == false())
    groups = in_blocks(conn, stmt, a.c.name_key, dirty.windows(threshold), ranges=True)
    return {acc.id for _, acc, _ in dirty.scan(groups, account_side, threshold)}
