"""Bulk API 2.0: queryAll jobs streamed as CSV pages, and update (ingest) jobs.

Done by hand rather than through `sf.bulk2`: that handler captures the session id when it is
created and never refreshes it, sleeps 5 s before its first poll, and would sit outside the
connector's retry policy and budget guard (crm-api.md §S7). Every call here goes through
Api.call / Api.raw like every REST call.

Bulk quirks that matter:
- no ORDER BY (it disables PK chunking and times out), so a query job's rows are unordered:
  only the *last* page of a job may carry a watermark, the highest (SystemModstamp, Id) seen;
- CSV only: every value is text, `""` is null on the way out and *unchanged* on the way in;
  clearing a field takes the literal `#N/A`;
- result pages are fetched with the same API version as the job (else 409), and paged with
  the `Sforce-Locator` header, whose last value is the string `null`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from connectors.base import Page, PageGuard, Watermark
from connectors.salesforce import normalize
from connectors.salesforce.errors import SalesforceApiError
from connectors.salesforce.session import Api
from schema.records import Stream

log = structlog.get_logger("ecosync.salesforce")
RESULT_PAGE = 50_000  # rows per results call: few calls; the CSV text of one page is ~15 MB
PAGE_ROWS = 2_000  # rows per yielded Page (one warehouse transaction)
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # Bulk 2.0 takes 150 MB per job; stay well under
POLL_FIRST_S = 1.0
POLL_MAX_S = 10.0
CLEAR = "#N/A"


class BulkUnavailable(Exception):
    """A job failed, was aborted or timed out; the caller falls back to REST."""


@dataclass(frozen=True, slots=True)
class RowResult:
    ok: bool
    code: str | None = None
    message: str | None = None


def _wait(api: Api, kind: str, job_id: str, sleep: Callable[[float], None],
          timeout_s: float) -> dict[str, Any]:
    """Poll a job until it is terminal; time is counted in requested sleeps, not wall clock,
    so the timeout holds with any sleep function."""
    waited, delay = 0.0, POLL_FIRST_S
    while True:
        info: Any = api.call(lambda sf: sf.restful(f"jobs/{kind}/{job_id}"))
        state = str(info.get("state"))
        if state == "JobComplete":
            return dict(info)
        if state in ("Failed", "Aborted"):
            raise BulkUnavailable(f"Bulk 2.0 {kind} job {job_id} {state}: "
                                  f"{info.get('errorMessage') or 'no message'}")
        if waited >= timeout_s:
            _abort(api, kind, job_id)
            raise BulkUnavailable(f"Bulk 2.0 {kind} job {job_id} still {state} after "
                                  f"{timeout_s:g} s; aborted")
        sleep(delay)
        waited += delay
        delay = min(POLL_MAX_S, delay * 2)


def _abort(api: Api, kind: str, job_id: str) -> None:
    try:
        api.call(lambda sf: sf.restful(f"jobs/{kind}/{job_id}", method="PATCH",
                                       json={"state": "Aborted"}))
    except Exception as exc:  # best effort: the job expires on its own after 7 days
        log.warning("could not abort bulk job", job=job_id, error=str(exc))


def query_pages(
    api: Api, stream: Stream, soql_text: str, until: datetime, *, deleted: bool,
    to_record: normalize.Normalizer, sleep: Callable[[float], None], timeout_s: float,
) -> Iterator[Page]:
    """Run a (queryAll) job and yield its rows as Pages; only the final Page has a watermark."""
    body = {"operation": "queryAll" if deleted else "query", "query": soql_text,
            "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"}
    job: Any = api.call(lambda sf: sf.restful("jobs/query", method="POST", json=body))
    job_id = str(job["id"])
    _wait(api, "query", job_id, sleep, timeout_s)
    locator: str | None = None
    best: tuple[datetime, str] | None = None
    held: list[Any] = []
    guard = PageGuard(f"Salesforce Bulk 2.0 job {job_id} results")
    while True:
        params: dict[str, Any] = {"maxRecords": RESULT_PAGE}
        if locator:
            params["locator"] = locator
        try:
            response = api.raw("GET", f"jobs/query/{job_id}/results", params=params,
                               headers={"Accept": "text/csv"})
        except SalesforceApiError as exc:  # results expired (404), version mismatch (409)
            raise BulkUnavailable(f"Bulk 2.0 results of job {job_id}: {exc}") from exc
        # Decode explicitly: text/csv without a charset would be read as ISO-8859-1.
        text = response.content.decode("utf-8").replace("\0", "")
        locator = response.headers.get("Sforce-Locator")
        guard.ask(locator)  # a page pointing at itself again: stop before landing it twice
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None) or []
        for row in reader:
            raw = dict(zip(header, row, strict=False))
            held.append(to_record(raw))
            key = normalize.sort_key(raw)
            if key[0] < until and (best is None or key > best):
                best = key
            if len(held) >= PAGE_ROWS:
                yield Page(stream, held, None)
                held = []
        del text, reader
        if not locator or locator == "null":
            break
    yield Page(stream, held, Watermark(*best) if best else None)


def csv_value(value: object) -> str:
    """Bulk ingest text for one wire value: None clears the field (an empty cell would not)."""
    if value is None or value == "":
        return CLEAR
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def update(
    api: Api, sobject: str, rows: Sequence[tuple[str, Mapping[str, object]]], *,
    sleep: Callable[[float], None], timeout_s: float,
) -> dict[str, RowResult]:
    """Update records through ingest jobs; one RowResult per record id."""
    columns = sorted({name for _, values in rows for name in values})
    out: dict[str, RowResult] = {}
    batch: list[str] = []
    size = 0
    header = _csv_line(["Id", *columns])
    ids: list[str] = []
    for record_id, values in rows:
        # A column this record does not set stays "" (unchanged); None is written as #N/A.
        line = _csv_line([record_id, *[csv_value(values[c]) if c in values else ""
                                       for c in columns]])
        if size + len(line) > MAX_UPLOAD_BYTES and batch:
            out.update(_ingest(api, sobject, header, batch, ids, sleep, timeout_s))
            batch, ids, size = [], [], 0
        batch.append(line)
        ids.append(record_id)
        size += len(line.encode())
    if batch:
        out.update(_ingest(api, sobject, header, batch, ids, sleep, timeout_s))
    return out


def _csv_line(cells: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _ingest(api: Api, sobject: str, header: str, lines: list[str], ids: list[str],
            sleep: Callable[[float], None], timeout_s: float) -> dict[str, RowResult]:
    body = {"object": sobject, "operation": "update", "contentType": "CSV",
            "columnDelimiter": "COMMA", "lineEnding": "LF"}
    job: Any = api.call(lambda sf: sf.restful("jobs/ingest", method="POST", json=body))
    job_id = str(job["id"])
    api.raw("PUT", f"jobs/ingest/{job_id}/batches",
            headers={"Content-Type": "text/csv; charset=UTF-8"},
            data=(header + "".join(lines)).encode("utf-8"))
    api.call(lambda sf: sf.restful(f"jobs/ingest/{job_id}", method="PATCH",
                                   json={"state": "UploadComplete"}))
    try:
        info = _wait(api, "ingest", job_id, sleep, timeout_s)
    except BulkUnavailable as exc:
        # Nothing tells which rows were applied: report them all as retryable failures; the
        # write-back outbox retries them on a later tick (writes are idempotent).
        return {i: RowResult(False, "BULK_JOB_FAILED", str(exc)) for i in ids}
    results: dict[str, RowResult] = {}
    failed = api.raw("GET", f"jobs/ingest/{job_id}/failedResults",
                     headers={"Accept": "text/csv"})
    for row in csv.DictReader(io.StringIO(failed.content.decode("utf-8"))):
        code, _, message = (row.get("sf__Error") or "UNKNOWN:").partition(":")
        record_id = row.get("Id") or row.get("sf__Id") or ""
        results[record_id] = RowResult(False, code, message.rsplit(":", 1)[0] or code)
    processed = int(info.get("numberRecordsProcessed") or 0)
    if processed < len(ids):
        unprocessed = api.raw("GET", f"jobs/ingest/{job_id}/unprocessedRecords",
                              headers={"Accept": "text/csv"})
        for row in csv.DictReader(io.StringIO(unprocessed.content.decode("utf-8"))):
            results[row.get("Id", "")] = RowResult(False, "BULK_UNPROCESSED",
                                                   "Bulk API left this record unprocessed")
    # Rows neither failed nor unprocessed succeeded: that spares the successfulResults call.
    return {i: results.get(i, RowResult(True)) for i in ids}
