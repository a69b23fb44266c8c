"""Which HubSpot properties ecosync reads and owns, their value formats, and provisioning.

Owned properties (schema.owned_fields) have default names, overridable per logical name in
``crm.hubspot.company_properties`` / ``deal_properties``. All HubSpot property values travel
as strings; this module turns desired Python values into the strings HubSpot accepts and
predicts the canonical text ecosync will read back (``stored_form``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from connectors.hubspot.config import HubSpotConfig
from schema.owned_fields import FieldKind, OwnedField, owned_fields
from schema.records import Stream
from schema.values import canonical, canonical_bool, canonical_datetime, canonical_number, truncate

OBJECT_TYPE: Mapping[Stream, str] = MappingProxyType(
    {Stream.ACCOUNTS: "companies", Stream.OPPORTUNITIES: "deals"})
GROUP_NAME = "ecosync"
GROUP_LABEL = "ecosync"
# HubSpot caps any single property value at 65,536 characters.
MAX_TEXT = 65_536

COMPANY_PROPERTIES = ("name", "domain", "website", "hubspot_owner_id", "lifecyclestage",
                      "country", "createdate", "hs_lastmodifieddate")
DEAL_PROPERTIES = ("dealname", "dealstage", "pipeline", "amount", "deal_currency_code",
                   "closedate", "createdate", "hs_is_closed", "hs_is_closed_won",
                   "hs_lastmodifieddate")

# (type, fieldType) HubSpot needs for each kind of owned field.
HUBSPOT_TYPE: Mapping[FieldKind, tuple[str, str]] = MappingProxyType({
    FieldKind.NUMBER: ("number", "number"),
    FieldKind.TEXT: ("string", "text"),
    FieldKind.LONG_TEXT: ("string", "textarea"),
    FieldKind.DATETIME: ("datetime", "date"),
    FieldKind.BOOLEAN: ("bool", "booleancheckbox"),
})
BOOL_OPTIONS = (
    {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
    {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
)


@dataclass(frozen=True, slots=True)
class OwnedProperty:
    field: OwnedField
    name: str  # the HubSpot property name in this portal

    @property
    def logical(self) -> str:
        return self.field.logical

    @property
    def kind(self) -> FieldKind:
        return self.field.kind


@dataclass(frozen=True, slots=True)
class StreamProperties:
    """The property names of one stream: what to read, what is owned, the extras."""

    stream: Stream
    object_type: str
    owned: tuple[OwnedProperty, ...]
    referring_partner: str | None = None
    lead_source: str | None = None
    duns: str | None = None

    @property
    def read(self) -> list[str]:
        base = COMPANY_PROPERTIES if self.stream is Stream.ACCOUNTS else DEAL_PROPERTIES
        names = list(base) + [p.name for p in self.owned]
        names += [n for n in (self.referring_partner, self.lead_source, self.duns) if n]
        return list(dict.fromkeys(names))

    def by_logical(self, logical: str) -> OwnedProperty | None:
        for prop in self.owned:
            if prop.logical == logical:
                return prop
        return None


def stream_properties(config: HubSpotConfig, stream: Stream) -> StreamProperties:
    overrides = config.company_properties if stream is Stream.ACCOUNTS else config.deal_properties
    owned = tuple(OwnedProperty(f, overrides.get(f.logical) or f.hubspot)
                  for f in owned_fields(stream))
    if stream is Stream.ACCOUNTS:
        return StreamProperties(stream, OBJECT_TYPE[stream], owned,
                                duns=config.duns_property or None)
    return StreamProperties(stream, OBJECT_TYPE[stream], owned,
                            referring_partner=config.referring_partner_property or None,
                            lead_source=config.lead_source_property or None)


# ---- values ---------------------------------------------------------------------------------


def _as_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}; owned datetimes must be UTC-aware")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = canonical_datetime(value)
    if text is None:
        raise ValueError("empty datetime")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wire_value(kind: FieldKind, value: object) -> str:
    """The string HubSpot accepts for a property of this kind; "" clears the property."""
    if value is None or value == "":
        return ""
    if kind is FieldKind.BOOLEAN:
        return canonical_bool(value) or ""
    if kind is FieldKind.NUMBER:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int | float | Decimal):
            return canonical(value) or ""
        return canonical_number(value) or ""
    if kind is FieldKind.DATETIME:
        # HubSpot accepts ISO 8601 or epoch milliseconds for datetime properties; ISO with
        # milliseconds and Z is also the form it returns, so logs and diffs read alike.
        moment = _as_datetime(value)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return truncate(str(value), MAX_TEXT) or ""


def stored_value(kind: FieldKind, value: object) -> str | None:
    """Canonical text of the value HubSpot will return after we write ``value``."""
    wire = wire_value(kind, value)
    return read_value(kind, wire)


def read_value(kind: FieldKind, raw: Any) -> str | None:
    """Canonical text (schema.values) of a property value as HubSpot returns it."""
    if raw is None or raw == "":
        return None
    if kind is FieldKind.NUMBER:
        return canonical_number(raw)
    if kind is FieldKind.BOOLEAN:
        return canonical_bool(raw)
    if kind is FieldKind.DATETIME:
        return canonical_datetime(raw)
    return str(raw)


# ---- property definitions -------------------------------------------------------------------


def property_create_body(prop: OwnedProperty) -> dict[str, Any]:
    type_, field_type = HUBSPOT_TYPE[prop.kind]
    body: dict[str, Any] = {
        "name": prop.name, "label": prop.field.label, "type": type_, "fieldType": field_type,
        "groupName": GROUP_NAME, "description": prop.field.description,
    }
    if prop.kind is FieldKind.BOOLEAN:
        body["options"] = [dict(o) for o in BOOL_OPTIONS]
    return body


def is_updateable(definition: Mapping[str, Any]) -> bool:
    meta = definition.get("modificationMetadata") or {}
    return not (meta.get("readOnlyValue") or definition.get("calculated"))


def type_mismatch(prop: OwnedProperty, definition: Mapping[str, Any]) -> str | None:
    """Why an existing property cannot hold this owned field's values, or None if it can."""
    want_type, _ = HUBSPOT_TYPE[prop.kind]
    have = definition.get("type")
    if have == want_type:
        return None
    if prop.kind is FieldKind.BOOLEAN and have == "enumeration":
        return None
    return f"has type {have!r}, ecosync writes {want_type!r}"
