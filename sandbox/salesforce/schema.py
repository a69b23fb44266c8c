"""Field metadata for the emulated org: what `describe` returns and what SOQL and writes validate.

Values are kept in their REST wire form so that the query path never converts them:
datetimes as ``2024-01-01T00:00:00.000+0000`` (UTC, fixed width, so string order is time order),
dates as ``2024-01-01``, numbers as int/float, checkboxes as bool, everything else as str.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

# Field types whose values are strings compared case-insensitively by SOQL.
TEXT_TYPES = frozenset({"string", "textarea", "url", "picklist", "phone", "email"})
NUMBER_TYPES = frozenset({"double", "currency", "int", "percent"})
ID_TYPES = frozenset({"id", "reference"})
# Real orgs refuse to filter or sort on long text areas.
LONG_TEXT_MIN = 256


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    type: str
    label: str
    length: int = 0
    updateable: bool = True
    createable: bool = True
    nillable: bool = True
    custom: bool = False
    precision: int = 0
    scale: int = 0
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()

    @property
    def is_long_text(self) -> bool:
        return self.type == "textarea" and self.length >= LONG_TEXT_MIN

    @property
    def filterable(self) -> bool:
        return not self.is_long_text

    def describe(self) -> dict[str, Any]:
        """One entry of `describe().fields`, with the keys clients commonly read."""
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "length": self.length,
            "byteLength": self.length * 3,
            "precision": self.precision,
            "scale": self.scale,
            "digits": 0,
            "custom": self.custom,
            "updateable": self.updateable,
            "createable": self.createable,
            "nillable": self.nillable,
            "filterable": self.filterable,
            "sortable": self.filterable,
            "groupable": self.filterable and self.type not in NUMBER_TYPES,
            "calculated": False,
            "defaultedOnCreate": self.name in _DEFAULTED,
            "externalId": False,
            "idLookup": self.name == "Id",
            "nameField": self.name == "Name",
            "unique": False,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist
            ],
            "htmlFormatted": False,
            "autoNumber": False,
            "caseSensitive": False,
            "restrictedPicklist": False,
            "inlineHelpText": None,
        }


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}
_DEFAULTED = frozenset(
    {"CreatedDate", "SystemModstamp", "LastModifiedDate", "IsDeleted", "OwnerId"}
)

OPPORTUNITY_STAGES: dict[str, tuple[bool, bool]] = {
    # stage -> (IsClosed, IsWon), the default sales process of a new org
    "Prospecting": (False, False),
    "Qualification": (False, False),
    "Needs Analysis": (False, False),
    "Value Proposition": (False, False),
    "Id. Decision Makers": (False, False),
    "Perception Analysis": (False, False),
    "Proposal/Price Quote": (False, False),
    "Negotiation/Review": (False, False),
    "Closed Won": (True, True),
    "Closed Lost": (True, False),
}


def _ro(f: FieldDef) -> FieldDef:
    return replace(f, updateable=False, createable=False)


def _system_fields(label: str) -> list[FieldDef]:
    return [
        _ro(FieldDef("Id", "id", f"{label} ID", length=18, nillable=False)),
        _ro(FieldDef("IsDeleted", "boolean", "Deleted", nillable=False)),
        _ro(FieldDef("CreatedDate", "datetime", "Created Date", nillable=False)),
        _ro(FieldDef("LastModifiedDate", "datetime", "Last Modified Date", nillable=False)),
        _ro(FieldDef("SystemModstamp", "datetime", "System Modstamp", nillable=False)),
    ]


def _custom(name: str, type_: str, label: str, **kw: Any) -> FieldDef:
    return FieldDef(name, type_, label, custom=True, **kw)


def account_fields() -> list[FieldDef]:
    return [
        *_system_fields("Account"),
        FieldDef("Name", "string", "Account Name", length=255, nillable=False),
        FieldDef("Website", "url", "Website", length=255),
        FieldDef(
            "OwnerId", "reference", "Owner ID", length=18, nillable=False,
            reference_to=("User",), relationship_name="Owner",
        ),
        FieldDef(
            "Type", "picklist", "Account Type", length=255,
            picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"),
        ),
        # A component of the compound BillingAddress; free text unless the org turns State
        # and Country picklists on (then also BillingCountryCode, not emulated here).
        FieldDef("BillingCountry", "string", "Billing Country", length=80),
        _custom("Ecosystem_Overlap_Count__c", "double", "Ecosystem Overlap Count",
                precision=18, scale=0),
        _custom("Ecosystem_Partners__c", "textarea", "Ecosystem Partners", length=32768),
        _custom("Ecosystem_Partner_Contacts__c", "textarea", "Ecosystem Partner Contacts",
                length=32768),
        _custom("Ecosystem_Overlap_Changed_At__c", "datetime", "Ecosystem Overlap Changed At"),
    ]


def opportunity_fields() -> list[FieldDef]:
    return [
        *_system_fields("Opportunity"),
        FieldDef(
            "AccountId", "reference", "Account ID", length=18,
            reference_to=("Account",), relationship_name="Account",
        ),
        FieldDef("Name", "string", "Name", length=120, nillable=False),
        FieldDef("StageName", "picklist", "Stage", length=255, nillable=False,
                 picklist=tuple(OPPORTUNITY_STAGES)),
        FieldDef("Amount", "currency", "Amount", precision=18, scale=2),
        FieldDef("CloseDate", "date", "Close Date", nillable=False),
        _ro(FieldDef("IsClosed", "boolean", "Closed", nillable=False)),
        _ro(FieldDef("IsWon", "boolean", "Won", nillable=False)),
        FieldDef("LeadSource", "picklist", "Lead Source", length=255,
                 picklist=("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")),
        FieldDef(
            "OwnerId", "reference", "Owner ID", length=18, nillable=False,
            reference_to=("User",), relationship_name="Owner",
        ),
        _custom("Referring_Partner__c", "string", "Referring Partner", length=255),
        _custom("Partner_Influenced__c", "boolean", "Partner Influenced", nillable=False),
        _custom("Influencing_Partners__c", "textarea", "Influencing Partners", length=32768),
        _custom("Sourcing_Partner__c", "string", "Sourcing Partner", length=255),
        _custom("Partner_Attribution_Stamped_At__c", "datetime", "Partner Attribution Stamped At"),
    ]


def user_fields() -> list[FieldDef]:
    """The User fields ecosync reads through Account.Owner. Users are never soft-deleted (no
    IsDeleted; they are deactivated), and Name is compound (first and last name), read-only."""
    return [
        _ro(FieldDef("Id", "id", "User ID", length=18, nillable=False)),
        FieldDef("Username", "string", "Username", length=80, nillable=False),
        FieldDef("FirstName", "string", "First Name", length=40),
        FieldDef("LastName", "string", "Last Name", length=80, nillable=False),
        _ro(FieldDef("Name", "string", "Full Name", length=121, nillable=False)),
        FieldDef("Email", "email", "Email", length=128, nillable=False),
        FieldDef("IsActive", "boolean", "Active", nillable=False),
        _ro(FieldDef("CreatedDate", "datetime", "Created Date", nillable=False)),
        _ro(FieldDef("LastModifiedDate", "datetime", "Last Modified Date", nillable=False)),
        _ro(FieldDef("SystemModstamp", "datetime", "System Modstamp", nillable=False)),
    ]


def currency_iso_field() -> FieldDef:
    return FieldDef(
        "CurrencyIsoCode", "picklist", "Currency ISO Code", length=3, nillable=False,
        picklist=tuple(CURRENCY_RATES),
    )


# Seeded conversion rates (corporate currency USD), used when multi-currency is on.
CURRENCY_RATES: dict[str, float] = {
    "USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 149.5, "CAD": 1.36, "AUD": 1.52,
}


def currency_type_fields() -> list[FieldDef]:
    return [
        _ro(FieldDef("Id", "id", "Currency Type ID", length=18, nillable=False)),
        FieldDef("IsoCode", "picklist", "Currency ISO Code", length=3, nillable=False),
        FieldDef("ConversionRate", "double", "Conversion Rate", precision=18, scale=6),
        FieldDef("DecimalPlaces", "int", "Decimal Places", precision=9),
        FieldDef("IsActive", "boolean", "Active", nillable=False),
        _ro(FieldDef("IsCorporate", "boolean", "Corporate Currency", nillable=False)),
        _ro(FieldDef("SystemModstamp", "datetime", "System Modstamp", nillable=False)),
    ]


def dated_rate_fields() -> list[FieldDef]:
    return [
        _ro(FieldDef("Id", "id", "Dated Conversion Rate ID", length=18, nillable=False)),
        FieldDef("IsoCode", "picklist", "ISO Code", length=3, nillable=False),
        FieldDef("ConversionRate", "double", "Conversion Rate", precision=18, scale=6),
        FieldDef("StartDate", "date", "Start Date", nillable=False),
        _ro(FieldDef("NextStartDate", "date", "Next Start Date")),
        _ro(FieldDef("SystemModstamp", "datetime", "System Modstamp", nillable=False)),
    ]


# Three-character key prefixes, as in real ids.
KEY_PREFIX = {
    "Account": "001",
    "Opportunity": "006",
    "User": "005",
    "CurrencyType": "02K",
    "DatedConversionRate": "04w",
}


# ----------------------------------------------------------------------------- values

_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$"
)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def format_datetime(dt: datetime) -> str:
    """REST wire form of a datetime: UTC, milliseconds, `+0000` without a colon."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime | None:
    """Parse the datetime forms Salesforce accepts in SOQL and REST bodies; None if invalid."""
    m = _DT_RE.match(text)
    if not m:
        return None
    frac = m.group(7) or ""
    tz = m.group(8) or "Z"
    if tz != "Z" and ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    iso = text[: m.start(7) if m.group(7) else m.end(6)]
    try:
        dt = datetime.fromisoformat(iso + ("+00:00" if tz == "Z" else tz))
    except ValueError:
        return None
    if frac:
        dt = dt.replace(microsecond=int((frac[1:] + "000000")[:6]))
    return dt.astimezone(UTC)


