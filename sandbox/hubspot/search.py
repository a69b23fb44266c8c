"""CRM search: filterGroups (ORed) of filters (ANDed), one sort, offset paging.

Matching and sorting a 200,000-record index costs a few tens of milliseconds, and a client
pages through the same query 50 times, so the sorted match list is cached per query and per
index version: page two onwards is a slice. Caps follow the real API: at most 5 filter
groups, 10 filters per group, 25 in all, one sort, 200 results a page, 10,000 results deep.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from sandbox.hubspot.clock import parse_time
from sandbox.hubspot.schema import PropertyDef
from sandbox.hubspot.store import ObjectStore, Rec

MAX_LIMIT = 200
MAX_RESULTS = 10_000
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 10, 25
OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
# Free-text `query` looks at these (HubSpot searches a default text property set per object).
QUERY_PROPERTIES = {"companies": ("name", "domain", "website"), "deals": ("dealname",)}

Pred = Callable[[Rec], bool]
Getter = Callable[[Rec], Any]


class SearchError(ValueError):
    """A request HubSpot rejects with 400 VALIDATION_ERROR."""


@lru_cache(maxsize=131072)
def _time_of(value: str) -> int | None:
    return parse_time(value)


def _getter(prop: PropertyDef) -> Getter:
    """A function giving the comparable value of a property, or None when unset."""
    name = prop.name
    if name == "hs_lastmodifieddate":
        return lambda r: r.updated_ms
    if name == "createdate":
        return lambda r: r.created_ms
    if name == "hs_object_id":
        return lambda r: r.num
    if prop.type in ("datetime", "date"):
        def time_value(r: Rec) -> int | None:
            v = r.props.get(name)
            return _time_of(v) if v else None
        return time_value
    if prop.type == "number":
        def number_value(r: Rec) -> float | None:
            v = r.props.get(name)
            return float(v) if v else None
        return number_value

    def text_value(r: Rec) -> str | None:
        v = r.props.get(name)
        return v.lower() if v else None
    return text_value


def _operand(prop: PropertyDef, raw: Any) -> Any:
    if raw is None:
        raise SearchError(f"A value is required for a filter on {prop.name}")
    text = str(raw)
    if prop.name in ("hs_lastmodifieddate", "createdate") or prop.type in ("datetime", "date"):
        ms = parse_time(text)
        if ms is None:
            raise SearchError(f"{text!r} is not a valid time value for {prop.name}")
        return ms
    if prop.type == "number":
        try:
            return float(text)
        except ValueError:
            raise SearchError(f"{text!r} is not a valid number for {prop.name}") from None
    return text.lower()


def _compile_filter(flt: Mapping[str, Any], defs: Mapping[str, PropertyDef]) -> Pred:
    name = flt.get("propertyName")
    op = str(flt.get("operator") or "EQ").upper()
    if op not in OPERATORS:
        raise SearchError(f"Unknown filter operator {op}")
    prop = defs.get(str(name))
    if prop is None:
        raise SearchError(f"Property {name} does not exist or is not searchable")
    get = _getter(prop)
    if op == "HAS_PROPERTY":
        return lambda r: get(r) is not None
    if op == "NOT_HAS_PROPERTY":
        return lambda r: get(r) is None
    if op in ("IN", "NOT_IN"):
        raw_values = flt.get("values")
        if not isinstance(raw_values, list) or not raw_values:
            raise SearchError(f"{op} requires a non-empty values list")
        if prop.type in ("number", "datetime", "date") or prop.name == "hs_object_id":
            values = {_operand(prop, v) for v in raw_values}
        else:
            # HubSpot documents that string values in IN/NOT_IN must be lower-case; a value
            # sent in upper case simply never matches, as on the real API.
            values = {str(v) for v in raw_values}
        if op == "IN":
            return lambda r: get(r) in values
        return lambda r: get(r) not in values
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(flt.get("value") or "").lower().strip("*")
        contains: Pred = lambda r: (v := get(r)) is not None and token in str(v)  # noqa: E731
        return contains if op == "CONTAINS_TOKEN" else (lambda r: not contains(r))
    value = _operand(prop, flt.get("value"))
    if op in ("EQ", "NEQ") and isinstance(value, str) and prop.name != "hs_object_id":
        # Text equality, inlined: the most common filter in a full scan, so no getter call.
        name = prop.name
        if op == "EQ":
            return lambda r: (v := r.props.get(name)) is not None and v.lower() == value
        return lambda r: (v := r.props.get(name)) is None or v.lower() != value
    if op == "EQ":
        return lambda r: get(r) == value
    if op == "NEQ":
        return lambda r: get(r) != value
    if op == "BETWEEN":
        high = _operand(prop, flt.get("highValue"))
        return lambda r: (v := get(r)) is not None and value <= v <= high
    compare: dict[str, Callable[[Any], bool]] = {
        "LT": lambda v: v < value,
        "LTE": lambda v: v <= value,
        "GT": lambda v: v > value,
        "GTE": lambda v: v >= value,
    }
    test = compare[op]
    return lambda r: (v := get(r)) is not None and test(v)


def compile_filters(
    groups: Any, query: Any, object_type: str, defs: Mapping[str, PropertyDef]
) -> Pred | None:
    if groups is None:
        groups = []
    if not isinstance(groups, list):
        raise SearchError("filterGroups must be a list")
    if len(groups) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups: {len(groups)} (at most {MAX_GROUPS})")
    compiled: list[list[Pred]] = []
    total = 0
    for group in groups:
        filters = (group or {}).get("filters") or []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(f"Too many filters in a group: {len(filters)} "
                              f"(at most {MAX_FILTERS_PER_GROUP})")
        total += len(filters)
        compiled.append([_compile_filter(f, defs) for f in filters])
    if total > MAX_FILTERS:
        raise SearchError(f"Too many filters: {total} (at most {MAX_FILTERS})")
    preds: list[Pred] = []
    # Chained closures rather than all()/any() over generators: a third of the cost of a
    # full scan of a large portal is generator overhead otherwise.
    ands = [_chain_and(g) for g in compiled if g]
    if len(ands) == 1:
        preds.append(ands[0])
    elif ands:
        preds.append(_chain_or(ands))
    if query:
        words = str(query).lower().split()
        fields = QUERY_PROPERTIES[object_type]

        def text_match(r: Rec) -> bool:
            text = " ".join((r.props.get(f) or "").lower() for f in fields)
            return all(w in text for w in words)
        preds.append(text_match)
    return _chain_and(preds) if preds else None


def _chain_and(preds: list[Pred]) -> Pred:
    out = preds[0]
    for nxt in preds[1:]:
        out = (lambda a, b: lambda r: a(r) and b(r))(out, nxt)
    return out


def _chain_or(preds: list[Pred]) -> Pred:
    out = preds[0]
    for nxt in preds[1:]:
        out = (lambda a, b: lambda r: a(r) or b(r))(out, nxt)
    return out


def sort_key(sorts: Any, defs: Mapping[str, PropertyDef]) -> tuple[Callable[[Rec], Any], bool]:
    """Key and reverse flag. Ties (and the default order) fall back to the record id."""
    if not sorts:
        return (lambda r: r.num), False
    if not isinstance(sorts, list):
        raise SearchError("sorts must be a list")
    if len(sorts) > 1:
        raise SearchError("Only one sort is supported per search request")
    spec = sorts[0]
    if isinstance(spec, str):  # the client's model types sorts as list[str]: "-name" = DESC
        name, descending = spec.lstrip("-"), spec.startswith("-")
    else:
        name = str(spec.get("propertyName"))
        descending = str(spec.get("direction", "ASCENDING")).upper() == "DESCENDING"
    prop = defs.get(name)
    if prop is None:
        raise SearchError(f"Cannot sort by unknown property {name}")
    get = _getter(prop)

    # Unset values sort after set ones ascending; the id keeps equal values stable. For a
    # descending sort the whole key is reversed, so ties come out in descending id order.
    def key(r: Rec) -> tuple[bool, Any, int]:
        v = get(r)
        return (v is None, v if v is not None else 0, r.num)
    return key, descending


WINDOW_OPS = {"GT", "GTE", "LT", "LTE", "BETWEEN"}
LASTMOD = "hs_lastmodifieddate"


def _window(groups: Any, store: ObjectStore) -> tuple[list[Rec], bool] | None:
    """Records inside a single group's hs_lastmodifieddate bounds, in (time, id) order.

    Returns the candidates and whether the window alone decides the match (no other
    filter); None when the query has no such bounds and must scan the whole index.
    """
    if not isinstance(groups, list) or len(groups) != 1:
        return None
    filters = (groups[0] or {}).get("filters") or []
    lo, hi, bounded, only_window = -(2**63), 2**63, False, True
    for flt in filters:
        op = str(flt.get("operator") or "EQ").upper()
        if flt.get("propertyName") != LASTMOD or op not in WINDOW_OPS:
            only_window = False
            continue
        value = parse_time(str(flt.get("value")))
        if value is None:
            return None  # compile_filters reports the bad value
        bounded = True
        if op == "GT":
            lo = max(lo, value + 1)
        elif op in ("GTE", "BETWEEN"):
            lo = max(lo, value)
        if op == "LT":
            hi = min(hi, value - 1)
        elif op == "LTE":
            hi = min(hi, value)
        elif op == "BETWEEN":
            high = parse_time(str(flt.get("highValue")))
            if high is None:
                return None
            hi = min(hi, high)
    if not bounded:
        return None
    entries = store.by_modified
    i = bisect.bisect_left(entries, (lo,))
    j = bisect.bisect_left(entries, (hi + 1,))
    return [e[2] for e in entries[i:j]], only_window


class SearchCache:
    """The sorted matches of recent queries, keyed by query text and index version."""

    def __init__(self, size: int = 16) -> None:
        self._entries: OrderedDict[tuple[Any, ...], list[Rec]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def matches(
        self,
        object_type: str,
        body: Mapping[str, Any],
        store: ObjectStore,
        defs: Mapping[str, PropertyDef],
    ) -> list[Rec]:
        """All matches in result order. Call with the portal lock held."""
        groups, sorts, query = body.get("filterGroups"), body.get("sorts"), body.get("query")
        text = json.dumps([groups, sorts, query], sort_keys=True, default=str)
        cache_key = (object_type, store.index_version, text)
        with self._lock:
            hit = self._entries.get(cache_key)
            if hit is not None:
                self._entries.move_to_end(cache_key)
                return hit
        pred = compile_filters(groups, query, object_type, defs)  # validates the whole query
        key, reverse = sort_key(sorts, defs)
        window = None if query else _window(groups, store)
        if window is None:
            records: list[Rec] = list(store.index.values())
            found = records if pred is None else [r for r in records if pred(r)]
            presorted = False
        else:
            candidates, only_window = window
            found = candidates if only_window else [r for r in candidates if pred and pred(r)]
            presorted = True  # already in (hs_lastmodifieddate, id) order
        by_lastmod = bool(sorts) and _sort_name(sorts) == LASTMOD
        if presorted and by_lastmod:
            if reverse:
                found = found[::-1]
        elif reverse:
            # Unset values still go last on a descending sort.
            found.sort(key=lambda r: (key(r)[0] is False, key(r)[1], r.num), reverse=True)
        else:
            found.sort(key=key)
        with self._lock:
            self._entries[cache_key] = found
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return found


def _sort_name(sorts: Any) -> str:
    spec = sorts[0]
    if isinstance(spec, str):
        return spec.lstrip("-")
    return str(spec.get("propertyName"))
