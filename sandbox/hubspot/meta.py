"""Handlers for properties, property groups, deal pipelines and v4 associations."""

from __future__ import annotations

import re
from typing import Any

from sandbox.common import Request, Response, json_response
from sandbox.hubspot.clock import iso
from sandbox.hubspot.schema import (
    DEFAULT_PIPELINE,
    DEFAULT_STAGES,
    VALID_FIELD_TYPES,
    VALID_TYPES,
    PropertyDef,
    stage_wire,
)
from sandbox.hubspot.store import PRIMARY_TYPE, UNLABELED_TYPE, Portal
from sandbox.hubspot.wire import ApiError, json_body, parse_limit

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_ASSOCIATION_BATCH = 1000
SINGULAR_LOWER = {"companies": "company", "deals": "deal"}


class MetaHandlers:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    # ---- properties ----------------------------------------------------------------------

    def list_properties(self, object_type: str) -> Response:
        defs = self.portal.properties[object_type]
        return json_response(200, {"results": [d.wire(iso) for d in list(defs.values())]})

    def get_property(self, object_type: str, name: str) -> Response:
        prop = self.portal.properties[object_type].get(name)
        if prop is None:
            raise ApiError(404, f"Unable to find property {name} for object type "
                           f"{object_type}", "OBJECT_NOT_FOUND")
        return json_response(200, prop.wire(iso))

    def create_property(self, request: Request, object_type: str) -> Response:
        body = json_body(request)
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName")
                   if not body.get(k)]
        if missing:
            raise ApiError(400, f"Missing required fields: {', '.join(missing)}",
                           "VALIDATION_ERROR", context={"missingFields": missing})
        name, type_, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
        if not NAME_RE.match(name):
            raise ApiError(400, f"Property name {name!r} must start with a lower-case letter "
                           "and contain only lower-case letters, digits and underscores",
                           "VALIDATION_ERROR")
        if type_ not in VALID_TYPES or field_type not in VALID_FIELD_TYPES:
            raise ApiError(400, f"Invalid type/fieldType combination: {type_}/{field_type}",
                           "VALIDATION_ERROR")
        with self.portal.lock:
            defs = self.portal.properties[object_type]
            if name in defs:
                raise ApiError(409, f"A property named '{name}' already exists.",
                               "OBJECT_ALREADY_EXISTS", context={"name": [name]})
            if body["groupName"] not in self.portal.groups[object_type]:
                raise ApiError(400, f"Property group {body['groupName']} does not exist",
                               "VALIDATION_ERROR")
            now = self.portal.clock.now_ms()
            prop = PropertyDef(
                name=name,
                label=str(body["label"]),
                type=type_,
                field_type=field_type,
                group_name=str(body["groupName"]),
                read_only_definition=False,
                hubspot_defined=False,
                has_unique_value=bool(body.get("hasUniqueValue", False)),
                description=str(body.get("description") or ""),
                options=list(body.get("options") or []),
                display_order=int(body.get("displayOrder", -1)),
                created_ms=now,
                updated_ms=now,
            )
            defs[name] = prop
        location = f"/crm/v3/properties/{object_type}/{name}"
        return json_response(201, prop.wire(iso), {"Location": location})

    # ---- groups --------------------------------------------------------------------------

    def list_groups(self, object_type: str) -> Response:
        groups = self.portal.groups[object_type]
        return json_response(200, {"results": list(groups.values())})

    def get_group(self, object_type: str, name: str) -> Response:
        group = self.portal.groups[object_type].get(name)
        if group is None:
            raise ApiError(404, f"Unable to find property group {name}", "OBJECT_NOT_FOUND")
        return json_response(200, group)

    def create_group(self, request: Request, object_type: str) -> Response:
        body = json_body(request)
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise ApiError(400, "name and label are required", "VALIDATION_ERROR")
        with self.portal.lock:
            groups = self.portal.groups[object_type]
            if name in groups:
                raise ApiError(409, f"A property group named '{name}' already exists.",
                               "OBJECT_ALREADY_EXISTS", context={"name": [name]})
            group = {"name": str(name), "label": str(label),
                     "displayOrder": int(body.get("displayOrder", -1)), "archived": False}
            groups[str(name)] = group
        return json_response(201, group)

    # ---- pipelines -----------------------------------------------------------------------

    def pipelines(self, object_type: str, pipeline_id: str | None) -> Response:
        if object_type != "deals":
            raise ApiError(400, f"Pipelines are not supported for {object_type}",
                           "VALIDATION_ERROR")
        created = iso(0)
        pipeline = {
            "id": DEFAULT_PIPELINE,
            "label": "Sales Pipeline",
            "displayOrder": 0,
            "stages": [stage_wire(s, i, created) for i, s in enumerate(DEFAULT_STAGES)],
            "createdAt": created,
            "updatedAt": created,
            "archived": False,
        }
        if pipeline_id is None:
            return json_response(200, {"results": [pipeline]})
        if pipeline_id != DEFAULT_PIPELINE:
            raise ApiError(404, f"Unable to find pipeline {pipeline_id}", "OBJECT_NOT_FOUND")
        return json_response(200, pipeline)

    # ---- v4 associations -----------------------------------------------------------------

    def _check_pair(self, from_type: str, to_type: str) -> None:
        if {from_type, to_type} != {"companies", "deals"}:
            raise ApiError(400, f"Associations from {from_type} to {to_type} are not "
                           "emulated", "VALIDATION_ERROR")

    def _targets(self, from_type: str, object_id: str) -> list[dict[str, Any]]:
        out = []
        for other_id, primary in self.portal.associations(from_type, object_id):
            types: list[dict[str, Any]] = []
            if primary:
                types.append({"category": "HUBSPOT_DEFINED", "typeId": PRIMARY_TYPE[from_type],
                              "label": "Primary"})
            types.append({"category": "HUBSPOT_DEFINED", "typeId": UNLABELED_TYPE[from_type],
                          "label": None})
            out.append({"toObjectId": int(other_id), "associationTypes": types})
        return out

    def object_associations(
        self, request: Request, from_type: str, object_id: str, to_type: str
    ) -> Response:
        self._check_pair(from_type, to_type)
        limit = parse_limit(request.arg("limit"), 500, 500)
        after = request.arg("after")
        offset = int(after) if after and after.isdigit() else 0
        targets = self._targets(from_type, object_id)
        body: dict[str, Any] = {"results": targets[offset : offset + limit]}
        if offset + limit < len(targets):
            body["paging"] = {"next": {"after": str(offset + limit)}}
        return json_response(200, body)

    def batch_associations(self, request: Request, from_type: str, to_type: str) -> Response:
        self._check_pair(from_type, to_type)
        started = iso(self.portal.clock.now_ms())
        body = json_body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise ApiError(400, "inputs must be a list", "VALIDATION_ERROR")
        if len(inputs) > MAX_ASSOCIATION_BATCH:
            raise ApiError(400, f"Batch input size {len(inputs)} exceeds the maximum of "
                           f"{MAX_ASSOCIATION_BATCH}", "VALIDATION_ERROR")
        results, errors = [], []
        for item in inputs:
            object_id = str((item or {}).get("id"))
            targets = self._targets(from_type, object_id)
            if targets:
                results.append({"from": {"id": object_id}, "to": targets})
            else:
                errors.append({
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "message": f"No {SINGULAR_LOWER[to_type]} is associated with "
                    f"{SINGULAR_LOWER[from_type]} {object_id}.",
                    "context": {"fromObjectId": [object_id], "toObjectType": [to_type]},
                    "errors": [],
                    "links": {},
                })
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                               "completedAt": iso(self.portal.clock.now_ms())}
        if errors:
            out["numErrors"] = len(errors)
            out["errors"] = errors
            return json_response(207, out)
        return json_response(200, out)
