"""Canonical text form of owned-field values, the common ground of diff and write-back.

The engine computes desired values as Python objects; connectors read CRM values in their
own wire formats. Both are reduced to one canonical string (or None) so that "did this value
change?" is a plain string comparison, identical for Salesforce and HubSpot.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

ELLIPSIS = "…"


def canonical(value: object) -> str | None:
    """bool → "true"/"false", numbers without trailing zeros, datetimes as UTC ISO seconds Z."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        return _number(Decimal(str(value)))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}; owned datetimes must be UTC-aware")
        return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return text if text != "" else None


def _number(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def canonical_number(raw: object) -> str | None:
    """A CRM number as read ("3", 3.0, "3.00") → canonical; unparseable text stays as is."""
    if raw is None or raw == "":
        return None
    try:
        return _number(Decimal(str(raw)))
    except InvalidOperation:
        return str(raw)


def canonical_bool(raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return "true" if str(raw).strip().lower() in {"true", "1", "yes"} else "false"


def canonical_datetime(raw: object) -> str | None:
    """ISO 8601 (any offset, with or without millis) or epoch milliseconds → canonical."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return canonical(raw if raw.tzinfo else raw.replace(tzinfo=UTC))
    text = str(raw).strip()
    if text.isdigit():
        return canonical(datetime.fromtimestamp(int(text) / 1000, tz=UTC))
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # Salesforce: +0000
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return str(raw)
    return canonical(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def truncate(text: str | None, length: int | None) -> str | None:
    """Fit text into a field of `length` characters, with a visible ellipsis when cut."""
    if text is None or length is None or len(text) <= length:
        return text
    return text[: max(0, length - 1)] + ELLIPSIS
