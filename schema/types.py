"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in, aware UTC out, whatever the engine.

    SQLite has no time zones and would hand back naive values; mixing naive and aware
    datetimes is the classic source of off-by-hours watermarks, so it is settled here once.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} reached the warehouse; use UTC-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            # The driver takes aware datetimes as they are; only other zones need converting.
            def to_utc(value: datetime | None) -> datetime | None:
                if value is None or value.tzinfo is UTC:
                    return value
                if value.tzinfo is None:
                    raise ValueError(
                        f"naive datetime {value!r} reached the warehouse; use UTC-aware")
                return value.astimezone(UTC)

            return to_utc

        # Bulk landings bind hundreds of thousands of timestamps; one flat function per value
        # (SQLAlchemy's own SQLite storage format) instead of three layered processors.
        # isoformat of a UTC value ends in "+00:00"; slicing it off is cheaper than replace().
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC:
                if value.tzinfo is None:
                    raise ValueError(
                        f"naive datetime {value!r} reached the warehouse; use UTC-aware")
                value = value.astimezone(UTC)
            return value.isoformat(" ", "microseconds")[:-6]

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
