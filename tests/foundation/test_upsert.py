"""Bulk upserts land new rows, update changed ones, and leave unchanged ones alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from schema.models import Account
from schema.upsert import bulk_upsert

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(n: int, start: int = 0, name: str = "Acme", at: datetime = T0) -> list[dict[str, object]]:
    return [
        {"source": "salesforce", "external_id": f"001{i:015d}", "name": f"{name} {i}",
         "website": f"acme{i}.com", "modified_at": at, "ingested_at": at,
         "is_deleted": False}
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


def test_a_key_repeated_in_one_batch_keeps_its_last_row(warehouse: Engine) -> None:
    # Above the size where PostgreSQL stages through COPY, whose single merge statement
    # may not touch a row twice; below it, where rows go one by one.
    for size in (3_000, 10):
        batch = rows(size) + rows(1, 5, "Again")
        with warehouse.begin() as conn:
            assert bulk_upsert(conn, Account, batch, ["source", "external_id"]) == size + 1
        with warehouse.connect() as conn:
            again = conn.execute(select(Account.name).where(
                Account.external_id == f"001{5:015d}")).scalar_one()
            count = conn.execute(select(func.count()).select_from(Account)).scalar()
        assert (again, count) == ("Again 5", max(size, 3_000))


def test_update_expressions_and_constants_reach_every_row(warehouse: Engine) -> None:
    from sqlalchemy import case

    def flag(table: Any, excluded: Any) -> dict[str, Any]:
        return {"is_deleted": case((table.c.name.is_distinct_from(excluded.name), True),
                                   else_=False)}

    with warehouse.begin() as conn:
        bulk_upsert(conn, Account, rows(2_500), ["source", "external_id"])
    renamed = rows(100, 0, "Renamed") + rows(2_400, 100)  # 2,500 rows: not a multiple of 64
    with warehouse.begin() as conn:
        bulk_upsert(conn, Account, renamed, ["source", "external_id"], ["name"],
                    update_expressions=flag)
    with warehouse.connect() as conn:
        dirty = conn.execute(select(func.count()).select_from(Account)
                             .where(Account.is_deleted.is_(True))).scalar()
    assert dirty == 100


def test_an_unknown_column_is_refused_before_anything_is_written(warehouse: Engine) -> None:
    bad = [{**rows(1)[0], "colour": "red"}]
    with pytest.raises(ValueError, match="colour"), warehouse.begin() as conn:
        bulk_upsert(conn, Account, bad, ["source", "external_id"])
    with warehouse.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Account)).scalar() == 0


def test_a_value_the_column_cannot_hold_fails_as_a_database_error(warehouse: Engine) -> None:
    if warehouse.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    from sqlalchemy.exc import DBAPIError

    batch = rows(2_000)
    batch[1_500] = {**batch[1_500], "source": "x" * 40}  # source is VARCHAR(32)
    with pytest.raises(DBAPIError, match="too long"), warehouse.begin() as conn:
        bulk_upsert(conn, Account, batch, ["source", "external_id"])
    with warehouse.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Account)).scalar() == 0


def test_every_column_type_round_trips_through_the_bulk_path(warehouse: Engine) -> None:
    from datetime import date
    from decimal import Decimal

    from schema.models import Opportunity

    def opportunity(i: int, stage: str) -> dict[str, object]:
        return {"source": "hubspot", "external_id": f"d{i}", "name": f"Deal {i}",
                "stage": stage, "status": "won", "amount": Decimal("1234.50") + i,
                "currency": "EUR", "close_date": date(2026, 3, 1 + i % 28),
                "created_at": None, "modified_at": T0 + timedelta(seconds=i),
                "is_deleted": i % 2 == 0, "ingested_at": T0,
                "owned_values": {"partner_overlap": ["Acme", "Ünïcode"], "n": i}}

    for stage in ("first", "second"):  # an insert, then an update of every row
        with warehouse.begin() as conn:
            bulk_upsert(conn, Opportunity, [opportunity(i, stage) for i in range(1_500)],
                        ["source", "external_id"])
    with warehouse.connect() as conn:
        got = conn.execute(select(Opportunity).where(Opportunity.external_id == "d7")).one()
    assert (got.stage, got.amount, got.close_date, got.is_deleted, got.created_at) == (
        "second", Decimal("1241.50"), date(2026, 3, 8), False, None)
    assert got.modified_at == T0 + timedelta(seconds=7)
    assert got.owned_values == {"partner_overlap": ["Acme", "Ünïcode"], "n": 7}
