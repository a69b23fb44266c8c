"""Routing and the REST resources: versions, sobjects, describe, query/queryAll, limits.

Every request under /services/data/vXX.X/ passes the same gate, in the platform's order:
faults that happen before Salesforce sees the request (drop, 503), the session check (401), the
daily allocation or the concurrent long-running request limit (403 REQUEST_LIMIT_EXCEEDED,
told apart only by the message), then the handler. Only requests that pass the gate
count as API calls; `Sforce-Limit-Info` is sent on every response under /services/data/vXX.X/.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.common import Request, Response, echoed_request, json_response
from sandbox.salesforce import evaluate, metadata, soql, writes
from sandbox.salesforce.composite import run_composite
from sandbox.salesforce.errors import INVALID_SESSION, ApiError, not_found
from sandbox.salesforce.schema import normalize_datetime
from sandbox.salesforce.store import Record

if TYPE_CHECKING:
    from sandbox.salesforce import SalesforceSandbox

SUPPORTED_VERSIONS = [f"{v}.0" for v in range(52, 63)]
_DATA = re.compile(r"^/services/data/v(\d+\.\d)(?:/(.*))?$")
_SOAP = re.compile(r"^/services/Soap/u/(\d+\.\d)/?.*$")
_METADATA = re.compile(r"^/services/Soap/m/(\d+\.\d)/?.*$")
DEFAULT_BATCH = 2000
# Salesforce keeps at most 10 open query cursors per user and releases the oldest when an
# 11th opens; resuming a released one fails with INVALID_QUERY_LOCATOR.
MAX_CURSORS = 10
# REQUEST_LIMIT_EXCEEDED bodies (crm-api.md S8, S9): the rolling 24 h allocation, and the
# limit of 25 concurrent requests running 20 s or more (5 in Developer Edition) per org.
DAILY_LIMIT = "TotalRequests Limit exceeded."
CONCURRENT_LIMIT = "ConcurrentPerOrgLongTxn Limit exceeded."


@dataclass(slots=True)
class Cursor:
    query: soql.Query
    rows: list[Record]
    batch: int
    version: str


class SalesforceApp:
    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sb = sandbox
        self.store = sandbox.store
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.cursor_lock = threading.Lock()
        self.api_used = 0
        self.usage_lock = threading.Lock()
        # The last answer per paged resource, for the `repeat_page` fault.
        self.last_pages: dict[str, tuple[str, Response]] = {}

    # ------------------------------------------------------------------ entry point
    def __call__(self, req: Request) -> Response:
        path = req.path
        echo = self.sb.faults.echo_status()
        if echo is not None:
            self.sb.traffic.count(f"echo {echo}")
            if path == "/services/oauth2/token":
                return json_response(echo, {"error": "invalid_request",
                                             "error_description": echoed_request(req)})
            return json_response(echo, [{
                "message": echoed_request(req),
                "errorCode": {500: "UNKNOWN_EXCEPTION", 400: "INVALID_FIELD",
                              401: "INVALID_SESSION_ID"}[echo]}])
        if path == "/services/oauth2/token" and req.method == "POST":
            return self.sb.tokens.token_endpoint(req)
        m = _SOAP.match(path)
        if m and req.method == "POST":
            return self.sb.tokens.soap_login(req, m.group(1))
        if _METADATA.match(path) and req.method == "POST":
            return metadata.handle(self.sb, req)
        if path.rstrip("/") == "/services/data":
            return json_response(200, [
                {"label": "Winter '24" if v == "59.0" else f"API {v}",
                 "url": f"/services/data/v{v}", "version": v}
                for v in SUPPORTED_VERSIONS
            ])
        m = _DATA.match(path)
        if not m:
            return ApiError(404, "NOT_FOUND", "The requested resource does not exist").response()
        version, rest = m.group(1), (m.group(2) or "")
        faults = self.sb.faults
        if faults.fire("drop"):
            return Response(0, drop=True)
        if faults.fire("unavailable"):
            return self._limited(json_response(503, [{
                "errorCode": "SERVER_UNAVAILABLE",
                "message": "Server temporarily unavailable, please try again later",
            }]))
        if not self.sb.tokens.check(req.headers.get("authorization")):
            return json_response(401, INVALID_SESSION)
        if version not in SUPPORTED_VERSIONS:
            return self._limited(not_found().response())
        with self.usage_lock:
            over = self.api_used >= self.sb.daily_limit
            refused: str | None = None
            if over or faults.fire("rate_limit"):
                refused = DAILY_LIMIT
            elif faults.fire("concurrent_limit"):
                refused = CONCURRENT_LIMIT
            else:
                self.api_used += 1
        if refused:
            # One error code for several limits; only the message tells them apart.
            return self._limited(json_response(403, [{
                "message": refused, "errorCode": "REQUEST_LIMIT_EXCEEDED",
            }]))
        family, continuation = _paging(req, rest)
        replay = self.last_pages.get(family) if continuation else None
        if replay is not None and faults.fire("repeat_page"):
            # A stuck cursor: the next page is the previous answer again, verbatim.
            key, response = replay[0], Response(replay[1].status, replay[1].body,
                                                dict(replay[1].headers))
        else:
            key, response = self.dispatch(req, version, rest)
            if family and response.status == 200:
                self.last_pages[family] = (key, response)
        self.sb.traffic.count(key)
        if _is_write_call(req, rest):
            self.sb.write_calls.count(key)
        return self._limited(response)

    def count_extra_call(self, key: str) -> bool:
        """Count a call made outside /services/data (SOAP metadata); False if over the limit."""
        with self.usage_lock:
            if self.api_used >= self.sb.daily_limit:
                return False
            self.api_used += 1
        self.sb.traffic.count(key)
        return True

    def _limited(self, response: Response) -> Response:
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_used}/{self.sb.daily_limit}"
        return response

    # ------------------------------------------------------------------ dispatch
    def dispatch(self, req: Request, version: str, rest: str) -> tuple[str, Response]:
        """Route one API request; returns (traffic key, response). Used by composite too."""
        parts = [p for p in rest.split("/") if p]
        head = parts[0] if parts else ""
        key = head or "resources"
        try:
            if head == "":
                return key, self.resources(version)
            if head in ("query", "queryAll"):
                if len(parts) == 1:
                    return head, self.query(req, version, include_deleted=head == "queryAll")
                return "queryMore", self.query_more(parts[1])
            if head == "sobjects":
                return self.sobjects(req, version, parts[1:])
            if head == "composite":
                if parts[1:] == ["sobjects"] and req.method == "PATCH":
                    results = writes.patch_collection(
                        self.store, req.json(), via="collections", locked=self._locked
                    )
                    return "composite/sobjects", json_response(200, results)
                if len(parts) == 1 and req.method == "POST":
                    return "composite", run_composite(self, req, version)
                raise _method_not_allowed(req.method, "POST")
            if head == "limits":
                return key, json_response(200, self.limits())
            if head == "jobs":
                return self.sb.bulk.handle(req, version, parts[1:])
            raise not_found()
        except ApiError as exc:
            return key, exc.response()
        except soql.SoqlError as exc:
            return key, ApiError(400, exc.code, exc.message).response()
        except json.JSONDecodeError as exc:
            error = ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}")
            return key, error.response()

    def _locked(self) -> bool:
        return self.sb.faults.fire("lock")

    def resources(self, version: str) -> Response:
        base = f"/services/data/v{version}"
        names = ["sobjects", "query", "queryAll", "composite", "limits", "jobs", "tooling"]
        return json_response(200, {n: f"{base}/{n}" for n in names})

    # ------------------------------------------------------------------ query
    def query(self, req: Request, version: str, *, include_deleted: bool) -> Response:
        text = req.arg("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        q = soql.parse(self.store, text)
        rows = evaluate.execute(self.store, q, include_deleted)
        if q.count:
            return json_response(200, {"totalSize": len(rows), "done": True, "records": []})
        batch = _batch_size(req.headers.get("sforce-query-options"))
        if q.long_text_fields >= 2:
            batch = min(batch, 200)  # documented cap when 2+ long text fields are selected
        cursor = Cursor(q, rows, batch, version)
        return json_response(200, self._page(cursor, None, 0))

    def query_more(self, locator_offset: str) -> Response:
        locator, _, offset = locator_offset.rpartition("-")
        with self.cursor_lock:
            cursor = self.cursors.get(locator)
        if cursor is None or not offset.isdigit() or int(offset) > len(cursor.rows):
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return json_response(200, self._page(cursor, locator, int(offset)))

    def _page(self, cursor: Cursor, locator: str | None, offset: int) -> dict[str, Any]:
        end = min(offset + cursor.batch, len(cursor.rows))
        q, version = cursor.query, cursor.version
        records = [evaluate.project(self.store, q, r, version) for r in cursor.rows[offset:end]]
        body: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if end < len(cursor.rows):
            if locator is None:
                locator = "01g5g" + secrets.token_hex(7).upper()[:13]
                with self.cursor_lock:
                    self.cursors[locator] = cursor
                    while len(self.cursors) > MAX_CURSORS:
                        self.cursors.popitem(last=False)  # the oldest cursor expires
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        body["records"] = records
        return body

    # ------------------------------------------------------------------ sobjects
    def sobjects(self, req: Request, version: str, parts: list[str]) -> tuple[str, Response]:
        store = self.store
        if not parts:
            return "describeGlobal", json_response(200, self.describe_global(version))
        obj = store.object_name(parts[0])
        if obj is None:
            raise not_found()
        if len(parts) == 1 and req.method == "POST":
            rid = writes.create_one(store, obj, req.json(), via="rest")
            return "sobject.create", json_response(201, {"id": rid, "success": True,
                                                         "errors": []})
        if len(parts) == 1:
            return "sobject", json_response(200, {
                "objectDescribe": _object_summary(obj, version, store.fields[obj]),
                "recentItems": [],
            })
        if parts[1] == "describe" and len(parts) == 2:
            return "describe", json_response(200, self.describe(obj, version))
        if parts[1] in ("deleted", "updated") and len(parts) == 2:
            return parts[1], json_response(200, self.changed(obj, parts[1], req))
        rid = parts[1]
        if req.method == "GET":
            rec = store.tables[obj].get(rid)
            if rec is None:
                raise not_found()
            if rec.get("IsDeleted"):
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
            wanted = req.arg("fields")
            names = [f.strip() for f in wanted.split(",")] if wanted else list(rec)
            out: dict[str, Any] = {"attributes": {
                "type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{rid}"}}
            for name in names:
                fdef = store.field(obj, name)
                if fdef is None:
                    raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on entity"
                                   f" '{obj}'.")
                out[fdef.name] = rec.get(fdef.name)
            return "sobject.get", json_response(200, out)
        if req.method == "PATCH":
            writes.patch_one(store, obj, rid, req.json(), via="rest", locked=self._locked)
            return "sobject.patch", Response(204)
        if req.method == "DELETE":
            writes.delete_one(store, obj, rid, via="rest")
            return "sobject.delete", Response(204)
        raise _method_not_allowed(req.method, "GET, PATCH, DELETE")

    def describe_global(self, version: str) -> dict[str, Any]:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [
                _object_summary(o, version, f) for o, f in sorted(self.store.fields.items())
            ],
        }

    def describe(self, obj: str, version: str) -> dict[str, Any]:
        fields = self.store.fields[obj]
        out = _object_summary(obj, version, fields)
        out.update({
            "fields": [f.describe() for f in fields.values()],
            "childRelationships": [],
            "recordTypeInfos": [],
            "supportedScopes": [{"label": "All", "name": "everything"}],
        })
        return out

    def changed(self, obj: str, kind: str, req: Request) -> dict[str, Any]:
        start = normalize_datetime(req.arg("start") or "")
        end = normalize_datetime(req.arg("end") or "")
        if start is None or end is None:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "start and end are required dates")
        rows = self.store.records(obj, include_deleted=True)
        if kind == "deleted":
            deleted = [
                {"id": r["Id"], "deletedDate": self.store.deleted_at.get(r["Id"], "")}
                for r in rows if r.get("IsDeleted")
            ]
            deleted = [d for d in deleted if start <= d["deletedDate"] < end]
            return {"deletedRecords": deleted, "earliestDateAvailable": start,
                    "latestDateCovered": end}
        ids = [r["Id"] for r in rows
               if not r.get("IsDeleted") and start <= str(r.get("SystemModstamp")) < end]
        return {"ids": ids, "latestDateCovered": end}

    # ------------------------------------------------------------------ limits
    def limits(self) -> dict[str, Any]:
        max_ = self.sb.daily_limit
        remaining = max(0, max_ - self.api_used)

        def pair(m: int, r: int) -> dict[str, int]:
            return {"Max": m, "Remaining": r}

        jobs_used = self.sb.bulk.query_jobs_created
        return {
            "ConcurrentAsyncGetReportInstances": pair(200, 200),
            "DailyApiRequests": pair(max_, remaining),
            "DailyAsyncApexExecutions": pair(250000, 250000),
            "DailyBulkApiBatches": pair(15000, 15000 - self.sb.bulk.batches_used),
            "DailyBulkV2QueryFileStorageMB": pair(976562, 976562),
            "DailyBulkV2QueryJobs": pair(10000, 10000 - jobs_used),
            "DataStorageMB": pair(1024, 1024),
            "HourlyTimeBasedWorkflow": pair(50, 50),
        }


def _batch_size(header: str | None) -> int:
    if not header:
        return DEFAULT_BATCH
    m = re.search(r"batchSize\s*=\s*(\d+)", header)
    if not m:
        return DEFAULT_BATCH
    return max(200, min(2000, int(m.group(1))))


def _method_not_allowed(method: str, allowed: str) -> ApiError:
    return ApiError(
        405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
    )


def _object_summary(obj: str, version: str, fields: dict[str, Any]) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{obj}"
    writable = obj in ("Account", "Opportunity")
    return {
        "name": obj,
        "label": obj,
        "labelPlural": obj + "s",
        "keyPrefix": {"Account": "001", "Opportunity": "006"}.get(obj),
        "custom": False,
        "queryable": True,
        "retrieveable": True,
        "searchable": writable,
        "createable": writable,
        "updateable": writable,
        "deletable": writable,
        "replicateable": writable,
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }


def _paging(req: Request, rest: str) -> tuple[str, bool]:
    """(paged resource, whether this request asks for a next page) for `repeat_page`:
    query pages (queryMore continues), Composite (split pages continue a keyset walk) and Bulk
    query results (a `locator` continues)."""
    parts = [p for p in rest.split("/") if p]
    head = parts[0] if parts else ""
    if head in ("query", "queryAll"):
        return "query", len(parts) > 1
    if head == "composite" and len(parts) == 1 and _query_composite(req):
        return "composite", True
    if head == "jobs" and parts[-1:] == ["results"]:
        return "bulk-results", bool(req.arg("locator"))
    return "", False


def _query_composite(req: Request) -> bool:
    try:
        body = req.json()
    except ValueError:
        return False
    subs = body.get("compositeRequest") if isinstance(body, dict) else None
    return isinstance(subs, list) and bool(subs) and all(
        isinstance(s, dict) and s.get("method") == "GET" and "/query" in str(s.get("url"))
        for s in subs)


def _is_write_call(req: Request, rest: str) -> bool:
    """Whether an API call carried writes (tests and benchmarks count write calls apart;
    a Composite call counts once whether it reads or writes)."""
    if rest.startswith("jobs/ingest"):
        return True
    if req.method in ("PATCH", "DELETE") or (req.method == "POST" and rest.startswith("sobjects")):
        return True
    if req.method == "POST" and rest.rstrip("/") == "composite":
        body = req.json() or {}
        subs = body.get("compositeRequest", []) if isinstance(body, dict) else []
        return any(isinstance(sub, dict) and str(sub.get("method", "GET")).upper() != "GET"
                   for sub in subs)
    return False
