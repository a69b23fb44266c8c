"""Record writes over REST: single-record PATCH, sObject Collections PATCH, DELETE.

Validation order follows the platform: the JSON body is deserialized against the object's fields
first (unknown field or wrong JSON type fails the whole request), then each record is saved on its
own (read-only field, too-long value, deleted or locked record fail only that record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sandbox.salesforce import schema
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.store import SaveError, Store, id18

MAX_COLLECTION = 200
LOCK_MESSAGE = "unable to obtain exclusive access to this record or 1 records: {id}"
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using"
    " AllOrNone header",
    "fields": [],
}


def deserialize(store: Store, obj: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Check every key names a field of `obj` and every value has a JSON type the field takes."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "attributes":
            continue
        fdef = store.field(obj, key)
        if fdef is None:
            raise ApiError(
                400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj}"
            )
        if value is not None and not _json_type_ok(fdef.type, value):
            kind = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(
                fdef.type, "double" if fdef.type in schema.NUMBER_TYPES else "string")
            raise ApiError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {kind} from {_json_kind(value)} value "
                f"{value} or request may be missing a required field at [line:1, column:1]",
            )
        out[fdef.name] = value
    return out


def _json_type_ok(ftype: str, value: Any) -> bool:
    if ftype == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if ftype in schema.NUMBER_TYPES:
        if isinstance(value, bool):
            return False
        if isinstance(value, int | float):
            return True
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True
    if ftype == "datetime":
        return isinstance(value, str) and schema.parse_datetime(value) is not None
    if ftype == "date":
        return schema.normalize_date(value) is not None
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int | float):
        return "VALUE_NUMBER_INT" if isinstance(value, int) else "VALUE_NUMBER_FLOAT"
    return "START_OBJECT"


def normalize_id(obj: str, rid: str) -> str:
    """The 18-character form of an id for `obj`, or MALFORMED_ID as the platform reports it."""
    prefix = schema.KEY_PREFIX.get(obj)
    if len(rid) not in (15, 18) or not rid.isalnum() or (prefix and not rid.startswith(prefix)):
        raise SaveError("MALFORMED_ID", f"{obj} ID: id value of incorrect type: {rid}", ["Id"])
    return id18(rid) if len(rid) == 15 else rid


def save(
    store: Store,
    obj: str,
    rid: str,
    values: Mapping[str, Any],
    *,
    via: str,
    locked: Callable[[], bool],
) -> str:
    """Save one record's deserialized values or raise SaveError with the record's status code."""
    rid = normalize_id(obj, rid)
    rec = store.tables[obj].get(rid)
    if rec is None:
        raise SaveError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"])
    if rec.get("IsDeleted"):
        raise SaveError("ENTITY_IS_DELETED", "entity is deleted")
    read_only = [n for n in values if n != "Id" and not store.fields[obj][n].updateable]
    if read_only:
        raise SaveError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(read_only)}. Please check the security"
            " settings of this field and verify that it is read/write for your profile or"
            " permission set.",
            read_only,
        )
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if name == "Id":
            continue
        try:
            clean[name] = schema.coerce(store.fields[obj][name], value)
        except schema.ValueError_ as exc:
            raise SaveError(exc.code, exc.message, [exc.field]) from exc
    if obj == "Opportunity" and "StageName" in clean and (
        clean["StageName"] not in schema.OPPORTUNITY_STAGES
    ):
        raise SaveError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"Stage: bad value for restricted picklist field: {clean['StageName']}",
            ["StageName"],
        )
    if locked():
        raise SaveError("UNABLE_TO_LOCK_ROW", LOCK_MESSAGE.format(id=rid))
    store.apply(obj, rid, clean, via=via)
    return rid


def patch_one(
    store: Store, obj: str, rid: str, body: Any, *, via: str, locked: Callable[[], bool]
) -> None:
    """PATCH /sobjects/{obj}/{id}: 204 on success, otherwise the REST error for that record."""
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    try:
        rid = normalize_id(obj, rid)
    except SaveError as exc:
        raise ApiError(400, exc.code, exc.message, exc.fields) from exc
    with store.lock:
        rec = store.tables[obj].get(rid)
        if rec is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if rec.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        values = deserialize(store, obj, body)
        try:
            save(store, obj, rid, values, via=via, locked=locked)
        except SaveError as exc:
            raise ApiError(400, exc.code, exc.message, exc.fields) from exc


def create_one(store: Store, obj: str, body: Any, *, via: str) -> str:
    """POST /sobjects/{obj}: the new id (201), or the REST error of the insert."""
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    values = deserialize(store, obj, body)
    defs = store.fields[obj]
    blocked = [n for n in values if not defs[n].createable]
    if blocked:
        raise ApiError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                       f"Unable to create/update fields: {', '.join(blocked)}. Please check the"
                       " security settings of this field and verify that it is read/write for"
                       " your profile or permission set.", blocked)
    required = [n for n, f in defs.items()
                if f.createable and not f.nillable and f.type != "boolean"
                and n != "OwnerId" and values.get(n) is None]
    if required:
        raise ApiError(400, "REQUIRED_FIELD_MISSING",
                       f"Required fields are missing: [{', '.join(required)}]", required)
    with store.lock:
        rid = store.load(obj, [{}])[0]
        try:
            save(store, obj, rid, values, via=via, locked=lambda: False)
        except SaveError as exc:
            store.discard(obj, rid)
            raise ApiError(400, exc.code, exc.message, exc.fields) from exc
    return rid


def delete_one(store: Store, obj: str, rid: str, *, via: str) -> None:
    with store.lock:
        rec = store.tables[obj].get(rid)
        if rec is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if rec.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        store.soft_delete(obj, rid, via=via)


def patch_collection(
    store: Store, body: Any, *, via: str, locked: Callable[[], bool]
) -> list[dict[str, Any]]:
    """PATCH /composite/sobjects: SaveResults in request order, `statusCode` per error."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "Unexpected request body: expected records")
    records: list[Any] = body["records"]
    if len(records) > MAX_COLLECTION:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this"
            " call",
        )
    all_or_none = bool(body.get("allOrNone", False))
    parsed: list[tuple[str, str, dict[str, Any]]] = []
    for item in records:
        if not isinstance(item, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
        attrs = item.get("attributes")
        type_name = attrs.get("type") if isinstance(attrs, dict) else None
        if not type_name:
            raise ApiError(
                400, "INVALID_TYPE", "When the attributes field is omitted, the type must be"
                " specified with the sObject name"
            )
        obj = store.object_name(str(type_name))
        if obj is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        rid = str(item.get("id") or item.get("Id") or "")
        parsed.append((obj, rid, deserialize(store, obj, item)))
    chunks = sum(1 for i, p in enumerate(parsed) if i == 0 or parsed[i - 1][0] != p[0])
    if chunks > 10:
        raise ApiError(
            400, "INVALID_BATCH_REQUEST",
            "Cannot have more than 10 chunks in a single operation. Please rearrange the data"
            " to reduce chunking.",
        )
    results: list[dict[str, Any]] = []
    with store.transaction() as tx:
        for obj, rid, values in parsed:
            if not rid:
                results.append(_failure(SaveError("MISSING_ARGUMENT", "Id not specified in an"
                                                  " update call", ["Id"])))
                continue
            try:
                saved = save(store, obj, rid, values, via=via, locked=locked)
                results.append({"id": saved, "success": True, "errors": []})
            except SaveError as exc:
                results.append(_failure(exc))
        if all_or_none and any(not r["success"] for r in results):
            tx.rollback()
            results = [r if not r["success"] else _rolled_back() for r in results]
    return results


def _failure(exc: SaveError) -> dict[str, Any]:
    # Failed update results carry no id in the documented examples: callers match by position.
    return {"success": False, "errors": [exc.as_result()]}


def _rolled_back() -> dict[str, Any]:
    return {"success": False, "errors": [dict(ROLLED_BACK)]}
