"""Landing pages: idempotent upserts, match flags only on key changes, watermarks monotonic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from connectors.base import Page, Watermark
from schema.models import Account
from schema.records import AccountRecord, Stream
from sync.ingest import land_page, live_count, read_watermark

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


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


def test_rematch_flag_raised_only_when_a_key_changes(warehouse: Engine) -> None:
    with Session(warehouse) as s, s.begin():
        land_page(s, "salesforce", page(acc(1), acc(2)), now=T0)
        s.execute(update(Account).values(match_dirty=False))
    later = T0 + timedelta(minutes=5)
    with Session(warehouse) as s, s.begin():
        # Account 1: same website in another surface form; account 2: a new domain.
        land_page(s, "salesforce",
                  page(acc(1, "acme.co.uk", at=later), acc(2, "globex.com", at=later)), now=later)
    with Session(warehouse) as s:
        flags = dict(s.execute(select(Account.external_id, Account.match_dirty)).all())
    assert flags == {f"001{1:015d}": False, f"001{2:015d}": True}


def test_deletion_is_soft_and_counts_as_a_match_change(warehouse: Engine) -> None:
    with Session(warehouse) as s, s.begin():
        land_page(s, "salesforce", page(acc(1), acc(2)), now=T0)
        s.execute(update(Account).values(match_dirty=False))
    with Session(warehouse) as s, s.begin():
        land_page(s, "salesforce", page(acc(2, deleted=True)), now=T0 + timedelta(hours=1))
    with Session(warehouse) as s:
        gone = s.scalars(select(Account).where(Account.is_deleted.is_(True))).one()
        assert gone.match_dirty and gone.deleted_at == T0 + timedelta(hours=1)
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
