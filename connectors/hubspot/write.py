"""Writing owned properties through ``batch/update``, 100 inputs a request.

A batch answers 200 (all written), 207 (some ids failed: missing or archived records, listed
under ``errors``; the rest were written) or 400 (one invalid value fails the whole batch and
nothing is written). A 400 batch is split in halves until the offending records stand alone,
so one bad value costs about log2(100) extra calls and the rest still land. A property that
does not exist or is read-only fails every record alike: that is MissingFields, not a record
error, and stops the write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from connectors.base import (
    BudgetExhausted,
    FieldUpdate,
    MissingFields,
    RateLimited,
    TransientError,
    WriteResult,
)
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.errors import HubSpotApiError
from connectors.hubspot.properties import StreamProperties, stream_properties, wire_value
from schema.records import Stream

log = structlog.get_logger("ecosync.connectors.hubspot")
BATCH_LIMIT = 100
FIELD_PROBLEMS = {"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"}


@dataclass(slots=True)
class _Input:
    external_id: str
    properties: dict[str, str]
    indices: list[int] = field(default_factory=list)


def validation_problems(body: Mapping[str, Any]) -> list[dict[str, str]]:
    """(code, property, message) of a VALIDATION_ERROR, from `errors` or the message JSON."""
    problems: list[dict[str, str]] = []
    for err in body.get("errors") or ():
        names = ((err.get("context") or {}).get("propertyName")) or [""]
        problems.append({"code": str(err.get("code") or ""), "name": str(names[0]),
                         "message": str(err.get("message") or "")})
    message = str(body.get("message") or "")
    if not problems and "[" in message:
        # HubSpot's classic form: "Property values were not valid: [{...,"error":...}]"
        try:
            items = json.loads(message[message.index("["):])
        except ValueError:
            items = []
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict):
                problems.append({"code": str(item.get("error") or ""),
                                 "name": str(item.get("name") or ""),
                                 "message": str(item.get("message") or "")})
    return problems


class Writer:
    def __init__(self, client: HubSpotClient, config: HubSpotConfig) -> None:
        self.client = client
        self.config = config

    def write(self, stream: Stream, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        names = stream_properties(self.config, stream)
        results: list[WriteResult | None] = [None] * len(updates)
        inputs: dict[str, _Input] = {}
        for index, update in enumerate(updates):
            prepared = self._prepare(names, update)
            if isinstance(prepared, WriteResult):
                results[index] = prepared
                continue
            # HubSpot rejects a batch naming one id twice: merge them (later values win).
            entry = inputs.setdefault(update.external_id, _Input(update.external_id, {}))
            entry.properties.update(prepared)
            entry.indices.append(index)
        pending = [i for i in inputs.values() if i.properties]
        for entry in inputs.values():
            if not entry.properties:  # nothing to send: trivially done
                for index in entry.indices:
                    results[index] = WriteResult(entry.external_id, True)
        for start in range(0, len(pending), BATCH_LIMIT):
            batch = pending[start : start + BATCH_LIMIT]
            try:
                outcome = self._send(names, batch)
            except (RateLimited, TransientError, BudgetExhausted) as exc:
                if start == 0:
                    raise  # nothing written: the run stops as for any other call
                # Earlier batches did land: report them, and the rest as retryable failures
                # for the next tick, instead of losing what was written.
                log.warning("hubspot.write.interrupted", error=str(exc),
                            unsent=len(pending) - start)
                for entry in pending[start:]:
                    for index in entry.indices:
                        results[index] = WriteResult(entry.external_id, False,
                                                     type(exc).__name__, str(exc),
                                                     retryable=True)
                break
            for entry in batch:
                for index in entry.indices:
                    results[index] = outcome[entry.external_id]
        return [r if r is not None else WriteResult(u.external_id, False, "NOT_SENT")
                for r, u in zip(results, updates, strict=True)]

    def _prepare(self, names: StreamProperties,
                 update: FieldUpdate) -> dict[str, str] | WriteResult:
        if update.stream is not names.stream:
            return WriteResult(update.external_id, False, "WRONG_STREAM",
                               f"update for {update.stream} sent to {names.stream}")
        out: dict[str, str] = {}
        for logical, value in update.values.items():
            prop = names.by_logical(logical)
            if prop is None:
                # Never write a property ecosync does not own, whatever the caller asks.
                return WriteResult(update.external_id, False, "NOT_OWNED",
                                   f"{logical!r} is not an ecosync-owned {names.stream} field")
            try:
                out[prop.name] = wire_value(prop.kind, value)
            except (ValueError, TypeError) as exc:
                return WriteResult(update.external_id, False, "INVALID_VALUE",
                                   f"{logical}: {exc}")
        return out

    def _send(self, names: StreamProperties, batch: list[_Input]) -> dict[str, WriteResult]:
        obj = names.object_type
        body = {"inputs": [{"id": e.external_id, "properties": e.properties} for e in batch]}
        try:
            resp = self.client.call(f"POST /crm/v3/objects/{obj}/batch/update",
                                    f"crm.{obj}.batch_api", "update", body)
        except HubSpotApiError as exc:
            if exc.status not in (400, 404, 422):
                raise
            problems = validation_problems(exc.body)
            missing = [p for p in problems if p["code"] in FIELD_PROBLEMS]
            if missing:
                raise MissingFields(
                    f"{self.config.name}: HubSpot {obj} property {missing[0]['name']!r}: "
                    f"{missing[0]['message']}; run `ecosync fields ensure --source hubspot` "
                    "(a read-only property must be made writable by a HubSpot admin)"
                ) from exc
            if len(batch) > 1:
                half = len(batch) // 2
                return {**self._send(names, batch[:half]), **self._send(names, batch[half:])}
            code = problems[0]["code"] if problems else (exc.category or str(exc.status))
            message = problems[0]["message"] if problems else str(exc)
            return {batch[0].external_id: WriteResult(batch[0].external_id, False, code,
                                                      message)}
        written = {str(r.get("id")) for r in resp.body.get("results") or ()}
        failed: dict[str, tuple[str, str]] = {}
        errors = list(resp.body.get("errors") or ())
        for err in errors:
            code = str(err.get("category") or err.get("subCategory") or "ERROR")
            for rid in (err.get("context") or {}).get("ids") or ():
                failed[str(rid)] = (code, str(err.get("message") or ""))
        out: dict[str, WriteResult] = {}
        for entry in batch:
            rid = entry.external_id
            if rid in written or (resp.status == 200 and rid not in failed):
                out[rid] = WriteResult(rid, True)
                continue
            code, message = failed.get(rid) or (
                (str(errors[0].get("category") or "ERROR"), str(errors[0].get("message") or ""))
                if errors else ("NOT_WRITTEN", "HubSpot did not return this record"))
            out[rid] = WriteResult(rid, False, code, message)
        return out
