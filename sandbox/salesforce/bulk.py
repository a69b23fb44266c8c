"""Bulk API 2.0: query jobs (CSV results paged with Sforce-Locator) and ingest jobs (update,
insert, delete) with successful / failed / unprocessed result files.

Jobs move through the documented states. A query job is evaluated when it is created (its rows are
a snapshot) and reports InProgress for `polls_until_complete` polls before JobComplete. An ingest
job is processed when it is closed (state UploadComplete). Bulk CSV conventions that differ from
REST are kept: datetimes end in `Z`, an empty cell leaves a field unchanged, `#N/A` clears it.
"""

from __future__ import annotations

import base64
import csv
import io
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.common import Request, Response, json_response
from sandbox.salesforce import evaluate, soql, writes
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.store import Record, SaveError

if TYPE_CHECKING:
    from sandbox.salesforce import SalesforceSandbox

CSV_TYPE = "text/csv"
_TERMINAL = ("JobComplete", "Failed", "Aborted")


@dataclass(slots=True)
class Job:
    id: str
    kind: str  # "query" or "ingest"
    operation: str
    object: str
    created: str
    version: str
    state: str
    polls_left: int = 0
    error_message: str | None = None
    query: soql.Query | None = None
    rows: list[Record] = field(default_factory=list)
    upload: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": "0055g00000ECOSYAA2",
            "createdDate": self.created,
            "systemModstamp": self.created,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }
        if self.kind == "ingest":
            out["contentUrl"] = f"services/data/v{self.version}/jobs/ingest/{self.id}/batches"
            out["jobType"] = "V2Ingest"
            out["numberRecordsProcessed"] = len(self.successes) + len(self.failures)
            out["numberRecordsFailed"] = len(self.failures)
        else:
            out["jobType"] = "V2Query"
            out["numberRecordsProcessed"] = len(self.rows) if self.state == "JobComplete" else 0
        out["retries"] = 0
        out["totalProcessingTime"] = 0
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out


