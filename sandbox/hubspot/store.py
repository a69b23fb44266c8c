"""The portal's data: records, the lagging search index, associations and the write log.

Records are copy-on-write: a write publishes a new ``Rec`` and never mutates an old one, so the
search index can keep pointing at the old version until ``search_index_lag_s`` has passed
(HubSpot's search is eventually consistent with writes). All state sits behind one lock; the
HTTPS server calls in from many threads.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sandbox.hubspot.clock import Clock, iso, parse_time, to_ms
from sandbox.hubspot.schema import (
    DEFAULT_GROUPS,
    DEFAULT_PIPELINE,
    DEFAULT_STAGES,
    OBJECT_TYPES,
    Stage,
    standard_properties,
)
from sandbox.hubspot.validation import PropertyError, Props, validate

STAGES: dict[str, Stage] = {s.id: s for s in DEFAULT_STAGES}
# Association type ids (HUBSPOT_DEFINED): deal→company primary / unlabeled, and reverse.
PRIMARY_TYPE = {"deals": 5, "companies": 6}
UNLABELED_TYPE = {"deals": 341, "companies": 342}


@dataclass(frozen=True, slots=True)
class Rec:
    id: str
    num: int
    props: Props
    created_ms: int
    updated_ms: int
    archived_ms: int | None = None


@dataclass(frozen=True, slots=True)
class WriteLogEntry:
    object_type: str
    object_id: str
    property: str
    old: str | None
    new: str | None
    time: datetime
    source: str = "api"  # "api" for calls through HTTP, "helper" for test/seed mutations


@dataclass(slots=True)
class ObjectStore:
    live: dict[str, Rec] = field(default_factory=dict)
    active_order: list[int] = field(default_factory=list)  # numeric ids, not archived
    archived_order: list[int] = field(default_factory=list)
    index: dict[str, Rec] = field(default_factory=dict)  # what search sees
    # The same records ordered by (hs_lastmodifieddate, id): incremental-sync searches filter
    # and sort on it, so a window is a bisected slice instead of a scan of the whole portal.
    by_modified: list[tuple[int, int, Rec]] = field(default_factory=list)
    index_version: int = 0
    pending: deque[tuple[int, str, Rec | None]] = field(default_factory=deque)


class Portal:
    def __init__(self, clock: Clock, search_index_lag_s: float = 0.0) -> None:
        self.clock = clock
        self.search_index_lag_s = search_index_lag_s
        self.lock = threading.RLock()
        now = clock.now_ms()
        self.objects = {t: ObjectStore() for t in OBJECT_TYPES}
        self.properties = {t: standard_properties(t, now) for t in OBJECT_TYPES}
        self.groups: dict[str, dict[str, dict[str, Any]]] = {
            t: {
                name: {"name": name, "label": label, "displayOrder": -1, "archived": False}
                for name, label in DEFAULT_GROUPS[t]
            }
            for t in OBJECT_TYPES
        }
        # deal id -> {company id: primary?}, and the reverse view for company-side reads.
        self.deal_companies: dict[str, dict[str, bool]] = {}
        self.company_deals: dict[str, dict[str, bool]] = {}
        self.write_log: list[WriteLogEntry] = []
        self._next_id = 1000

    # ---- ids and reads -------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def get(self, object_type: str, object_id: str) -> Rec | None:
        with self.lock:
            return self.objects[object_type].live.get(object_id)

    def page(
        self, object_type: str, after: int | None, limit: int, archived: bool
    ) -> tuple[list[Rec], int | None]:
        """One list page in id order starting at numeric id ``after``; the next cursor or None."""
        with self.lock:
            store = self.objects[object_type]
            order = store.archived_order if archived else store.active_order
            start = 0 if after is None else bisect.bisect_left(order, after)
            nums = order[start : start + limit + 1]
            recs = [store.live[str(n)] for n in nums[:limit]]
            return recs, (nums[limit] if len(nums) > limit else None)

    def records(self, object_type: str, archived: bool = False) -> Iterator[Rec]:
        with self.lock:
            store = self.objects[object_type]
            order = list(store.archived_order if archived else store.active_order)
        for n in order:
            rec = store.live.get(str(n))
            if rec is not None:
                yield rec

    # ---- the search index ------------------------------------------------------------------

    def searchable(self, object_type: str) -> ObjectStore:
        """The store with its index brought up to date: changes older than the lag applied.

        Callers hold ``self.lock`` while they read ``index`` / ``by_modified``.
        """
        with self.lock:
            store = self.objects[object_type]
            now = self.clock.now_ms()
            changed = False
            while store.pending and store.pending[0][0] <= now:
                _, object_id, rec = store.pending.popleft()
                old = store.index.pop(object_id, None)
                if old is not None:
                    entries = store.by_modified
                    i = bisect.bisect_left(entries, (old.updated_ms, old.num))
                    if i < len(entries) and entries[i][1] == old.num:
                        del entries[i]
                if rec is not None and rec.archived_ms is None:
                    store.index[object_id] = rec
                    bisect.insort(store.by_modified, (rec.updated_ms, rec.num, rec))
                changed = True
            if changed:
                store.index_version += 1
            return store

    def _publish(self, object_type: str, rec: Rec) -> None:
        store = self.objects[object_type]
        store.live[rec.id] = rec
        visible_at = self.clock.now_ms() + round(self.search_index_lag_s * 1000)
        store.pending.append((visible_at, rec.id, rec))

    def validate(
        self, object_type: str, values: Mapping[str, Any], *, allow_read_only: bool = False
    ) -> Props:
        return validate(self.properties[object_type], values, allow_read_only=allow_read_only)

    # ---- writes ----------------------------------------------------------------------------

    def load(self, object_type: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Seed records (visible to search at once, not written to the write log)."""
        ids: list[str] = []
        with self.lock:
            store = self.objects[object_type]
            now = self.clock.now_ms()
            to_sort = unordered = False
            for row in rows:
                values = dict(row)
                given = values.pop("id", None) or values.pop("hs_object_id", None)
                object_id = str(given) if given is not None else self._new_id()
                if not object_id.isdigit():
                    raise ValueError(f"HubSpot ids are numeric strings, got {object_id!r}")
                if object_id in store.live:
                    raise ValueError(f"{object_type} {object_id} already exists")
                num = int(object_id)
                self._next_id = max(self._next_id, num)
                created = _time_value(values.pop("createdate", None), now)
                updated = _time_value(values.pop("hs_lastmodifieddate", None), created)
                try:
                    props = self.validate(object_type, values, allow_read_only=True)
                except PropertyError as exc:
                    raise ValueError(f"cannot load {object_type} row {len(ids)}: {exc} (create "
                                     "custom properties first: define_property)") from exc
                props["createdate"] = iso(created)
                props["hs_lastmodifieddate"] = iso(updated)
                props["hs_object_id"] = object_id
                if object_type == "deals":
                    _derive_deal(props)
                rec = Rec(object_id, num, props, created, updated)
                store.live[object_id] = rec
                store.index[object_id] = rec
                if store.active_order and num < store.active_order[-1]:
                    to_sort = True
                store.active_order.append(num)
                entry = (updated, num, rec)
                if store.by_modified and entry[:2] < store.by_modified[-1][:2]:
                    unordered = True
                store.by_modified.append(entry)
                ids.append(object_id)
            if to_sort:
                store.active_order.sort()
            if unordered:
                store.by_modified.sort(key=lambda e: (e[0], e[1]))
            store.index_version += 1
        return ids

    def create(self, object_type: str, values: Props) -> Rec:
        """A record created through the API (searchable after the index lag)."""
        with self.lock:
            now = self.clock.now_ms()
            object_id = self._new_id()
            props: Props = {k: (None if v == "" else v) for k, v in values.items()}
            created = _time_value(props.pop("createdate", None), now)
            props["createdate"] = iso(created)
            props["hs_lastmodifieddate"] = iso(now)
            props["hs_object_id"] = object_id
            if object_type == "deals":
                _derive_deal(props)
            rec = Rec(object_id, int(object_id), props, created, now)
            self.objects[object_type].active_order.append(rec.num)
            self._publish(object_type, rec)
            return rec

    def write(self, object_type: str, object_id: str, values: Props, source: str) -> Rec:
        """Apply already-validated values; every accepted write advances hs_lastmodifieddate."""
        with self.lock:
            old = self.objects[object_type].live[object_id]
            now = max(self.clock.now_ms(), old.updated_ms)
            props = dict(old.props)
            props.update({k: (None if v == "" else v) for k, v in values.items()})
            if object_type == "deals":
                _derive_deal(props)
                # HubSpot's default: moving an open deal to a closed stage without a close
                # date sets the close date to now.
                if (props["hs_is_closed"] == "true" and old.props.get("hs_is_closed") != "true"
                        and not props.get("closedate")):
                    props["closedate"] = iso(now)
            props["hs_lastmodifieddate"] = iso(now)
            stamp = self.clock.now()
            for name, new in props.items():
                if name != "hs_lastmodifieddate" and old.props.get(name) != new:
                    self.write_log.append(
                        WriteLogEntry(object_type, object_id, name, old.props.get(name), new,
                                      stamp, source)
                    )
            rec = replace(old, props=props, updated_ms=now)
            self._publish(object_type, rec)
            return rec

    def archive(self, object_type: str, object_id: str) -> None:
        with self.lock:
            store = self.objects[object_type]
            old = store.live[object_id]
            if old.archived_ms is not None:
                return
            rec = replace(old, archived_ms=self.clock.now_ms())
            _move(store.active_order, store.archived_order, rec.num)
            self._publish(object_type, rec)

    def restore(self, object_type: str, object_id: str) -> None:
        with self.lock:
            store = self.objects[object_type]
            old = store.live[object_id]
            if old.archived_ms is None:
                return
            rec = replace(old, archived_ms=None)
            _move(store.archived_order, store.active_order, rec.num)
            self._publish(object_type, rec)

    # ---- associations ----------------------------------------------------------------------

    def associate(self, deal_id: str, company_id: str, primary: bool) -> None:
        with self.lock:
            links = self.deal_companies.setdefault(deal_id, {})
            if primary:  # a deal has at most one primary company
                for other in links:
                    links[other] = False
                    self.company_deals[other][deal_id] = False
            links[company_id] = primary
            self.company_deals.setdefault(company_id, {})[deal_id] = primary

    def dissociate(self, deal_id: str, company_id: str) -> None:
        with self.lock:
            self.deal_companies.get(deal_id, {}).pop(company_id, None)
            self.company_deals.get(company_id, {}).pop(deal_id, None)

    def associations(self, object_type: str, object_id: str) -> list[tuple[str, bool]]:
        """(other id, primary?) pairs in numeric id order: deals→companies or companies→deals."""
        with self.lock:
            table = self.deal_companies if object_type == "deals" else self.company_deals
            return sorted(table.get(object_id, {}).items(), key=lambda kv: int(kv[0]))


def _time_value(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, datetime):
        return to_ms(value)
    if isinstance(value, int | float):
        return int(value)
    ms = parse_time(str(value))
    if ms is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return ms


def _derive_deal(props: Props) -> None:
    """hs_is_closed / hs_is_closed_won are calculated from the stage, as HubSpot does."""
    if not props.get("pipeline"):
        props["pipeline"] = DEFAULT_PIPELINE
    if not props.get("dealstage"):
        props["dealstage"] = DEFAULT_STAGES[0].id
    stage = STAGES.get(props["dealstage"] or "")
    closed = stage is not None and stage.is_closed
    props["hs_is_closed"] = "true" if closed else "false"
    props["hs_is_closed_won"] = "true" if stage is not None and stage.won else "false"


def _move(src: list[int], dst: list[int], num: int) -> None:
    i = bisect.bisect_left(src, num)
    if i < len(src) and src[i] == num:
        del src[i]
    bisect.insort(dst, num)
