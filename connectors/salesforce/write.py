"""Writing owned fields: values shaped per field type, then as few API calls as possible.

- up to `bulk_write_threshold` records: sObject Collections PATCH of 200 records, five of them
  inside one Composite request, so 1,000 records cost one API call (a composite request counts
  as one call whatever it holds; five is the platform's cap on collection subrequests);
- above it: a Bulk API 2.0 update job (about six calls whatever the size).

`allOrNone` is false at both levels: one bad record must not sink 999 good ones. Records that
fail with UNABLE_TO_LOCK_ROW (another transaction holds the row or its parent account) are
retried on their own, with the policy's backoff; other per-record failures are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import structlog

from connectors.base import Action, Decision, FieldUpdate, WriteResult, backoff_s
from connectors.salesforce import bulk
from connectors.salesforce.errors import record_retryable
from connectors.salesforce.fields import FieldInfo
from connectors.salesforce.session import Api
from schema.values import canonical, truncate

COLLECTION_SIZE = 200
COLLECTIONS_PER_COMPOSITE = 5
LOCK_ROUNDS = 4
log = structlog.get_logger("ecosync.salesforce")
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int", "long"})


# ---------------------------------------------------------------------------- values
def _as_datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        text = str(value).strip().replace("Z", "+00:00")
        moment = datetime.fromisoformat(text)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _as_number(value: object, info: FieldInfo) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{info.name}: {value!r} is not a number") from None
    # Salesforce rounds to the field's scale on save; doing it here keeps the diff stable.
    return number.quantize(Decimal(1).scaleb(-info.scale), rounding=ROUND_HALF_UP)


def wire_value(value: object, info: FieldInfo) -> object:
    """A desired Python value as the REST body carries it for this field's type."""
    if info.type == "boolean":
        return bool(value) if not isinstance(value, str) else value.lower() == "true"
    if value is None or value == "":
        return None
    if info.type in NUMBER_TYPES:
        number = _as_number(value, info)
        return int(number) if number == number.to_integral_value() else float(number)
    if info.type == "datetime":
        return _as_datetime(value).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if info.type == "date":
        return _as_datetime(value).date().isoformat()
    return truncate(str(value), info.length or None)


def stored_value(value: object, info: FieldInfo) -> str | None:
    """Canonical text of what Salesforce will store (and later return) for this value."""
    wire = wire_value(value, info)
    if wire is None:
        return None
    if info.type in NUMBER_TYPES:
        return canonical(_as_number(wire, info))
    if info.type == "datetime":
        return canonical(_as_datetime(wire))
    return canonical(wire)