class Bulk:
    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sb = sandbox
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.polls_until_complete = 1
        self.fail_next_query: str | None = None
        self.query_jobs_created = 0
        self.batches_used = 0

    def handle(self, req: Request, version: str, parts: list[str]) -> tuple[str, Response]:
        if not parts or parts[0] not in ("query", "ingest"):
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        kind = parts[0]
        key = f"bulk2.{kind}"
        if len(parts) == 1:
            if req.method == "POST":
                return key + ".create", self.create(req, version, kind)
            return key + ".list", json_response(200, {
                "done": True, "nextRecordsUrl": None,
                "records": [j.info() for j in self.jobs.values() if j.kind == kind],
            })
        job = self.jobs.get(parts[1])
        if job is None or job.kind != kind:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if job.version != version:
            raise ApiError(409, "INVALIDJOB", "Job was created with a different API version")
        sub = parts[2].lower() if len(parts) > 2 else ""
        if sub == "" and req.method == "GET":
            return key + ".get", json_response(200, self.poll(job))
        if sub == "" and req.method == "PATCH":
            return key + ".state", json_response(200, self.set_state(job, req.json()))
        if sub == "" and req.method == "DELETE":
            self.jobs.pop(job.id, None)
            return key + ".delete", Response(204)
        if kind == "query" and sub == "results" and req.method == "GET":
            return key + ".results", self.results(job, req)
        if kind == "ingest" and sub == "batches" and req.method == "PUT":
            return key + ".upload", self.upload(job, req)
        if kind == "ingest" and req.method == "GET" and sub in (
            "successfulresults", "failedresults", "unprocessedrecords",
        ):
            return key + "." + sub, self.ingest_results(job, sub)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    # ------------------------------------------------------------------ jobs
    def create(self, req: Request, version: str, kind: str) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Request body must be a JSON object")
        op = str(body.get("operation", ""))
        job_id = "7505g" + secrets.token_hex(6).upper()[:10] + "AAA"
        created = self.sb.store.now_str()
        if kind == "query":
            if op not in ("query", "queryAll"):
                raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {op}")
            q = soql.parse(self.sb.store, str(body.get("query", "")))
            if q.count or q.offset:
                what = "COUNT()" if q.count else "OFFSET"
                raise ApiError(400, "API_ERROR", f"{what} is not supported by Bulk API 2.0 query")
            job = Job(job_id, kind, op, q.object, created, version, "UploadComplete",
                      polls_left=self.polls_until_complete, query=q)
            job.rows = evaluate.execute(self.sb.store, q, include_deleted=op == "queryAll")
            with self.lock:
                self.query_jobs_created += 1
                if self.fail_next_query is not None:
                    job.error_message, self.fail_next_query = self.fail_next_query, None
        else:
            if op not in ("update", "insert", "delete"):
                raise ApiError(400, "INVALIDJOB", f"InvalidJob : Unsupported operation: {op}")
            obj = self.sb.store.object_name(str(body.get("object", "")))
            if obj is None:
                raise ApiError(400, "INVALIDJOB",
                               f"InvalidJob : Unable to find object: {body.get('object')}")
            job = Job(job_id, kind, op, obj, created, version, "Open")
        with self.lock:
            self.jobs[job_id] = job
        return json_response(200, job.info())

    def poll(self, job: Job) -> dict[str, Any]:
        with self.lock:
            if job.state in ("UploadComplete", "InProgress"):
                if job.polls_left > 0:
                    job.polls_left -= 1
                    job.state = "InProgress"
                elif job.error_message:
                    job.state = "Failed"
                else:
                    job.state = "JobComplete"
            return job.info()

    def set_state(self, job: Job, body: Any) -> dict[str, Any]:
        wanted = body.get("state") if isinstance(body, dict) else None
        if wanted == "Aborted":
            if job.state in _TERMINAL:
                raise ApiError(400, "INVALIDJOB", f"InvalidJob : Job is already {job.state}")
            job.state = "Aborted"
            if job.kind == "ingest":
                job.unprocessed = [r for chunk in job.upload for r in _rows(chunk)[1:]]
            return job.info()
        if wanted == "UploadComplete" and job.kind == "ingest":
            if job.state != "Open":
                raise ApiError(400, "INVALIDJOB", f"InvalidJob : Job is in state {job.state}")
            job.state = "UploadComplete"
            job.polls_left = self.polls_until_complete
            self._process(job)
            info = job.info()
            info["state"] = "UploadComplete"
            return info
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid state: {wanted}")

    # ------------------------------------------------------------------ query results
    def results(self, job: Job, req: Request) -> Response:
        if job.state != "JobComplete" or job.query is None:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Job is in state {job.state}")
        offset = _decode_locator(req.arg("locator"))
        raw_max = req.arg("maxRecords")
        page = int(raw_max) if raw_max and raw_max.isdigit() and int(raw_max) > 0 else 50_000
        rows = job.rows[offset : offset + page]
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(job.query.fields)
        getters = [soql.getter(self.sb.store, job.object, p) for p in job.query.fields]
        for rec in rows:
            writer.writerow([_csv_value(g(rec)) for g in getters])
        end = offset + len(rows)
        locator = _encode_locator(end) if end < len(job.rows) else "null"
        return Response(200, out.getvalue().encode(), {
            "Content-Type": CSV_TYPE,
            "Sforce-Locator": locator,
            "Sforce-NumberOfRecords": str(len(rows)),
        })

    # ------------------------------------------------------------------ ingest
    def upload(self, job: Job, req: Request) -> Response:
        if job.state != "Open":
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Job is in state {job.state}")
        if not req.headers.get("content-type", "").startswith(CSV_TYPE):
            raise ApiError(400, "INVALIDJOB", "InvalidJob : Content-Type must be text/csv")
        job.upload.append(req.body.decode("utf-8-sig"))
        with self.lock:
            self.batches_used += 1
        return Response(201)

    def _process(self, job: Job) -> None:
        if not job.upload:
            job.error_message = "InvalidBatch : No data was uploaded for this job"
            return
        rows = [r for chunk in job.upload for r in _rows(chunk)[1:]]
        header = _rows(job.upload[0])[0]
        job.columns = header
        store = self.sb.store
        unknown = [c for c in header if store.field(job.object, c) is None]
        if unknown or (job.operation != "insert" and "id" not in [c.lower() for c in header]):
            missing = unknown[0] if unknown else "Id"
            job.error_message = f"InvalidBatch : Field name not found : {missing}"
            job.unprocessed = rows
            return
        names = [store.field(job.object, c).name for c in header]  # type: ignore[union-attr]
        if len(rows) > 1000:
            store.invalidate_stamps(job.object)
        for row in rows:
            values = dict(zip(names, row, strict=False))
            rid = values.pop("Id", "") if job.operation != "insert" else ""
            try:
                rid = self._ingest_row(job, rid, values)
                job.successes.append([rid, "true" if job.operation == "insert" else "false", *row])
            except SaveError as exc:
                fields = ",".join(exc.fields) if exc.fields else "--"
                job.failures.append([rid, f"{exc.code}:{exc.message}:{fields}", *row])

    def _ingest_row(self, job: Job, rid: str, values: dict[str, str]) -> str:
        store = self.sb.store
        # Bulk ignores empty cells; '#N/A' is the way to clear a field.
        clean: dict[str, Any] = {
            k: (None if v == "#N/A" else v) for k, v in values.items() if v != ""
        }
        with store.lock:
            if job.operation == "insert":
                rid = store.load(job.object, [{}])[0]
                try:
                    writes.save(store, job.object, rid, clean, via="bulk", locked=self._locked)
                except SaveError:
                    store.discard(job.object, rid)  # a failed insert leaves nothing behind
                    raise
                return rid
            if job.operation == "delete":
                rid = writes.normalize_id(job.object, rid)
                rec = store.tables[job.object].get(rid)
                if rec is None:
                    raise SaveError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                if rec.get("IsDeleted"):
                    raise SaveError("ENTITY_IS_DELETED", "entity is deleted")
                store.soft_delete(job.object, rid, via="bulk")
                return rid
            return writes.save(store, job.object, rid, clean, via="bulk", locked=self._locked)

    def _locked(self) -> bool:
        return self.sb.faults.fire("lock")

    def ingest_results(self, job: Job, sub: str) -> Response:
        if sub == "unprocessedrecords":
            header, rows = job.columns or (_rows(job.upload[0])[0] if job.upload else []), \
                job.unprocessed
        elif sub == "successfulresults":
            header, rows = ["sf__Id", "sf__Created", *job.columns], job.successes
        else:
            header, rows = ["sf__Id", "sf__Error", *job.columns], job.failures
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return Response(200, out.getvalue().encode(), {"Content-Type": CSV_TYPE})


def _rows(text: str) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(text)) if r]


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and len(value) == 28 and value.endswith("+0000"):
        return value[:-5] + "Z"  # Bulk CSV datetimes are 2024-01-01T00:00:00.000Z
    return str(value)


def _encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str | None) -> int:
    if not locator or locator == "null":
        return 0
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except ValueError as exc:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid locator: {locator}") from exc