def normalize_datetime(value: Any, *, keep_ms: bool = False) -> str | None:
    """Wire form of a datetime value. Stored values drop milliseconds, as Salesforce datetime
    fields do (a value written with .123 reads back as .000); query literals keep them."""
    dt: datetime | None = None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = parse_datetime(value)
    if dt is None:
        return None
    return format_datetime(dt if keep_ms else dt.replace(microsecond=0))


def normalize_date(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _DATE_RE.match(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return None


class ValueError_(Exception):
    """A value that does not fit its field; carries the Salesforce status code."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def coerce(field: FieldDef, value: Any) -> Any:
    """Turn a JSON (or CSV-string) value into the stored wire form, as the API would accept it."""
    if value is None:
        if field.type == "boolean":
            return False  # a checkbox cannot be null: Salesforce stores false
        if not field.nillable:
            raise ValueError_(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{field.name}]", field.name
            )
        return None
    t = field.type
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
    elif t in NUMBER_TYPES:
        if isinstance(value, bool):
            pass
        elif isinstance(value, int | float):
            return int(value) if t == "int" else float(value)
        elif isinstance(value, str):
            try:
                return int(value) if t == "int" else float(value)
            except ValueError:
                pass
    elif t == "datetime":
        out = normalize_datetime(value)
        if out is not None:
            return out
    elif t == "date":
        out = normalize_date(value)
        if out is not None:
            return out
    elif isinstance(value, str):
        if field.length and len(value) > field.length:
            raise ValueError_(
                "STRING_TOO_LONG",
                f"{field.label}: data value too large: {value[:40]}... "
                f"(max length={field.length})",
                field.name,
            )
        return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError_(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{field.label}: value not of required type: {value}",
        field.name,
    )
