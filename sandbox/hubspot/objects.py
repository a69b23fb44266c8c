"""Handlers for /crm/v3/objects/{companies,deals}: list, get, create, update, search, batch."""

from __future__ import annotations

from typing import Any

from sandbox.common import Request, Response, json_response
from sandbox.hubspot.clock import iso
from sandbox.hubspot.search import MAX_LIMIT, MAX_RESULTS, SearchCache, SearchError
from sandbox.hubspot.store import Portal
from sandbox.hubspot.validation import PropertyError
from sandbox.hubspot.wire import (
    ApiError,
    decode_cursor,
    encode_cursor,
    json_body,
    not_found_error,
    parse_bool,
    parse_limit,
    record_wire,
    validation_error,
    wanted_properties,
)

MAX_BATCH = 100


class ObjectHandlers:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.cache = SearchCache()

    # ---- reads ---------------------------------------------------------------------------

    def list_page(self, request: Request, object_type: str) -> Response:
        portal = self.portal
        limit = parse_limit(request.arg("limit"), 10, 100)
        archived = parse_bool(request, "archived")
        after = decode_cursor(request.arg("after"))
        names = wanted_properties(request.query.get("properties"), object_type,
                                  portal.properties[object_type])
        associations = request.query.get("associations") or []
        recs, next_num = portal.page(object_type, after, limit, archived)
        body: dict[str, Any] = {
            "results": [record_wire(r, names, portal, object_type, associations) for r in recs]
        }
        if next_num is not None:
            cursor = encode_cursor(next_num)
            body["paging"] = {"next": {"after": cursor, "link": f"?after={cursor}"}}
        return json_response(200, body)

    def get(self, request: Request, object_type: str, object_id: str) -> Response:
        portal = self.portal
        id_property = request.arg("idProperty")
        if id_property not in (None, "", "hs_object_id"):
            raise ApiError(400, f"{id_property} is not a unique property", "VALIDATION_ERROR")
        archived = parse_bool(request, "archived")
        rec = portal.get(object_type, object_id)
        if rec is None or (rec.archived_ms is not None) != archived:
            raise ApiError(404, "Object not found.  objectId are usually numeric.",
                           "OBJECT_NOT_FOUND", context={"id": [object_id]})
        names = wanted_properties(request.query.get("properties"), object_type,
                                  portal.properties[object_type])
        associations = request.query.get("associations") or []
        return json_response(200, record_wire(rec, names, portal, object_type, associations))

    def search(self, request: Request, object_type: str) -> Response:
        portal = self.portal
        body = json_body(request)
        limit = parse_limit(body.get("limit"), 10, MAX_LIMIT)
        raw_after = body.get("after")
        try:
            offset = int(raw_after) if raw_after not in (None, "") else 0
        except (TypeError, ValueError):
            raise ApiError(400, f"Invalid after value {raw_after!r}: expected an offset",
                           "VALIDATION_ERROR") from None
        if offset >= MAX_RESULTS:
            # The search API serves at most 10,000 results per query; deeper pages fail.
            raise ApiError(400, f"The search API can only return up to {MAX_RESULTS} results "
                           f"for a query; after={offset} is past that limit.",
                           "VALIDATION_ERROR")
        defs = portal.properties[object_type]
        names = wanted_properties(body.get("properties"), object_type, defs)
        with portal.lock:  # the index must not change while it is scanned
            store = portal.searchable(object_type)
            try:
                found = self.cache.matches(object_type, body, store, defs)
            except SearchError as exc:
                raise ApiError(400, str(exc), "VALIDATION_ERROR") from None
        page = found[offset : offset + limit]
        out: dict[str, Any] = {
            "total": len(found),
            "results": [record_wire(r, names) for r in page],
        }
        if offset + limit < len(found):
            out["paging"] = {"next": {"after": str(offset + limit)}}
        return json_response(200, out)

    # ---- writes --------------------------------------------------------------------------

    def create(self, request: Request, object_type: str) -> Response:
        body = json_body(request)
        values = self._validated(object_type, body.get("properties") or {})
        rec = self.portal.create(object_type, values)
        names = wanted_properties(list(values), object_type, self.portal.properties[object_type])
        return json_response(201, record_wire(rec, names))

    def update(self, request: Request, object_type: str, object_id: str) -> Response:
        portal = self.portal
        body = json_body(request)
        values = self._validated(object_type, body.get("properties") or {})
        with portal.lock:
            rec = portal.get(object_type, object_id)
            if rec is None or rec.archived_ms is not None:
                raise ApiError(404, "Object not found.  objectId are usually numeric.",
                               "OBJECT_NOT_FOUND", context={"id": [object_id]})
            rec = portal.write(object_type, object_id, values, "api")
        names = wanted_properties(list(values), object_type, portal.properties[object_type])
        return json_response(200, record_wire(rec, names))

    def archive(self, object_type: str, object_id: str) -> Response:
        with self.portal.lock:
            rec = self.portal.get(object_type, object_id)
            if rec is not None:  # deleting an unknown id is a silent 204 on HubSpot
                self.portal.archive(object_type, object_id)
        return Response(204)

    def batch_read(self, request: Request, object_type: str) -> Response:
        portal = self.portal
        started = iso(portal.clock.now_ms())
        body = json_body(request)
        inputs = self._inputs(body)
        if body.get("idProperty") not in (None, "", "hs_object_id"):
            raise ApiError(400, f"{body['idProperty']} is not a unique property",
                           "VALIDATION_ERROR")
        archived = parse_bool(request, "archived")
        names = wanted_properties(body.get("properties"), object_type,
                                  portal.properties[object_type])
        results, missing = [], []
        for item in inputs:
            object_id = str(item.get("id"))
            rec = portal.get(object_type, object_id)
            if rec is None or (rec.archived_ms is not None) != archived:
                missing.append(object_id)
            else:
                results.append(record_wire(rec, names))
        return self._batch_response(object_type, results, missing, started)

    def batch_update(self, request: Request, object_type: str) -> Response:
        portal = self.portal
        started = iso(portal.clock.now_ms())
        body = json_body(request)
        inputs = self._inputs(body)
        ids = [str(item.get("id")) for item in inputs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ApiError(400, f"Duplicate IDs found in batch input: {duplicates}. IDs must "
                           "be unique", "VALIDATION_ERROR")
        # Invalid property names or values fail the whole batch, before anything is written.
        validated = [self._validated(object_type, item.get("properties") or {})
                     for item in inputs]
        results, missing = [], []
        defs = portal.properties[object_type]
        with portal.lock:
            for object_id, values in zip(ids, validated, strict=True):
                rec = portal.get(object_type, object_id)
                if rec is None or rec.archived_ms is not None:
                    missing.append(object_id)
                    continue
                rec = portal.write(object_type, object_id, values, "api")
                results.append(record_wire(rec, wanted_properties(list(values), object_type,
                                                                  defs)))
        return self._batch_response(object_type, results, missing, started)

    # ---- helpers -------------------------------------------------------------------------

    def _validated(self, object_type: str, values: Any) -> dict[str, str | None]:
        if not isinstance(values, dict):
            raise ApiError(400, "properties must be an object", "VALIDATION_ERROR")
        try:
            return self.portal.validate(object_type, values)
        except PropertyError as exc:
            raise validation_error(exc.problems) from None

    @staticmethod
    def _inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise ApiError(400, "inputs must be a list of objects", "VALIDATION_ERROR")
        if len(inputs) > MAX_BATCH:
            raise ApiError(400, f"Batch input size {len(inputs)} exceeds the maximum of "
                           f"{MAX_BATCH}", "VALIDATION_ERROR",
                           context={"maxInputs": [str(MAX_BATCH)]})
        return inputs

    def _batch_response(
        self, object_type: str, results: list[dict[str, Any]], missing: list[str], started: str
    ) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso(self.portal.clock.now_ms()),
        }
        if not missing:
            return json_response(200, body)
        body["numErrors"] = 1
        body["errors"] = [not_found_error(object_type, missing)]
        return json_response(207, body)