# ---------------------------------------------------------------------------- write
class Writer:
    def __init__(self, api: Api, sobject: str, owned: Mapping[str, FieldInfo], *,
                 bulk_threshold: int, sleep: Callable[[float], None],
                 bulk_timeout_s: float) -> None:
        self.api = api
        self.sobject = sobject
        self.owned = owned
        self.bulk_threshold = bulk_threshold
        self.sleep = sleep
        self.bulk_timeout_s = bulk_timeout_s

    def body(self, update: FieldUpdate) -> dict[str, object]:
        out: dict[str, object] = {}
        for logical, value in update.values.items():
            info = self.owned.get(logical)
            if info is None:
                raise ValueError(f"{logical!r} is not a field ecosync owns on {self.sobject}")
            out[info.name] = wire_value(value, info)
        return out

    def write(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        results: dict[str, WriteResult] = {}
        merged: dict[str, dict[str, object]] = {}
        for update in updates:
            try:
                body = self.body(update)
            except ValueError as exc:
                results[update.external_id] = WriteResult(
                    update.external_id, False, "INVALID_VALUE", str(exc))
                continue
            # One record twice in a batch is refused by Salesforce; the later values win.
            merged.setdefault(update.external_id, {}).update(body)
        pending = {i: b for i, b in merged.items() if b and i not in results}
        for record_id in merged:
            if not merged[record_id] and record_id not in results:
                results[record_id] = WriteResult(record_id, True)  # nothing to write
        if len(pending) > self.bulk_threshold:
            results.update(self._bulk(pending))
        else:
            results.update(self._collections(pending))
        return [results[u.external_id] for u in updates]

    def _bulk(self, pending: dict[str, dict[str, object]]) -> dict[str, WriteResult]:
        rows = bulk.update(self.api, self.sobject, list(pending.items()), sleep=self.sleep,
                           timeout_s=self.bulk_timeout_s)
        out = {i: WriteResult(i, r.ok, r.code, r.message,
                              retryable=record_retryable(r.code) or r.code == "BULK_JOB_FAILED")
               for i, r in rows.items()}
        # Locked rows get the small-batch treatment (with its own lock retries).
        locked = {i: pending[i] for i, r in rows.items() if not r.ok
                  and (record_retryable(r.code) or r.code == "BULK_UNPROCESSED")}
        if locked:
            out.update(self._collections(locked))
        return out

    def _collections(self, pending: dict[str, dict[str, object]]) -> dict[str, WriteResult]:
        out: dict[str, WriteResult] = {}
        todo = pending
        for round_no in range(1, LOCK_ROUNDS + 2):
            retry: dict[str, dict[str, object]] = {}
            codes: set[str] = set()
            ids = list(todo)
            step = COLLECTION_SIZE * COLLECTIONS_PER_COMPOSITE
            for start in range(0, len(ids), step):
                chunk = ids[start:start + step]
                for record_id, result in self._composite(chunk, todo).items():
                    if not result.ok and result.retryable and round_no <= LOCK_ROUNDS:
                        retry[record_id] = todo[record_id]
                        codes.add(str(result.error_code))
                    else:
                        out[record_id] = result
            if not retry:
                break
            wait = backoff_s(Decision(Action.RETRY, "UNABLE_TO_LOCK_ROW"), round_no)
            log.warning("salesforce.write.retry", sobject=self.sobject, records=len(retry),
                        codes=sorted(codes),
                        round=round_no, wait_s=round(wait, 2))
            self.sleep(wait)
            todo = retry
        return out

    def _composite(self, ids: list[str], bodies: Mapping[str, dict[str, object]]
                   ) -> dict[str, WriteResult]:
        version = self.api.config.api_version
        groups = [ids[i:i + COLLECTION_SIZE] for i in range(0, len(ids), COLLECTION_SIZE)]
        request = {"allOrNone": False, "compositeRequest": [
            {"method": "PATCH", "url": f"/services/data/v{version}/composite/sobjects",
             "referenceId": f"chunk{n}",
             "body": {"allOrNone": False, "records": [
                 {"attributes": {"type": self.sobject}, "id": i, **bodies[i]} for i in group]}}
            for n, group in enumerate(groups)
        ]}
        response: Any = self.api.call(
            lambda sf: sf.restful("composite", method="POST", json=request))
        out: dict[str, WriteResult] = {}
        for group, sub in zip(groups, response["compositeResponse"], strict=True):
            status, payload = int(sub.get("httpStatusCode", 500)), sub.get("body")
            if status >= 300 or not isinstance(payload, list):
                code, message = _first_error(payload, "errorCode")
                for i in group:
                    out[i] = WriteResult(i, False, code, message,
                                         retryable=status >= 500 or record_retryable(code))
                continue
            # SaveResults come in request order; failed ones carry no id (match by position).
            for i, result in zip(group, payload, strict=False):
                if result.get("success"):
                    out[i] = WriteResult(i, True)
                else:
                    code, message = _first_error(result.get("errors"), "statusCode")
                    out[i] = WriteResult(i, False, code, message,
                                         retryable=record_retryable(code))
        return out


def _first_error(payload: Any, key: str) -> tuple[str, str]:
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        first = payload[0]
        return (str(first.get(key) or first.get("errorCode") or "UNKNOWN"),
                str(first.get("message", "")))
    return "UNKNOWN", str(payload)[:500]

