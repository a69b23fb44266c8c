"""Row predicates and field getters shared by the SOQL parser and the evaluator."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from sandbox.salesforce import schema
from sandbox.salesforce.schema import FieldDef
from sandbox.salesforce.store import Record, Store

Getter = Callable[[Record], Any]


def like_regex(pattern: str) -> re.Pattern[str]:
    out = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(f"^{out}$", re.IGNORECASE | re.DOTALL)


def key_of(fdef: FieldDef, value: Any) -> Any:
    """Comparison key: SOQL compares text case-insensitively and ids case-sensitively."""
    if isinstance(value, str) and fdef.type in schema.TEXT_TYPES:
        return value.lower()
    return value


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<>": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def compare(
    fdef: FieldDef, path: str, get: Getter, op: str, value: Any
) -> Callable[[Record], bool]:
    if value is None:
        if op == "=":
            return lambda r: get(r) is None
        if op in ("!=", "<>"):
            return lambda r: get(r) is not None
        return lambda r: False
    key = key_of(fdef, value)
    cmp = _OPS[op]
    if fdef.type in schema.TEXT_TYPES:
        def text(r: Record) -> bool:
            v = get(r)
            if v is None:
                return op in ("!=", "<>")
            return cmp(v.lower() if isinstance(v, str) else v, key)
        return text
    if "." not in path:
        # The hot path of incremental reads (SystemModstamp > x): one dict lookup per row.
        name = path
        if op in ("!=", "<>"):
            return lambda r: r.get(name) != key
        return lambda r: (v := r.get(name)) is not None and cmp(v, key)
    if op in ("!=", "<>"):
        return lambda r: get(r) != key
    return lambda r: (v := get(r)) is not None and cmp(v, key)


def getter(store: Store, obj: str, path: str) -> Getter:
    """Value of a canonical path on a record; parent paths follow the lookup id."""
    if "." not in path:
        def plain(r: Record) -> Any:
            return r.get(path)
        return plain
    rel, rest = path.split(".", 1)
    ref = next(f for f in store.fields[obj].values() if f.relationship_name == rel)
    parent_obj = ref.reference_to[0]
    inner = getter(store, parent_obj, rest)
    table = store.tables[parent_obj]

    def follow(r: Record) -> Any:
        parent_id = r.get(ref.name)
        parent = table.get(parent_id) if parent_id else None
        return inner(parent) if parent is not None else None
    return follow
