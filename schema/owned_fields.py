"""The fields ecosync owns on CRM records (DESIGN.md section 5), by logical name.

Only these are ever written. API names are configurable per CRM; these are the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from schema.records import Stream


class FieldKind(StrEnum):
    NUMBER = "number"
    TEXT = "text"  # short text (255)
    LONG_TEXT = "long_text"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class OwnedField:
    logical: str
    stream: Stream
    kind: FieldKind
    label: str
    salesforce: str
    hubspot: str
    description: str


OWNED_FIELDS: tuple[OwnedField, ...] = (
    OwnedField("overlap_count", Stream.ACCOUNTS, FieldKind.NUMBER, "Ecosystem Overlap Count",
               "Ecosystem_Overlap_Count__c", "ecosystem_overlap_count",
               "Distinct partners overlapping this account, as shared (ecosync)."),
    OwnedField("overlap_partners", Stream.ACCOUNTS, FieldKind.LONG_TEXT, "Ecosystem Partners",
               "Ecosystem_Partners__c", "ecosystem_partners",
               "Partner (population); customer first, then by name (ecosync)."),
    OwnedField("overlap_contacts", Stream.ACCOUNTS, FieldKind.LONG_TEXT,
               "Ecosystem Partner Contacts", "Ecosystem_Partner_Contacts__c",
               "ecosystem_partner_contacts",
               "Partner account owners, where the partner shares them (ecosync)."),
    OwnedField("overlap_changed_at", Stream.ACCOUNTS, FieldKind.DATETIME,
               "Ecosystem Overlap Changed At", "Ecosystem_Overlap_Changed_At__c",
               "ecosystem_overlap_changed_at",
               "When the overlap set of this account last changed (ecosync)."),
    OwnedField("partner_influenced", Stream.OPPORTUNITIES, FieldKind.BOOLEAN,
               "Partner Influenced", "Partner_Influenced__c", "partner_influenced",
               "Any partner influence: live while open, stamped at close (ecosync)."),
    OwnedField("influencing_partners", Stream.OPPORTUNITIES, FieldKind.LONG_TEXT,
               "Influencing Partners", "Influencing_Partners__c", "influencing_partners",
               "Partners influencing this opportunity (ecosync)."),
    OwnedField("sourcing_partner", Stream.OPPORTUNITIES, FieldKind.TEXT, "Sourcing Partner",
               "Sourcing_Partner__c", "sourcing_partner",
               "The partner credited as source (ecosync)."),
    OwnedField("attribution_stamped_at", Stream.OPPORTUNITIES, FieldKind.DATETIME,
               "Partner Attribution Stamped At", "Partner_Attribution_Stamped_At__c",
               "partner_attribution_stamped_at",
               "When the attribution stamp was made (ecosync)."),
)

BY_LOGICAL: Mapping[str, OwnedField] = MappingProxyType({f.logical: f for f in OWNED_FIELDS})


def owned_fields(stream: Stream) -> tuple[OwnedField, ...]:
    return tuple(f for f in OWNED_FIELDS if f.stream == stream)
