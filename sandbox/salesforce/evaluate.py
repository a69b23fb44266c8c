"""Running a parsed SOQL query: candidate rows, the compiled WHERE, ORDER BY, LIMIT/OFFSET,
and the REST projection of a record (`attributes` first, parent lookups nested)."""

from __future__ import annotations

import operator
from typing import Any

from sandbox.salesforce import schema
from sandbox.salesforce.schema import FieldDef
from sandbox.salesforce.soql import Getter, Query, getter
from sandbox.salesforce.store import Record, Store


def execute(store: Store, q: Query, include_deleted: bool) -> list[Record]:
    """Matching rows, sorted and limited: evaluated once, kept by the cursor for its pages."""
    indexed = q.stamp_floor is not None and "SystemModstamp" in store.fields[q.object]
    if indexed and q.stamp_floor is not None:
        rows = store.rows_stamped_from(q.object, q.stamp_floor)
    else:
        with store.lock:
            rows = list(store.tables[q.object].values())
    conditions = [q.where] if q.where else []
    if not include_deleted and "IsDeleted" in store.fields[q.object]:
        conditions.insert(0, "not r['IsDeleted']")
    if conditions:
        source = f"lambda rows: [r for r in rows if {' and '.join(conditions)}]"
        # The source is built by the parser from validated field names and bound constants.
        row_filter = eval(source, dict(q.namespace))  # noqa: S307
        rows = row_filter(rows)
    index_order = [("SystemModstamp", False, False), ("Id", False, False)]
    if q.order and not (indexed and q.order == index_order[: len(q.order)]):
        rows = _sorted(store, q, rows)  # else the index already yields this order
    if q.offset:
        rows = rows[q.offset :]
    if q.limit is not None:
        rows = rows[: q.limit]
    return rows


def _sort_key(store: Store, obj: str, path: str, desc: bool, nulls_last: bool) -> Getter:
    """(null flag, value): None sorts first or last per NULLS FIRST/LAST and never meets a
    value in a comparison; text sorts case-insensitively."""
    fdef = _field_at(store, obj, path)
    get: Getter = operator.itemgetter(path) if "." not in path else getter(store, obj, path)
    # reverse=True flips the flag too, so the flag's sense depends on the direction
    null_high = nulls_last != desc
    if fdef.type in schema.TEXT_TYPES:
        def text_key(r: Record) -> Any:
            v = get(r)
            return (v is None) == null_high, v.lower() if isinstance(v, str) else v
        return text_key

    def key(r: Record) -> Any:
        v = get(r)
        return (v is None) == null_high, v
    return key


def _sorted(store: Store, q: Query, rows: list[Record]) -> list[Record]:
    paths = [p for p, _, _ in q.order]
    fdefs = [_field_at(store, q.object, p) for p in paths]
    if (
        len({d for _, d, _ in q.order}) == 1
        and all("." not in p for p in paths)
        and all(not f.nillable and f.type not in schema.TEXT_TYPES for f in fdefs)
    ):
        # Never-null, non-text columns in one direction: a C-level key is enough.
        return sorted(rows, key=operator.itemgetter(*paths), reverse=q.order[0][1])
    keys = [(_sort_key(store, q.object, p, d, n), d) for p, d, n in q.order]
    if all(d == keys[0][1] for _, d in keys):
        # One sort with a composite key when every column runs the same direction.
        funcs = [k for k, _ in keys]
        return sorted(rows, key=lambda r: [f(r) for f in funcs], reverse=keys[0][1])
    # Mixed directions: stable sorts from the last key to the first.
    for func, desc in reversed(keys):
        rows = sorted(rows, key=func, reverse=desc)
    return rows


def _field_at(store: Store, obj: str, path: str) -> FieldDef:
    *rels, name = path.split(".")
    for rel in rels:
        ref = next(f for f in store.fields[obj].values() if f.relationship_name == rel)
        obj = ref.reference_to[0]
    return store.fields[obj][name]


def project(store: Store, q: Query, rec: Record, version: str) -> dict[str, Any]:
    """One REST query record: `attributes` first, then the selected fields in SELECT order."""
    out: dict[str, Any] = {
        "attributes": {
            "type": q.object,
            "url": f"/services/data/v{version}/sobjects/{q.object}/{rec['Id']}",
        }
    }
    for path in q.fields:
        if "." not in path:
            out[path] = rec.get(path)
            continue
        _nest(store, q.object, rec, path.split("."), out, version)
    return out


def _nest(
    store: Store, obj: str, rec: Record, parts: list[str], out: dict[str, Any], version: str
) -> None:
    if len(parts) == 1:
        out[parts[0]] = rec.get(parts[0])
        return
    rel = parts[0]
    ref = next(f for f in store.fields[obj].values() if f.relationship_name == rel)
    parent_obj = ref.reference_to[0]
    parent = store.tables[parent_obj].get(rec.get(ref.name) or "")
    if parent is None:
        out[rel] = None
        return
    sub = out.get(rel)
    if not isinstance(sub, dict):
        sub = {"attributes": {
            "type": parent_obj,
            "url": f"/services/data/v{version}/sobjects/{parent_obj}/{parent['Id']}",
        }}
        out[rel] = sub
    _nest(store, parent_obj, parent, parts[1:], sub, version)
