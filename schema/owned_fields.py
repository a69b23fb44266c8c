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


# `description` is the help text each CRM shows with the field (Salesforce inline help, at
# most 510 characters, and field description; HubSpot property description): what the field
# holds, in a rep's words. `ecosync fields ensure` sets it and updates an outdated one.
_OURS = " Written by ecosync: edits are overwritten on its next run."
OWNED_FIELDS: tuple[OwnedField, ...] = (
    OwnedField("overlap_count", Stream.ACCOUNTS, FieldKind.NUMBER, "Ecosystem Overlap Count",
               "Ecosystem_Overlap_Count__c", "ecosystem_overlap_count",
               "How many partners have this account in their own CRM. It includes partners "
               "who share counts only, who are therefore not named in Ecosystem Partners; "
               "partners who share nothing are not counted." + _OURS),
    OwnedField("overlap_partners", Stream.ACCOUNTS, FieldKind.LONG_TEXT, "Ecosystem Partners",
               "Ecosystem_Partners__c", "ecosystem_partners",
               "The partners who have this account, as 'Partner (population)' separated by "
               "'; ', their customers first, then by name. Only partners who share names are "
               "listed; Ecosystem Overlap Count also counts those who share counts only."
               + _OURS),
    OwnedField("overlap_contacts", Stream.ACCOUNTS, FieldKind.LONG_TEXT,
               "Ecosystem Partner Contacts", "Ecosystem_Partner_Contacts__c",
               "ecosystem_partner_contacts",
               "Who owns this account at each partner that shares its account owners (name "
               "and e-mail), to contact for a joint approach." + _OURS),
    OwnedField("overlap_changed_at", Stream.ACCOUNTS, FieldKind.DATETIME,
               "Ecosystem Overlap Changed At", "Ecosystem_Overlap_Changed_At__c",
               "ecosystem_overlap_changed_at",
               "When the partners overlapping this account last changed: a partner added or "
               "gone, or a partner's relationship with the account (customer, open "
               "opportunity, prospect) changed." + _OURS),
    OwnedField("partner_influenced", Stream.OPPORTUNITIES, FieldKind.BOOLEAN,
               "Partner Influenced", "Partner_Influenced__c", "partner_influenced",
               "Checked when a partner had this opportunity's account while the opportunity "
               "was worked (from the attribution lookback before its creation to its close). "
               "Live while open; fixed at close by the attribution stamp." + _OURS),
    OwnedField("influencing_partners", Stream.OPPORTUNITIES, FieldKind.LONG_TEXT,
               "Influencing Partners", "Influencing_Partners__c", "influencing_partners",
               "The partners who influenced this opportunity, as 'Partner (population)'; "
               "partners who share counts only are not named. Live while open; fixed at "
               "close by the attribution stamp." + _OURS),
    OwnedField("sourcing_partner", Stream.OPPORTUNITIES, FieldKind.TEXT, "Sourcing Partner",
               "Sourcing_Partner__c", "sourcing_partner",
               "The partner credited with bringing this opportunity: the one named in the "
               "referring-partner field, else, for a partner lead source, the partner who "
               "had the account first. Set at close by the attribution stamp." + _OURS),
    OwnedField("attribution_stamped_at", Stream.OPPORTUNITIES, FieldKind.DATETIME,
               "Partner Attribution Stamped At", "Partner_Attribution_Stamped_At__c",
               "partner_attribution_stamped_at",
               "When partner attribution was stamped for this opportunity's close. A stamp "
               "is never changed; reopening and closing again makes a new one." + _OURS),
)

BY_LOGICAL: Mapping[str, OwnedField] = MappingProxyType({f.logical: f for f in OWNED_FIELDS})


def owned_fields(stream: Stream) -> tuple[OwnedField, ...]:
    return tuple(f for f in OWNED_FIELDS if f.stream == stream)
