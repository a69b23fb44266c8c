"""Property definitions, property groups and the deal pipeline of an emulated portal.

Only the standard properties ecosync reads exist at start. The ecosync-owned properties of
DESIGN.md section 5 are deliberately absent: they appear only when created through the
properties API, so ``ecosync fields ensure`` (provisioning) is exercised for real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OBJECT_TYPES = ("companies", "deals")

# The client sends the plural path segment; HubSpot also accepts the singular name and the
# numeric object type id in many places.
OBJECT_ALIASES = {
    "companies": "companies",
    "company": "companies",
    "0-2": "companies",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
}

VALID_TYPES = {"bool", "date", "datetime", "enumeration", "number", "phone_number", "string"}
VALID_FIELD_TYPES = {
    "booleancheckbox",
    "calculation_equation",
    "checkbox",
    "date",
    "file",
    "html",
    "number",
    "phonenumber",
    "radio",
    "select",
    "text",
    "textarea",
}

# What HubSpot returns when `properties` is not given (crm-api.md §H3).
DEFAULT_PROPERTIES = {
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
}

DEFAULT_GROUPS = {
    "companies": (("companyinformation", "Company information"),),
    "deals": (("dealinformation", "Deal information"),),
}


@dataclass(slots=True)
class PropertyDef:
    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    read_only_value: bool = False
    read_only_definition: bool = True
    hubspot_defined: bool = True
    calculated: bool = False
    has_unique_value: bool = False
    description: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    display_order: int = -1
    created_ms: int = 0
    updated_ms: int = 0

    def wire(self, iso: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": self.options,
            "displayOrder": self.display_order,
            "calculated": self.calculated,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": False,
            "formField": not self.read_only_value,
            "archived": False,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.read_only_definition,
                "readOnlyValue": self.read_only_value,
            },
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.updated_ms),
        }
        if self.hubspot_defined:
            out["hubspotDefined"] = True
        return out


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    label: str
    probability: float
    is_closed: bool

    @property
    def won(self) -> bool:
        return self.is_closed and self.probability >= 1.0


# HubSpot's default "Sales Pipeline" with its standard stage ids and probabilities.
DEFAULT_STAGES = (
    Stage("appointmentscheduled", "Appointment Scheduled", 0.2, False),
    Stage("qualifiedtobuy", "Qualified To Buy", 0.4, False),
    Stage("presentationscheduled", "Presentation Scheduled", 0.6, False),
    Stage("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
    Stage("contractsent", "Contract Sent", 0.9, False),
    Stage("closedwon", "Closed Won", 1.0, True),
    Stage("closedlost", "Closed Lost", 0.0, True),
)
DEFAULT_PIPELINE = "default"
WON_STAGE = "closedwon"
LOST_STAGE = "closedlost"


def _std(
    name: str,
    label: str,
    type_: str,
    field_type: str,
    group: str,
    *,
    read_only: bool = False,
    calculated: bool = False,
    options: list[dict[str, Any]] | None = None,
) -> PropertyDef:
    return PropertyDef(
        name=name,
        label=label,
        type=type_,
        field_type=field_type,
        group_name=group,
        read_only_value=read_only,
        calculated=calculated,
        options=options or [],
    )


def _options(values: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"label": label, "value": value, "displayOrder": i, "hidden": False}
        for i, (value, label) in enumerate(values)
    ]


LIFECYCLE_STAGES = [
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
]


def standard_properties(object_type: str, now_ms: int) -> dict[str, PropertyDef]:
    if object_type == "companies":
        group = "companyinformation"
        defs = [
            _std("name", "Company name", "string", "text", group),
            _std("domain", "Company Domain Name", "string", "text", group),
            _std("website", "Website URL", "string", "text", group),
            _std("hubspot_owner_id", "Company owner", "enumeration", "select", group),
            _std("country", "Country/Region", "string", "text", group),
            _std(
                "lifecyclestage",
                "Lifecycle Stage",
                "enumeration",
                "radio",
                group,
                options=_options(LIFECYCLE_STAGES),
            ),
        ]
    else:
        group = "dealinformation"
        defs = [
            _std("dealname", "Deal Name", "string", "text", group),
            _std(
                "dealstage",
                "Deal Stage",
                "enumeration",
                "radio",
                group,
                options=_options([(s.id, s.label) for s in DEFAULT_STAGES]),
            ),
            _std(
                "pipeline",
                "Pipeline",
                "enumeration",
                "select",
                group,
                options=_options([(DEFAULT_PIPELINE, "Sales Pipeline")]),
            ),
            _std("amount", "Amount", "number", "number", group),
            _std("deal_currency_code", "Currency", "enumeration", "select", group),
            _std("closedate", "Close Date", "datetime", "date", group),
            _std("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", group,
                 read_only=True, calculated=True),
            _std("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", group,
                 read_only=True, calculated=True),
            _std("referring_partner", "Referring partner", "string", "text", group),
        ]
    defs += [
        _std("createdate", "Create Date", "datetime", "date", group),
        _std("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", group,
             read_only=True),
        _std("hs_object_id", "Record ID", "number", "number", group, read_only=True),
    ]
    for d in defs:
        d.created_ms = d.updated_ms = now_ms
    defs[-1].has_unique_value = True
    return {d.name: d for d in defs}


def stage_wire(stage: Stage, order: int, iso_now: str) -> dict[str, Any]:
    # Stage metadata values are strings on the wire ("true", "0.2"), as in the real API.
    return {
        "id": stage.id,
        "label": stage.label,
        "displayOrder": order,
        "metadata": {"isClosed": "true" if stage.is_closed else "false",
                     "probability": repr(stage.probability)},
        "createdAt": iso_now,
        "updatedAt": iso_now,
        "archived": False,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    }
