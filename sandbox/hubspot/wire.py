"""Wire forms shared by the handlers: error bodies and record serialisation."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sandbox.common import Request, Response, json_response
from sandbox.hubspot.clock import iso
from sandbox.hubspot.schema import DEFAULT_PROPERTIES, PropertyDef
from sandbox.hubspot.store import Portal, Rec

SINGULAR = {"companies": "COMPANY", "deals": "DEAL"}
# Entries of inline associations a v3 read returns per record before paging them.
INLINE_ASSOCIATIONS = 100
# Properties HubSpot returns on every read, whatever was requested.
ALWAYS = ("createdate", "hs_lastmodifieddate", "hs_object_id")


class ApiError(Exception):
    """Raised inside a handler to answer with a HubSpot error body."""

    def __init__(self, status: int, message: str, category: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.extra = extra

    def response(self) -> Response:
        return error_response(self.status, self.message, self.category, **self.extra)


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message,
                            "correlationId": str(uuid.uuid4()), "category": category}
    body.update(extra)
    return body


def error_response(status: int, message: str, category: str, **extra: Any) -> Response:
    return json_response(status, error_body(message, category, **extra))


def validation_error(problems: Sequence[Mapping[str, Any]]) -> ApiError:
    """HubSpot's 400 for bad property values: the problems JSON-encoded inside the message."""
    detail = json.dumps(list(problems), separators=(",", ":"))
    return ApiError(
        400,
        f"Property values were not valid: {detail}",
        "VALIDATION_ERROR",
        errors=[
            {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
            for p in problems
        ],
    )


def not_found_error(object_type: str, ids: Iterable[str]) -> dict[str, Any]:
    """One StandardError item of a 207 batch response for ids that do not exist."""
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not get some {SINGULAR[object_type]} objects, they may be deleted or "
        "not exist. Check that ids are valid.",
        "context": {"ids": list(ids)},
        "errors": [],
        "links": {},
    }


def json_body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Invalid input JSON on line 1", "VALIDATION_ERROR") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid input JSON: expected an object", "VALIDATION_ERROR")
    return body


def parse_bool(request: Request, name: str, default: bool = False) -> bool:
    """The client sends Python reprs (``archived=False``): compare case-insensitively."""
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ApiError(400, f"Invalid value {raw!r} for query parameter {name}",
                       "VALIDATION_ERROR")
    return lowered == "true"


def parse_limit(raw: Any, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, f"Invalid limit {raw!r}", "VALIDATION_ERROR") from None
    if limit < 1 or limit > maximum:
        raise ApiError(400, f"limit must be between 1 and {maximum}, got {limit}",
                       "VALIDATION_ERROR")
    return limit


def encode_cursor(num: int) -> str:
    # Opaque like the real cursor (base64 of the next id), so clients cannot do arithmetic.
    return base64.b64encode(f"{num}\n".encode()).decode()


def decode_cursor(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if raw.isdigit():
        return int(raw)
    try:
        text = base64.b64decode(raw, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not text.isdigit():
        raise ApiError(400, f"Invalid paging cursor {raw!r}", "VALIDATION_ERROR")
    return int(text)


def wanted_properties(
    requested: Iterable[str] | None, object_type: str, defs: Mapping[str, PropertyDef]
) -> list[str]:
    """Requested names that exist (unknown ones are silently ignored, as HubSpot does)."""
    names: list[str] = []
    for raw in requested or ():
        for name in str(raw).split(","):  # tolerate comma-joined lists from raw HTTP callers
            if name in defs and name not in names:
                names.append(name)
    if not names:
        names = list(DEFAULT_PROPERTIES[object_type])
    for name in ALWAYS:
        if name not in names:
            names.append(name)
    return names


def record_wire(
    rec: Rec,
    names: Sequence[str],
    portal: Portal | None = None,
    object_type: str = "",
    associations: Sequence[str] = (),
) -> dict[str, Any]:
    props = rec.props
    out: dict[str, Any] = {
        "id": rec.id,
        "properties": {n: props.get(n) for n in names},
        "createdAt": iso(rec.created_ms),
        "updatedAt": iso(rec.updated_ms),
        "archived": rec.archived_ms is not None,
    }
    if rec.archived_ms is not None:
        out["archivedAt"] = iso(rec.archived_ms)
    if portal is not None and associations:
        inline = inline_associations(portal, object_type, rec.id, associations)
        if inline:
            out["associations"] = inline
    return out


def inline_associations(
    portal: Portal, object_type: str, object_id: str, wanted: Sequence[str]
) -> dict[str, Any]:
    """v3 inline associations: each link twice, the primary label and ``_unlabeled``, at most
    100 entries a record; past that the block carries its own ``paging.next`` (HubSpot
    changelog, "Announcing a change to how v3 CRM APIs return association data": "if your
    request returns more than 100 associations, you will need to use the value of the after
    field"). The entries are counted as listed, so the cut can fall between a link's two."""
    other = "companies" if object_type == "deals" else "deals"
    if other not in wanted:
        return {}
    links = portal.associations(object_type, object_id)
    if not links:
        return {}
    prefix = "deal_to_company" if object_type == "deals" else "company_to_deal"
    results: list[dict[str, str]] = []
    for other_id, primary in links:
        if primary:
            results.append({"id": other_id, "type": prefix})
        results.append({"id": other_id, "type": f"{prefix}_unlabeled"})
    block: dict[str, Any] = {"results": results[:INLINE_ASSOCIATIONS]}
    if len(results) > INLINE_ASSOCIATIONS:
        after = encode_cursor(INLINE_ASSOCIATIONS)
        block["paging"] = {"next": {
            "after": after,
            "link": f"crm/v3/objects/{object_type}/{object_id}/associations/{other}"
                    f"?after={after}"}}
    return {other: block}
