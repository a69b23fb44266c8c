"""Creating the owned custom fields through the Metadata API (simple-salesforce `mdapi`).

A field created by API has no field-level security: nobody, the integration user included,
can read or write it until a profile or permission set grants it (crm-api.md §S11). So the
fields are created together with a permission set `Ecosync_Owned_Fields` granting edit on
all of them, which an admin assigns to the integration user.

When the org refuses (no "Customize Application" / "Modify Metadata" permission, Metadata API
unreachable), nothing is half-done silently: `spec()` prints exactly which fields to create,
with their types, for an admin to create by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from connectors.base import FieldStatus
from connectors.salesforce.fields import SOBJECT
from connectors.salesforce.session import Api
from schema.owned_fields import BY_LOGICAL, FieldKind

log = structlog.get_logger("ecosync.salesforce")
PERMISSION_SET = "Ecosync_Owned_Fields"
MAX_PER_CALL = 10  # createMetadata takes at most 10 components per call

# Metadata API type and attributes per field kind, and how an admin reads them in Setup.
_METADATA: dict[FieldKind, tuple[dict[str, Any], str]] = {
    FieldKind.NUMBER: ({"type": "Number", "precision": 18, "scale": 0}, "Number(18, 0)"),
    FieldKind.TEXT: ({"type": "Text", "length": 255}, "Text(255)"),
    FieldKind.LONG_TEXT: ({"type": "LongTextArea", "length": 32768, "visibleLines": 5},
                          "Text Area (Long)(32768)"),
    FieldKind.DATETIME: ({"type": "DateTime"}, "Date/Time"),
    FieldKind.BOOLEAN: ({"type": "Checkbox", "defaultValue": "false"},
                        "Checkbox (default unchecked)"),
}


@dataclass
class Outcome:
    failed: list[str] = field(default_factory=list)  # API names not created
    message: str = ""


def full_name(status: FieldStatus) -> str:
    return f"{SOBJECT[status.stream]}.{status.api_name}"


def create(api: Api, missing: Sequence[FieldStatus],
           read_only: Sequence[FieldStatus] = ()) -> Outcome:
    """createMetadata for the missing fields, then upsert the permission set granting edit on
    them and on the existing fields the integration user cannot edit (field-level security)."""
    outcome = Outcome()
    created: set[str] = set()
    try:
        mdapi = api.call(lambda sf: _metadata_client(api, sf))
        for start in range(0, len(missing), MAX_PER_CALL):
            batch = missing[start:start + MAX_PER_CALL]
            components = [mdapi.CustomField(**_field_attributes(s)) for s in batch]
            api.call(partial(_create, mdapi, components))
            created.update(s.api_name for s in batch)
            log.info("created salesforce fields", fields=[full_name(s) for s in batch])
        grants = [mdapi.PermissionSetFieldPermissions(field=full_name(s), editable=True,
                                                      readable=True)
                  for s in (*missing, *read_only)]
        api.call(lambda _sf: mdapi.PermissionSet.upsert([mdapi.PermissionSet(
            fullName=PERMISSION_SET, label="ecosync owned fields",
            description="Edit access to the fields ecosync writes", fieldPermissions=grants,
        )]))
        outcome.message = (f"created; assign permission set {PERMISSION_SET} to the "
                           "integration user so it can read and write them")
    except Exception as exc:  # zeep faults, transport errors and mdapi's bare Exception alike
        outcome.failed = [s.api_name for s in missing if s.api_name not in created]
        outcome.message = (f"the Metadata API refused ({_short(exc)}); this needs the "
                           "'Customize Application' and 'Modify Metadata' permissions")
        log.warning("salesforce field provisioning refused", error=_short(exc))
    return outcome


def _create(mdapi: Any, components: list[Any], _sf: Any) -> None:
    mdapi.CustomField.create(components)


def _metadata_client(api: Api, sf: Any) -> Any:
    mdapi = sf.mdapi
    # zeep brings its own requests.Session; use ours (CA bundle, timeout, accounting).
    mdapi._client.transport.session = api.http
    return mdapi


def _field_attributes(status: FieldStatus) -> dict[str, Any]:
    owned = BY_LOGICAL[status.logical_name]
    attrs, _label = _METADATA[owned.kind]
    return {"fullName": full_name(status), "label": owned.label,
            "description": owned.description, "inlineHelpText": owned.description, **attrs}


def spec(statuses: Sequence[FieldStatus], reason: str = "") -> str:
    """Plain-text instructions for an admin: which fields to create or open up, with types."""
    lines = ["Salesforce fields ecosync owns" + (f" ({reason})" if reason else "") + ":"]
    for s in statuses:
        owned = BY_LOGICAL[s.logical_name]
        _attrs, label = _METADATA[owned.kind]
        if s.created:
            state = "created"
        elif not s.exists:
            state = "MISSING: create it"
        elif not s.updateable:
            state = "READ-ONLY: grant Edit in field-level security"
        else:
            state = "ok"
        lines.append(f"  {full_name(s):55} {label:28} label {owned.label!r:36} {state}")
    todo = [s for s in statuses if not s.updateable]
    if todo:
        lines.append("In Setup → Object Manager → (object) → Fields & Relationships, create "
                     "each missing field with the API name, type and label shown, then grant "
                     "the integration user Edit access (field-level security or a permission "
                     "set). Then run `ecosync fields ensure --source salesforce --check`.")
    return "\n".join(lines)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return f"{exc.__class__.__name__}: {text[:300]}"
