"""Pure functions from a raw Salesforce row (REST JSON or Bulk 2.0 CSV) to a normalized record.

The two wire forms differ (crm-api.md §S3, §S7): REST sends typed JSON (booleans, numbers,
null) and datetimes as `2024-01-01T00:00:00.000+0000`; Bulk CSV sends every value as text,
`""` for null, `true`/`false`, and datetimes ending in `Z`. Every reader here accepts both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from schema.owned_fields import BY_LOGICAL, FieldKind
from schema.records import AccountRecord, OpportunityRecord, OpportunityStatus
from schema.values import canonical_bool, canonical_datetime, canonical_number

Raw = Mapping[str, object]
Normalizer = Callable[[Raw], AccountRecord | OpportunityRecord]


@dataclass(frozen=True, slots=True)
class FieldNames:
    """Where each value lives in this org: owned fields by logical name → API name, extras."""

    owned: Mapping[str, str] = field(default_factory=dict)
    duns: str = ""
    referring_partner: str = ""
    currency: bool = False  # the org is multi-currency: CurrencyIsoCode exists


def text(raw: object) -> str | None:
    if raw is None:
        return None
    value = str(raw)
    return value if value != "" else None


def identifier(raw: object) -> str | None:
    """An id-like value kept as text; a number field (DUNS as Number(9,0)) comes back 123.0."""
    if isinstance(raw, Decimal | float | int) and not isinstance(raw, bool):
        number = Decimal(str(raw))
        return str(int(number)) if number == number.to_integral_value() else str(number)
    return text(raw)


def flag(raw: object) -> bool:
    return canonical_bool(raw) == "true"


def parse_datetime(raw: object) -> datetime | None:
    """`2024-01-01T00:00:00.000+0000` (REST), `...Z` (Bulk) or any ISO offset → aware UTC."""
    value = text(raw)
    if value is None:
        return None
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = f"{value[:-2]}:{value[-2:]}"  # +0000 → +00:00 for fromisoformat
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def parse_date(raw: object) -> date | None:
    value = text(raw)
    return date.fromisoformat(value[:10]) if value else None


def parse_decimal(raw: object) -> Decimal | None:
    value = text(raw)
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def required_datetime(raw: Raw, name: str) -> datetime:
    value = parse_datetime(raw.get(name))
    if value is None:
        raise ValueError(f"Salesforce row {raw.get('Id')!r} has no {name}")
    return value


def owned_values(raw: Raw, names: FieldNames) -> dict[str, str | None]:
    """Owned fields as read, in the canonical text the diff compares (schema.values)."""
    out: dict[str, str | None] = {}
    for logical, api in names.owned.items():
        kind = BY_LOGICAL[logical].kind
        value = raw.get(api)
        if kind is FieldKind.NUMBER:
            out[logical] = canonical_number(value)
        elif kind is FieldKind.BOOLEAN:
            # A checkbox is never null in Salesforce: an empty CSV cell means false.
            out[logical] = canonical_bool(value) or "false"
        elif kind is FieldKind.DATETIME:
            out[logical] = canonical_datetime(value)
        else:
            out[logical] = text(value)
    return out


def related(raw: Raw, relationship: str, name: str) -> str | None:
    """A parent's field: nested in REST JSON (`"Owner": {"Name": ...}`, null when the lookup
    is empty), a dotted column in Bulk CSV (`Owner.Name`, "" when empty)."""
    parent = raw.get(relationship)
    if isinstance(parent, Mapping):
        return text(parent.get(name))
    return text(raw.get(f"{relationship}.{name}"))


def account(raw: Raw, source: str, names: FieldNames) -> AccountRecord:
    return AccountRecord(
        source=source,
        external_id=str(raw["Id"]),
        modified_at=required_datetime(raw, "SystemModstamp"),
        name=text(raw.get("Name")),
        website=text(raw.get("Website")),
        owner_id=text(raw.get("OwnerId")),
        account_type=text(raw.get("Type")),
        duns=identifier(raw.get(names.duns)) if names.duns else None,
        created_at=parse_datetime(raw.get("CreatedDate")),
        is_deleted=flag(raw.get("IsDeleted")),
        country=text(raw.get("BillingCountry")),
        owner_name=related(raw, "Owner", "Name"),
        owner_email=related(raw, "Owner", "Email"),
        owned=owned_values(raw, names),
    )


def opportunity_status(is_closed: object, is_won: object) -> OpportunityStatus:
    if not flag(is_closed):
        return OpportunityStatus.OPEN
    return OpportunityStatus.WON if flag(is_won) else OpportunityStatus.LOST


def opportunity(raw: Raw, source: str, names: FieldNames) -> OpportunityRecord:
    return OpportunityRecord(
        source=source,
        external_id=str(raw["Id"]),
        modified_at=required_datetime(raw, "SystemModstamp"),
        account_external_id=text(raw.get("AccountId")),
        name=text(raw.get("Name")),
        stage=text(raw.get("StageName")),
        status=opportunity_status(raw.get("IsClosed"), raw.get("IsWon")),
        amount=parse_decimal(raw.get("Amount")),
        currency=text(raw.get("CurrencyIsoCode")) if names.currency else None,
        close_date=parse_date(raw.get("CloseDate")),
        created_at=parse_datetime(raw.get("CreatedDate")),
        lead_source=text(raw.get("LeadSource")),
        referring_partner=(text(raw.get(names.referring_partner))
                           if names.referring_partner else None),
        is_deleted=flag(raw.get("IsDeleted")),
        owned=owned_values(raw, names),
    )


def sort_key(raw: Raw) -> tuple[datetime, str]:
    """The (SystemModstamp, Id) cursor position of a raw row."""
    return required_datetime(raw, "SystemModstamp"), str(raw["Id"])
