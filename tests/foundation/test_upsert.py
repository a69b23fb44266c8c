"""Bulk upserts land new rows, update changed ones, and leave unchanged ones alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from schema.models import Account
from schema.upsert import bulk_upsert

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(n: int, start: int = 0, name: str = "Acme", at: datetime = T0) -> list[dict[str, object]]:
    return [
        {"source": "salesforce", "external_id": f"001{i:015d}", "name": f"{name} {i}",
         "website": f"acme{i}.com", "modified_at": at, "ingested_at": at,
         "is_deleted": False, "match_dirty": True}
        for i in range(start, start + n)
    ]


def test_upsert_inserts_then_updates_in_place(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        assert bulk_upsert(conn, Account, rows(12_000), ["source", "external_id"],
                           chunk_rows=5_000) == 12_000
    later = T0 + timedelta(hours=1)
    with warehouse.begin() as conn:
        bulk_upsert(conn, Account, rows(6_000, 6_000, "Renamed", later) + rows(6_000, 12_000),
                    ["source", "external_id"])
    with warehouse.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Account)).scalar() == 18_000
        renamed = conn.execute(
            select(Account.name, Account.modified_at)
            .where(Account.external_id == f"001{7000:015d}")
        ).one()
        assert renamed.name == "Renamed 7000"
        assert renamed.modified_at == later
        kept = conn.execute(select(Account.name).where(Account.external_id == f"001{10:015d}"))
        assert kept.scalar() == "Acme 10"


def test_insert_or_ignore_keeps_existing_values(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        bulk_upsert(conn, Account, rows(10), ["source", "external_id"])
        bulk_upsert(conn, Account, rows(10, 0, "Other"), ["source", "external_id"], [])
    with warehouse.connect() as conn:
        names = conn.execute(select(Account.name).order_by(Account.external_id)).scalars().all()
    assert names[0] == "Acme 0"


def test_only_if_changed_skips_identical_rows(warehouse: Engine) -> None:
    with warehouse.begin() as conn:
        bulk_upsert(conn, Account, rows(5), ["source", "external_id"])
    with warehouse.begin() as conn:
        bulk_upsert(conn, Account, rows(5), ["source", "external_id"], ["name", "website"],
                    only_if_changed=True)
        bulk_upsert(conn, Account, rows(1, 0, "New"), ["source", "external_id"],
                    ["name"], only_if_changed=True)
    with warehouse.connect() as conn:
        names = conn.execute(select(Account.name).order_by(Account.external_id)).scalars().all()
    assert names == ["New 0", "Acme 1", "Acme 2", "Acme 3", "Acme 4"]


def test_aware_datetimes_round_trip_as_utc(warehouse: Engine) -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 3, 1, 9, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    with warehouse.begin() as conn:
        bulk_upsert(conn, Account, rows(1, at=local), ["source", "external_id"])
    with warehouse.connect() as conn:
        value = conn.execute(select(Account.modified_at)).scalar_one()
    assert value == local and value.tzinfo is not None and value.utcoffset() == timedelta(0)
