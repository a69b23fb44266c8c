"""How a re-match helps PostgreSQL's planner and writer (no effect on other engines).

The matching statements are the same on every engine (sync.matching.engine); what differs is
what PostgreSQL needs to run them well at a million rows: statistics refreshed after a large
run, nested loops when the run's scope is small, and foreign keys checked once for a bulk
insert. Each function is a no-op elsewhere, and each changes only the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.schema import AddConstraint, DropConstraint

# A run that rewrote this many rows of a table and a tenth of it refreshes its statistics.
ANALYZE_AFTER_ROWS = 10_000
# New overlaps from which their foreign keys are checked once, not per row.
BULK_INSERT_ROWS = 100_000
# A scope this many times smaller than the accounts drives every join.
SMALL_SCOPE = 50


def _is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def quoted(conn: Connection, table: Table) -> str:
    # "overlaps" is a reserved word in PostgreSQL.
    return str(conn.dialect.identifier_preparer.quote(table.name))


def _estimated_rows(conn: Connection, name: str) -> float | None:
    rows = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = "
                             "CAST(:name AS regclass)"), {"name": name}).scalar()
    return None if rows is None or rows < 0 else float(rows)


def analyze_if_large(conn: Connection, table: Table, written: int) -> None:
    """ANALYZE `table` once a run rewrote a tenth of it (autovacuum's own default threshold):
    a first or large run changes a table's size by orders of magnitude before autovacuum
    notices, and the next incremental run would be planned for an empty table. Sampling a
    large table costs more than a small run itself, hence the threshold."""
    if not _is_postgresql(conn) or written <= ANALYZE_AFTER_ROWS:
        return
    rows = _estimated_rows(conn, quoted(conn, table))
    if rows is None or written > 0.1 * rows:
        conn.execute(text(f"ANALYZE {quoted(conn, table)}"))


def prefer_index_probes(conn: Connection) -> None:
    """For an incremental run: a small scope drives index lookups into the big tables. At
    the default random_page_cost (4, spinning disks) PostgreSQL prefers to scan a million
    accounts to hash-join ten thousand; a warehouse's hot tables sit in memory."""
    if _is_postgresql(conn):
        conn.execute(text("SET LOCAL random_page_cost = 1.1"))


def drive_from_small_scope(conn: Connection, scope_accounts: int) -> None:
    """When an incremental run's scope is a small share of the accounts, plan every join of
    the run as nested loops driven from it.

    Each statement joins the scope (thousands of rows) to million-row tables. The planner
    estimates a partial index's rows from the whole table (a DUNS index holding 5% of the
    accounts), and then prefers to merge the whole DUNS index with the partner's, or to hash
    a tenth of the accounts, over probing the indexes once per scope row: 90-180 ms a
    statement where the probes take 10-60 ms (bench/matching.py, 1% of 1M changed).
    """
    if not _is_postgresql(conn):
        return
    accounts = _estimated_rows(conn, "accounts")
    if accounts is None or scope_accounts * SMALL_SCOPE > accounts:
        return
    conn.execute(text("SET LOCAL enable_hashjoin = off"))
    conn.execute(text("SET LOCAL enable_mergejoin = off"))


def _owns(conn: Connection, table: Table) -> bool:
    """Whether this role may alter `table` (only its owner may drop a constraint). The
    documented setup runs ecosync as the schema's owner; a warehouse restored under another
    role still matches, row by row."""
    return bool(conn.execute(text(
        "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
        "WHERE oid = CAST(:name AS regclass)"), {"name": quoted(conn, table)}).scalar())


def insert_checking_keys_once(conn: Connection, table: Table, rows: int, stmt: Any) -> None:
    """Run `stmt`, an INSERT of `rows` rows into `table`; for a bulk on PostgreSQL, with the
    table's foreign keys checked once, by a join, instead of row by row.

    PostgreSQL checks a foreign key with a trigger per inserted row that looks the parent up
    and locks it (FOR KEY SHARE): three per overlap, 11 s of the 18 s it takes to insert
    650,000 of them (bench/matching.py). Its manual's advice for a bulk load is to drop the
    constraints and add them back: adding one validates every row in one join (about 0.5 s
    each here). Inside the caller's transaction, so no other session ever sees the table
    without them and a failed run restores them; the constraints are the models' own (names
    and ON DELETE rules). The cost: from the drop to the commit the run holds an exclusive
    lock on the table (readers wait), so only a bulk does it: a first match or a large
    partner list, never a tick's few changes. A role that does not own the table (a
    warehouse restored under another role) inserts row by row, as before.
    """
    if not _is_postgresql(conn) or rows < BULK_INSERT_ROWS or not _owns(conn, table):
        conn.execute(stmt)
        return
    keys = sorted(table.foreign_key_constraints, key=lambda fk: str(fk.name))
    for key in keys:
        conn.execute(DropConstraint(key))
    conn.execute(stmt)
    for key in keys:
        conn.execute(AddConstraint(key))
