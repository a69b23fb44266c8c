"""The emulated org's data: records per object, field metadata, a controllable clock, a write log.

Records are plain dicts in REST wire form, replaced (never mutated) on every write. Query cursors
keep references to the dicts they matched, so a page fetched later shows the row as it was when
the query ran, and a write never has to copy the whole table.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sandbox.salesforce import schema
from sandbox.salesforce.clock import Clock
from sandbox.salesforce.schema import FieldDef

Record = dict[str, Any]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def id18(id15: str) -> str:
    """Salesforce's case-safe suffix: one char per 5-char chunk encoding which chars are upper."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")
        suffix += _CHECKSUM[bits]
    return id15 + suffix


def _b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return out.rjust(width, "0")


def full_name(user: Mapping[str, Any]) -> str:
    """A User's compound Name: first and last name."""
    return " ".join(str(p) for p in (user.get("FirstName"), user.get("LastName")) if p)


@dataclass(frozen=True, slots=True)
class WriteLogEntry:
    object: str
    id: str
    field: str
    old: Any
    new: Any
    time: datetime
    via: str  # "rest" (one record), "collections", "bulk" or "sandbox" (the test helpers)


class SaveError(Exception):
    """A per-record failure, shaped like a SaveResult error."""

    def __init__(self, code: str, message: str, fields: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = list(fields)

    def as_result(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


class Store:
    def __init__(self, *, multi_currency: bool = False, org_id: str = "00D5g000004ECOS") -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.multi_currency = multi_currency
        self.org_id = id18(org_id)
        self.user_id = id18("0055g00000ECOSY")
        self.fields: dict[str, dict[str, FieldDef]] = {}
        # Custom fields created through the Metadata API but not yet granted to the user
        # (no field-level security): they exist, yet describe, SOQL and writes cannot see them.
        self.hidden: dict[str, dict[str, FieldDef]] = {}
        self.tables: dict[str, dict[str, Record]] = {}
        self.deleted_at: dict[str, str] = {}
        self.ignored_fields: dict[str, set[str]] = {}  # load() keys the schema does not have
        self.write_log: list[WriteLogEntry] = []
        self._seq = 0
        self._journal: list[tuple[str, str, Record | None]] | None = None
        # Sorted (SystemModstamp, Id) per object: incremental reads bisect it instead of
        # scanning the table. Rebuilt lazily after bulk loads and rollbacks.
        self._stamps: dict[str, list[tuple[str, str]]] = {}
        self._stamps_dirty: set[str] = set()
        self._define("Account", schema.account_fields())
        self._define("Opportunity", schema.opportunity_fields())
        self._define("User", schema.user_fields())
        # The user every record defaults to as its owner: the API user of the sandbox.
        self.load("User", [{"Id": self.user_id, "FirstName": "ecosync",
                            "LastName": "Integration", "Email": "integration@ecosync.test",
                            "Username": "integration@ecosync.test", "IsActive": True}])
        if multi_currency:
            for obj in ("Account", "Opportunity"):
                self.add_field(obj, schema.currency_iso_field())
            self._define("CurrencyType", schema.currency_type_fields())
            self._define("DatedConversionRate", schema.dated_rate_fields())
            self._seed_currencies()

    # ------------------------------------------------------------------ metadata
    def _define(self, obj: str, fields: list[FieldDef]) -> None:
        self.fields[obj] = {f.name: f for f in fields}
        self.tables[obj] = {}
        self._stamps_dirty.add(obj)

    def rows_stamped_from(self, obj: str, lower: str) -> list[Record]:
        """Records whose SystemModstamp >= lower (wire form), in (SystemModstamp, Id) order."""
        with self.lock:
            index = self._stamps.get(obj)
            if index is None or obj in self._stamps_dirty:
                index = sorted(
                    (r["SystemModstamp"], rid) for rid, r in self.tables[obj].items()
                )
                self._stamps[obj] = index
                self._stamps_dirty.discard(obj)
            table = self.tables[obj]
            return [table[rid] for _, rid in index[bisect.bisect_left(index, (lower,)) :]]

    def invalidate_stamps(self, obj: str) -> None:
        """Before many writes at once (a Bulk job): one rebuild beats thousands of inserts."""
        with self.lock:
            self._stamps_dirty.add(obj)

    def discard(self, obj: str, rid: str) -> None:
        """Forget a record entirely (a failed insert), unlike the soft `soft_delete`."""
        with self.lock:
            self.tables[obj].pop(rid, None)
            self._stamps_dirty.add(obj)

    def _restamp(self, obj: str, rid: str, old: str | None, new: str | None) -> None:
        index = self._stamps.get(obj)
        if index is None or obj in self._stamps_dirty or old == new:
            return
        if old is not None:
            pos = bisect.bisect_left(index, (old, rid))
            if pos < len(index) and index[pos] == (old, rid):
                del index[pos]
        if new is not None:
            bisect.insort(index, (new, rid))

    def object_name(self, name: str) -> str | None:
        """Canonical object name for a case-insensitive one, as SOQL and URLs resolve them."""
        low = name.lower()
        return next((o for o in self.fields if o.lower() == low), None)

    def field(self, obj: str, name: str) -> FieldDef | None:
        defs = self.fields[obj]
        found = defs.get(name)
        if found is not None:
            return found
        low = name.lower()
        return next((f for n, f in defs.items() if n.lower() == low), None)

    def add_field(self, obj: str, field: FieldDef) -> None:
        with self.lock:
            self.fields[obj][field.name] = field
            default: Any = False if field.type == "boolean" else None
            if field.name == "CurrencyIsoCode":
                default = "USD"
            for rid, rec in self.tables.get(obj, {}).items():
                if field.name not in rec:
                    self.tables[obj][rid] = {**rec, field.name: default}

    def define_custom_field(self, obj: str, field: FieldDef, *, visible: bool) -> None:
        with self.lock:
            if visible:
                self.hidden.get(obj, {}).pop(field.name, None)
                self.add_field(obj, field)
            elif field.name in self.fields[obj]:
                self.fields[obj][field.name] = field  # an update keeps its grant
            else:
                self.hidden.setdefault(obj, {})[field.name] = field

    def grant_field(self, full_name: str) -> bool:
        """Field-level security for `Object.Field__c`: a hidden field becomes visible."""
        obj_name, _, name = full_name.partition(".")
        with self.lock:
            obj = self.object_name(obj_name)
            field = self.hidden.get(obj or "", {}).pop(name, None)
            if obj is None or field is None:
                return False
            self.add_field(obj, field)
            return True

    def remove_field(self, obj: str, name: str) -> None:
        with self.lock:
            self.fields[obj].pop(name, None)

    def set_field_updateable(self, obj: str, name: str, updateable: bool) -> None:
        with self.lock:
            self.fields[obj][name] = replace(self.fields[obj][name], updateable=updateable)

    # ------------------------------------------------------------------ ids & time
    def new_id(self, obj: str) -> str:
        with self.lock:
            self._seq += 1
            seq = self._seq
        # prefix(3) + pod(2) + fixed-width counter(10): string order follows creation order
        return id18(schema.KEY_PREFIX.get(obj, "a00") + "5g" + _b62(seq, 10))

    def now_str(self) -> str:
        return schema.format_datetime(self.clock.now())

    # ------------------------------------------------------------------ records
    def _defaults(self, obj: str) -> Record:
        out: Record = {}
        for name, f in self.fields[obj].items():
            out[name] = False if f.type == "boolean" else None
        if "OwnerId" in out:
            out["OwnerId"] = self.user_id
        if "CurrencyIsoCode" in out:
            out["CurrencyIsoCode"] = "USD"
        return out

    def load(self, obj: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Bulk insert without API validation (seed data); returns the ids in input order."""
        obj = self._require_object(obj)
        defs = self.fields[obj]
        template = self._defaults(obj)
        now = self.now_str()
        converters = {
            name: _loader(f) for name, f in defs.items() if f.type in ("datetime", "date")
        }
        ids: list[str] = []
        with self.lock:
            table = self.tables[obj]
            for row in rows:
                rec = dict(template)
                for key, value in row.items():
                    if key not in defs:
                        # A field this org lacks (e.g. CurrencyIsoCode without multi-currency)
                        # is dropped, as a real org would never have stored it.
                        self.ignored_fields.setdefault(obj, set()).add(key)
                        continue
                    conv = converters.get(key)
                    rec[key] = conv(value) if conv and value is not None else value
                rid = rec.get("Id") or self.new_id(obj)
                rid = id18(rid) if len(rid) == 15 else rid
                rec["Id"] = rid
                if rec.get("IsDeleted"):
                    self.deleted_at[rid] = rec.get("SystemModstamp") or now
                if "CreatedDate" in defs:
                    rec["CreatedDate"] = rec.get("CreatedDate") or now
                    rec["LastModifiedDate"] = rec.get("LastModifiedDate") or rec["CreatedDate"]
                if "SystemModstamp" in defs and not rec.get("SystemModstamp"):
                    rec["SystemModstamp"] = rec.get("LastModifiedDate") or now
                if obj == "User" and not rec.get("Name"):
                    rec["Name"] = full_name(rec)
                if obj == "Opportunity" and rec.get("StageName") in schema.OPPORTUNITY_STAGES:
                    rec["IsClosed"], rec["IsWon"] = schema.OPPORTUNITY_STAGES[rec["StageName"]]
                table[rid] = rec
                ids.append(rid)
            self._stamps_dirty.add(obj)
        return ids

    def _require_object(self, obj: str) -> str:
        canonical = self.object_name(obj)
        if canonical is None:
            raise KeyError(f"unknown object {obj!r}")
        return canonical

    def find(self, rid: str) -> tuple[str, Record] | None:
        for obj, table in self.tables.items():
            rec = table.get(rid)
            if rec is not None:
                return obj, rec
        if len(rid) == 15:
            return self.find(id18(rid))
        return None

    def get(self, obj: str, rid: str) -> Record | None:
        return self.tables[self._require_object(obj)].get(rid)

    def records(self, obj: str, include_deleted: bool = False) -> list[Record]:
        table = self.tables[self._require_object(obj)]
        return [r for r in table.values() if include_deleted or not r.get("IsDeleted")]

    def apply(
        self,
        obj: str,
        rid: str,
        values: Mapping[str, Any],
        *,
        via: str,
        modstamp: datetime | None = None,
    ) -> Record:
        """Write already-validated values; bumps the audit fields and logs every written field."""
        with self.lock:
            table = self.tables[obj]
            old = table[rid]
            new = {**old, **values}
            if obj == "Opportunity" and "StageName" in values:
                new["IsClosed"], new["IsWon"] = schema.OPPORTUNITY_STAGES.get(
                    str(new["StageName"]), (False, False)
                )
            if obj == "User" and ("FirstName" in values or "LastName" in values):
                new["Name"] = full_name(new)
            stamp = schema.format_datetime(modstamp) if modstamp else self.now_str()
            if "LastModifiedDate" in new:
                new["LastModifiedDate"] = stamp
            if "SystemModstamp" in new:
                new["SystemModstamp"] = stamp
            when = self.clock.now()
            for name, value in values.items():
                self.write_log.append(
                    WriteLogEntry(obj, rid, name, old.get(name), value, when, via)
                )
            self._remember(obj, rid, old)
            table[rid] = new
            self._restamp(obj, rid, old.get("SystemModstamp"), new.get("SystemModstamp"))
            return new

    def soft_delete(self, obj: str, rid: str, *, via: str, deleted: bool = True) -> None:
        """Move a record to the Recycle Bin (or, with deleted=False, restore it)."""
        with self.lock:
            old = self.tables[obj][rid]
            stamp = self.now_str()
            self._remember(obj, rid, old)
            self.tables[obj][rid] = {
                **old, "IsDeleted": deleted, "SystemModstamp": stamp, "LastModifiedDate": stamp,
            }
            if deleted:
                self.deleted_at[rid] = stamp
            else:
                self.deleted_at.pop(rid, None)
            self._restamp(obj, rid, old.get("SystemModstamp"), stamp)
            self.write_log.append(WriteLogEntry(
                obj, rid, "IsDeleted", bool(old.get("IsDeleted")), deleted, self.clock.now(), via
            ))

    # ------------------------------------------------------------------ transactions
    def _remember(self, obj: str, rid: str, old: Record | None) -> None:
        if self._journal is not None:
            self._journal.append((obj, rid, old))

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """All-or-none writes (collections with allOrNone, composite): roll back on request."""
        with self.lock:
            outer = self._journal
            self._journal = []
            tx = Transaction(self, len(self.write_log))
            try:
                yield tx
            finally:
                journal, self._journal = self._journal, outer
                if tx.rolled_back:
                    self._stamps_dirty.update(obj for obj, _, _ in journal)
                    for obj, rid, old in reversed(journal):
                        if old is None:
                            self.tables[obj].pop(rid, None)
                        else:
                            self.tables[obj][rid] = old
                    del self.write_log[tx.log_mark :]
                elif outer is not None:
                    outer.extend(journal)

    def _seed_currencies(self) -> None:
        now = self.now_str()
        self.load("CurrencyType", [
            {"IsoCode": code, "ConversionRate": rate, "DecimalPlaces": 0 if code == "JPY" else 2,
             "IsActive": True, "IsCorporate": code == "USD", "SystemModstamp": now}
            for code, rate in schema.CURRENCY_RATES.items()
        ])
        # Two dated periods per currency: the older rate differs by 3 %, as rates drift.
        rows = []
        for code, rate in schema.CURRENCY_RATES.items():
            rows.append({"IsoCode": code, "ConversionRate": round(rate * 1.03, 6),
                         "StartDate": "0001-01-01", "NextStartDate": "2024-01-01",
                         "SystemModstamp": now})
            rows.append({"IsoCode": code, "ConversionRate": rate, "StartDate": "2024-01-01",
                         "NextStartDate": "9999-12-31", "SystemModstamp": now})
        self.load("DatedConversionRate", rows)


@dataclass(slots=True)
class Transaction:
    store: Store
    log_mark: int
    rolled_back: bool = False

    def rollback(self) -> None:
        self.rolled_back = True


def _loader(f: FieldDef) -> Any:
    if f.type == "datetime":
        def conv_dt(v: Any) -> Any:
            return schema.normalize_datetime(v) or v
        return conv_dt

    def conv_d(v: Any) -> Any:
        if isinstance(v, date | datetime):
            return schema.normalize_date(v)
        return v
    return conv_d
