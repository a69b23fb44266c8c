"""Temporary work tables of one re-match, private to its database connection.

Candidates are materialized inside the warehouse so the whole reconciliation (strongest row per
(account, partner), new, still present, vanished) runs as a handful of set-based statements,
the same on SQLite and PostgreSQL. They are created at the start of a run and dropped at its end
(a rolled-back run drops them with its transaction).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    false,
)

from schema.models import Account, Base, BigId, Overlap

WORK = MetaData()


def table_of(model: type[Base]) -> Table:
    """A model's Core table, typed as one (mapped `__table__` is only a FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _temp(name: str, *items: Column[object] | Index) -> Table:
    return Table(name, WORK, *items, prefixes=["TEMPORARY"])


def _copied(model: type[Base], *names: str) -> list[Column[object]]:
    """Columns of `model`'s table as they are there (type, nullability), for a work table
    that holds a copy of its rows: no type written twice. No keys and no defaults."""
    table = table_of(model)
    return [Column(name, table.c[name].type, nullable=table.c[name].nullable)
            for name in names]


def _id(name: str, *, primary_key: bool = False, nullable: bool = False) -> Column[object]:
    return Column(name, BigId if primary_key else BigInteger, primary_key=primary_key,
                  autoincrement=False, nullable=nullable)


# Dirty rows as seen at the start of the run: only these flags are cleared at its end.
DIRTY_ACCOUNTS = _temp("ecosync_match_dirty_accounts", _id("id", primary_key=True))
DIRTY_PARTNER_ACCOUNTS = _temp("ecosync_match_dirty_pas", _id("id", primary_key=True))
# A full run's accounts with an active overlap on a queued partner account (taken from the
# queue without copying the partner accounts' ids: engine._Run.snapshot_dirty).
TOUCHED = _temp("ecosync_match_touched", _id("account_id", primary_key=True))
# Accounts whose overlaps this (incremental) run recomputes.
SCOPE = _temp("ecosync_match_scope", _id("account_id", primary_key=True))
# The scope's live accounts, read once: every rule of an incremental run joins from these
# rows instead of probing the accounts table again (one primary-key lookup per scope account
# and statement: six passes, a third of PostgreSQL's run at 1% of a million changed). The
# columns the rules read, as in `accounts`.
SCOPED = _temp("ecosync_match_scoped", _id("id", primary_key=True),
               *_copied(Account, "source", "external_id", "name_key", "domain_key", "duns",
                        "is_deleted"))
# Every (account, partner account) pair some rule matched, before the strongest is chosen.
CANDIDATES = _temp(
    "ecosync_match_candidates",
    _id("account_id"),
    Column("partner_id", String(64), nullable=False),
    _id("partner_account_id", nullable=True),
    Column("method_rank", Integer, nullable=False),
    Column("pop_rank", Integer, nullable=False),
    Column("score", Float),
)
# Pairs an active block override removes (partner_account_id NULL: the whole partner).
BLOCKED = _temp(
    "ecosync_match_blocked",
    _id("account_id"),
    Column("partner_id", String(64), nullable=False),
    _id("partner_account_id", nullable=True),
)
# The desired overlap set: one row per (account, partner).
BEST = _temp(
    "ecosync_match_best",
    Column("account_id", BigId, primary_key=True, autoincrement=False),
    Column("partner_id", String(64), primary_key=True),
    _id("partner_account_id", nullable=True),
    Column("method", String(16), nullable=False),
    Column("population", String(20), nullable=False),
    Column("score", Float),
    # Already an active overlap (set before the overlaps table is written).
    Column("present", Boolean, nullable=False, server_default=false()),
)
# The scope's active overlaps, read once (an incremental run): the reconcile compares them
# with BEST here instead of probing the overlaps table once per statement.
ACTIVE = _temp("ecosync_match_active", _id("id", primary_key=True),
               *_copied(Overlap, "account_id", "partner_id", "partner_account_id", "population"),
               Index("ix_ecosync_match_active_pair", "account_id", "partner_id"))
# Accounts whose visible overlap set changed: their owned fields must be recomputed.
CHANGED = _temp("ecosync_match_changed", _id("account_id", primary_key=True))
# Fuzzy blocks an incremental pass needs, with each block's range upper bound and the
# lengths of the names worth reading in it.
BLOCKS = _temp("ecosync_match_blocks", Column("block", String(64), primary_key=True),
               Column("hi", String(64), nullable=False),
               Column("shortest", Integer, nullable=False),
               Column("longest", Integer, nullable=False))


@contextmanager
def work_tables(conn: Connection) -> Iterator[None]:
    for table in WORK.sorted_tables:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    yield
    # Dropped on success only: after an error the transaction is rolled back (which drops
    # them on both engines) and PostgreSQL would refuse any further statement anyway.
    for table in reversed(WORK.sorted_tables):
        table.drop(conn)
