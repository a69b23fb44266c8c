"""The dirty queue (sync.dirty): one owner of "re-match" and "re-plan", stored apart from the
records. Migration 0009 carries raised flags over into the queue and back; matching and a
push leave the records' rows untouched; a mark raised while a record waits is kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import BigInteger, Column, Engine, MetaData, Table, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import migrations
from schema.models import Account, DirtyRecord
from sync import dirty
from sync.config import MatchingConfig
from sync.dirty import Kind, Queue
from sync.matching.engine import rematch

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_migration_carries_raised_flags_into_the_queue_and_back(
    new_database: Callable[..., Engine],
) -> None:
    engine = new_database(migrate=False)
    migrations.upgrade(engine, "0011")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO accounts (id, source, external_id, modified_at, ingested_at, "
            "is_deleted, match_dirty, fields_dirty) VALUES "
            "(1, 'sf', 'a', :t, :t, false, true, false), (2, 'sf', 'b', :t, :t, false, false, "
            "true), (3, 'sf', 'c', :t, :t, false, false, false)"), {"t": T0.replace(tzinfo=None)})
        conn.execute(text(
            "INSERT INTO opportunities (id, source, external_id, status, modified_at, "
            "ingested_at, is_deleted, fields_dirty, reopens_seen) VALUES "
            "(7, 'sf', 'o', 'open', :t, :t, false, true, 0)"), {"t": T0.replace(tzinfo=None)})
    migrations.upgrade(engine)
    with Session(engine) as s:
        rows = set(s.execute(select(DirtyRecord.queue, DirtyRecord.kind, DirtyRecord.record_id)))
    assert rows == {("match", "account", 1), ("plan", "account", 2), ("plan", "opportunity", 7)}
    migrations.downgrade(engine, "0011")
    with engine.connect() as conn:
        flags = conn.execute(text(
            "SELECT id, match_dirty, fields_dirty FROM accounts ORDER BY id")).all()
        opp = conn.execute(text("SELECT fields_dirty FROM opportunities")).scalar()
    assert [(i, bool(m), bool(f)) for i, m, f in flags] == [
        (1, True, False), (2, False, True), (3, False, False)]
    assert bool(opp)


@pytest.mark.parametrize("full", [False, True])
def test_matching_leaves_the_account_rows_alone(warehouse: Engine, full: bool) -> None:
    with Session(warehouse) as s, s.begin():
        ids = []
        for i in range(3):
            account = Account(source="sf", external_id=f"a{i}", name=f"Acme {i}",
                              domain_key=f"acme{i}.com", modified_at=T0, ingested_at=T0)
            s.add(account)
            s.flush()
            ids.append(account.id)
        dirty.mark(s, Queue.MATCH, Kind.ACCOUNT, ids)
    before = _accounts(warehouse)
    with Session(warehouse) as s, s.begin():
        dirty.mark(s, Queue.PLAN, Kind.ACCOUNT, ids[:1])  # another queue: left alone
        stats = rematch(s, MatchingConfig(), now=T0, full=full)
    assert stats.dirty_accounts == 3
    assert _accounts(warehouse) == before  # not one account row rewritten
    with Session(warehouse) as s:
        assert dirty.count(s, Queue.MATCH, Kind.ACCOUNT) == 0
        assert dirty.holds(s, Queue.PLAN, Kind.ACCOUNT, ids[0])


def test_marking_twice_keeps_one_mark_and_clearing_takes_only_what_was_named(
    warehouse: Engine,
) -> None:
    with Session(warehouse) as s, s.begin():
        dirty.mark(s, Queue.PLAN, Kind.OPPORTUNITY, [5, 6, 7])
        dirty.mark(s, Queue.PLAN, Kind.OPPORTUNITY, [6, 8])
        dirty.mark(s, Queue.MATCH, Kind.ACCOUNT, [6])
        dirty.clear(s, Queue.PLAN, Kind.OPPORTUNITY, [5, 6])
    with Session(warehouse) as s:
        left = set(s.scalars(dirty.queued(Queue.PLAN, Kind.OPPORTUNITY)))
        assert left == {7, 8}
        assert dirty.holds(s, Queue.MATCH, Kind.ACCOUNT, 6)


def test_taking_a_queue_copies_its_ids_and_leaves_the_other_queues(warehouse: Engine) -> None:
    taken = Table("taken_ids", MetaData(), Column("id", BigInteger, primary_key=True),
                  prefixes=["TEMPORARY"])
    with Session(warehouse) as s, s.begin():
        dirty.mark(s, Queue.MATCH, Kind.ACCOUNT, [3, 4, 5])
        dirty.mark(s, Queue.MATCH, Kind.PARTNER_ACCOUNT, [4])
        dirty.mark(s, Queue.PLAN, Kind.ACCOUNT, [3])
        taken.create(s.connection())
        dirty.take(s, Queue.MATCH, Kind.ACCOUNT, taken)
        assert set(s.scalars(select(taken.c.id))) == {3, 4, 5}
        taken.drop(s.connection())
    with Session(warehouse) as s:
        assert set(s.scalars(dirty.queued(Queue.MATCH, Kind.ACCOUNT))) == set()
        assert set(s.scalars(dirty.queued(Queue.MATCH, Kind.PARTNER_ACCOUNT))) == {4}
        assert set(s.scalars(dirty.queued(Queue.PLAN, Kind.ACCOUNT))) == {3}


def test_a_mark_committed_while_a_take_runs_is_taken_or_kept_never_lost(
    warehouse: Engine,
) -> None:
    """The take reads the queue, then deletes its whole (queue, kind) range. A mark another
    writer commits in between is either in the copy (PostgreSQL reads it at the delete) or
    still queued (SQLite refuses the stale write: the take's transaction fails and is rolled
    back): never deleted unseen."""
    taken = Table("taken_ids", MetaData(), Column("id", BigInteger, primary_key=True),
                  prefixes=["TEMPORARY"])
    with Session(warehouse) as s, s.begin():
        dirty.mark(s, Queue.MATCH, Kind.ACCOUNT, [1, 2])
    copied: set[int] = set()
    with warehouse.connect() as conn:
        trans = conn.begin()
        taken.create(conn)
        assert set(conn.execute(dirty.queued(Queue.MATCH, Kind.ACCOUNT)).scalars()) == {1, 2}
        with Session(warehouse) as other, other.begin():  # another writer, committed
            dirty.mark(other, Queue.MATCH, Kind.ACCOUNT, [3])
        try:
            dirty.take(conn, Queue.MATCH, Kind.ACCOUNT, taken)
            copied = set(conn.execute(select(taken.c.id)).scalars())
            trans.commit()
        except OperationalError:
            assert warehouse.dialect.name == "sqlite"
            trans.rollback()
    with Session(warehouse) as s:
        left = set(s.scalars(dirty.queued(Queue.MATCH, Kind.ACCOUNT)))
    assert copied | left == {1, 2, 3}
    assert not copied & left


def test_a_mark_committed_while_take_into_runs_is_taken_or_kept_never_lost(
    warehouse: Engine,
) -> None:
    """`take_into` derives rows from the ids it takes without copying them; like `take`, a
    mark another writer commits meanwhile is taken (and counted) or stays queued."""
    derived = Table("derived_ids", MetaData(), Column("id", BigInteger, primary_key=True),
                    prefixes=["TEMPORARY"])
    with Session(warehouse) as s, s.begin():
        dirty.mark(s, Queue.MATCH, Kind.PARTNER_ACCOUNT, [1, 2])
    taken = 0
    with warehouse.connect() as conn:
        trans = conn.begin()
        derived.create(conn)
        assert dirty.count(conn, Queue.MATCH, Kind.PARTNER_ACCOUNT) == 2  # the read
        with Session(warehouse) as other, other.begin():  # another writer, committed
            dirty.mark(other, Queue.MATCH, Kind.PARTNER_ACCOUNT, [3])
        try:
            taken = dirty.take_into(conn, Queue.MATCH, Kind.PARTNER_ACCOUNT, derived,
                                    lambda ids: select((ids.c.record_id * 10).label("id")))
            copied = set(conn.execute(select(derived.c.id)).scalars())
            assert copied == {10 * i for i in range(1, taken + 1)}
            trans.commit()
        except OperationalError:
            assert warehouse.dialect.name == "sqlite"
            trans.rollback()
    with Session(warehouse) as s:
        left = dirty.count(s, Queue.MATCH, Kind.PARTNER_ACCOUNT)
    assert taken + left == 3


def _accounts(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(Account).order_by(Account.id))]
