"""Landing pages: idempotent upserts, match flags only on key changes, watermarks monotonic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.base import Page, Watermark
from schema.models import Account
from schema.records import AccountRecord, Stream
from sync import dirty
from sync.dirty import Kind, Queue
from sync.ingest import land_page, live_count, read_watermark

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
ID1, ID2 = f"001{1:015d}", f"001{2:015d}"


def acc(i: int, website: str = "https://www.acme.co.uk/x", *, at: datetime = T0,
        deleted: bool = False, name: str = "Acme Ltd") -> AccountRecord:
    return AccountRecord(source="salesforce", external_id=f"001{i:015d}", modified_at=at,
                         name=name, website=website, is_deleted=deleted,
                         owned={"overlap_count": "2"})


def page(*records: AccountRecord, mark: Watermark | None = None) -> Page:
    return Page(Stream.ACCOUNTS, list(records), mark)


def test_landing_computes_keys_and_commits_watermark(warehouse: Engine) -> None:
    with Session(warehouse) as s, s.begin():
        land_page(s, "salesforce", page(acc(1), acc(2, "gmail.com"), mark=Watermark(T0, "b")),
                  now=T0)
    with Session(warehouse) as s:
        rows = s.scalars(select(Account).order_by(Account.external_id)).all()
        assert [r.domain_key for r in rows] == ["acme.co.uk", None]
        assert rows[0].name_key == "acme"
        assert rows[0].owned_values == {"overlap_count": "2"}
        assert read_watermark(s, "salesforce", Stream.ACCOUNTS) == Watermark(T0, "b")


def queued(engine: Engine, queue: Queue) -> dict[str, bool]:
    with Session(engine) as s:
        ids = dict(s.execute(select(Account.external_id, Account.id)).all())
        return {ext: dirty.holds(s, queue, Kind.ACCOUNT, i) for ext, i in ids.items()}


def empty_queues(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        for queue in Queue:
            dirty.clear(s, queue, Kind.ACCOUNT, dirty.queued(queue, Kind.ACCOUNT))


def test_rematch_flag_raised_only_when_a_key_changes(warehouse: Engine) -> None:
    with Session(warehouse) as s, s.begin():
        land_page(s, "salesforce", page(acc(1), acc(2)), now=T0)
    assert queued(warehouse, Queue.MATCH) == {ID1: True, ID2: True}  # new: both queues
    assert queued(warehouse, Queue.PLAN) == {ID1: True, ID2: True}
    empty_queues(warehouse)
    later = T0 + timedelta(minutes=5)
    with Session(warehouse) as s, s.begin():
        # Account 1: same website in another surface form; account 2: a new domain.
        land_page(s, "salesforce",
                  page(acc(1, "acme.co.uk", at=later), acc(2, "globex.com", at=later)), now=later)
    assert queued(warehouse, Queue.MATCH) == {ID1: False, ID2: True}
    assert queued(warehouse, Queue.PLAN) == {ID1: True, ID2: True}  # both websites changed


def test_a_reread_that_changed_only_its_modstamp_queues_nothing(warehouse: Engine) -> None:
    # The echo of ecosync's own write: the CRM moved the modstamp, the values are ours.
    with Session(warehouse) as s, s.begin():
        first = land_page(s, "salesforce", page(acc(1), acc(2)), now=T0)
    assert first.changed == 2
    empty_queues(warehouse)
    later = T0 + timedelta(minutes=1)
    with Session(warehouse) as s, s.begin():
        echo = land_page(s, "salesforce", page(acc(1, at=later), acc(2, at=later)), now=later)
    assert (echo.records, echo.changed) == (2, 0)
    assert queued(warehouse, Queue.MATCH) == {ID1: False, ID2: False}
    assert queued(warehouse, Queue.PLAN) == {ID1: False, ID2: False}
    with Session(warehouse) as s:  # the row itself is current
        assert set(s.scalars(select(Account.modified_at))) == {later}
    rep_edit = AccountRecord(source="salesforce", external_id=ID2, modified_at=later,
                             name="Acme Ltd", website="https://www.acme.co.uk/x",
                             owned={"overlap_count": "7"})
    with Session(warehouse) as s, s.begin():
        edited = land_page(s, "salesforce", page(rep_edit), now=later)
    assert edited.changed == 1  # a rep typed over an owned field: planned, not re-matched
    assert queued(warehouse, Queue.PLAN) == {ID1: False, ID2: True}
    assert queued(warehouse, Queue.MATCH) == {ID1: False, ID2: False}


def test_deletion_is_soft_and_counts_as_a_match_change(warehouse: Engine) -> None:
    with Session(warehouse) as s, s.begin():
        land_page(s, "salesforce", page(acc(1), acc(2)), now=T0)
    empty_queues(warehouse)
    with Session(warehouse) as s, s.begin():
        land_page(s, "salesforce", page(acc(2, deleted=True)), now=T0 + timedelta(hours=1))
    assert queued(warehouse, Queue.MATCH) == {ID1: False, ID2: True}
    with Session(warehouse) as s:
        gone = s.scalars(select(Account).where(Account.is_deleted.is_(True))).one()
        assert gone.deleted_at == T0 + timedelta(hours=1)
        assert live_count(s, "salesforce", Stream.ACCOUNTS) == 1


def test_watermark_never_moves_backwards(warehouse: Engine) -> None:
    with Session(warehouse) as s, s.begin():
        land_page(s, "salesforce", page(acc(1), mark=Watermark(T0, "z")), now=T0)
        land_page(s, "salesforce", page(acc(1), mark=Watermark(T0 - timedelta(minutes=9), "a")),
                  now=T0)
        land_page(s, "salesforce", page(acc(1), mark=Watermark(T0, "a")), now=T0)
    with Session(warehouse) as s:
        assert read_watermark(s, "salesforce", Stream.ACCOUNTS) == Watermark(T0, "z")


def test_a_failed_page_rolls_back_rows_and_watermark(warehouse: Engine) -> None:
    try:
        with Session(warehouse) as s, s.begin():
            land_page(s, "salesforce", page(acc(1), mark=Watermark(T0, "x")), now=T0)
            raise RuntimeError("killed mid-page")
    except RuntimeError:
        pass
    with Session(warehouse) as s:
        assert s.scalars(select(Account)).all() == []
        assert read_watermark(s, "salesforce", Stream.ACCOUNTS) is None
