"""Pulling a stream over a window as pages that each carry a watermark safe to commit.

The window is [watermark − lookback, until), until being the tick's start, never later. REST
pages come ordered by (SystemModstamp, Id), so a page's watermark is the position of its last
row: every row at or before it has been delivered. That is what makes a killed backfill resume
without skipping and why ties on SystemModstamp cannot lose rows (the Id breaks them).

A row whose SystemModstamp is at or past `until` is one modified while we read (the cursor
kept its old position); it is landed, but never used as a watermark, since rows between its
old position and its new one may not have been delivered yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from simple_salesforce.exceptions import SalesforceError

from connectors.base import Page, Record, Watermark
from connectors.salesforce import normalize, soql
from connectors.salesforce.errors import error_code
from connectors.salesforce.fields import StreamFields
from connectors.salesforce.session import Api
from schema.records import Stream

log = structlog.get_logger("ecosync.salesforce")
Key = tuple[datetime, str]
LONG_TEXT_MIN = 256  # a textarea this long is a "long text area"
# Single-query paging at 200 rows costs ceil(n/200) calls; split mode about 2·ceil(n/2000)+1.
SPLIT_AFTER_ROWS = 600
Normalizer = Callable[[normalize.Raw], Record]


def normalizer(stream: Stream, source: str, fields: StreamFields) -> Normalizer:
    names = fields.names
    if stream is Stream.ACCOUNTS:
        return lambda raw: normalize.account(raw, source, names)
    return lambda raw: normalize.opportunity(raw, source, names)


def floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def window_start(since: Watermark | None, lookback: timedelta) -> Key | None:
    """Where a window begins: the watermark moved back by the lookback (the id only matters
    when there is no lookback: then the cursor resumes exactly after the committed row)."""
    if since is None:
        return None
    if lookback > timedelta(0):
        return floor_second(since.modified_at - lookback), ""
    if since.modified_at.microsecond:
        return floor_second(since.modified_at), ""  # widen rather than skip
    return since.modified_at, since.last_id


def where(start: Key | None, until: datetime) -> list[str]:
    clauses = [soql.before(until)]
    if start is not None:
        clauses.insert(0, soql.after(*start))
    return clauses


def count(api: Api, sobject: str, clauses: list[str], *, deleted: bool) -> int:
    body: Any = api.call(lambda sf: sf.query(soql.count(sobject, clauses),
                                             include_deleted=deleted))
    return int(body["totalSize"])


def _query(text: str, deleted: bool, sf: Any) -> Any:
    return sf.query(text, include_deleted=deleted)


def _more(url: str, sf: Any) -> Any:
    return sf.query_more(url, identifier_is_url=True)


def long_text(fields: StreamFields) -> list[str]:
    return [n for n in fields.select
            if (i := fields.info.get(n)) is not None and i.type == "textarea"
            and i.length >= LONG_TEXT_MIN]


def rest_pages(
    api: Api, stream: Stream, fields: StreamFields, start: Key | None, until: datetime, *,
    deleted: bool, to_record: Normalizer, expected: int | None = None,
) -> Iterator[Page]:
    """REST query / queryAll pages of up to 2000 rows, following nextRecordsUrl.

    If the server forgets the cursor (INVALID_QUERY_LOCATOR: cursors expire after ~15 idle
    minutes, ~10 open per user), the query is re-issued from the last delivered row with the
    tie-safe predicate, so nothing is skipped or repeated.

    Selecting two or more long text areas caps pages at 200 rows (a platform rule). When the
    window holds more than a few such pages, the pull switches to *split* mode: the main query
    keeps one long text field (pages of 2000) and each other one is read by a narrow query over
    the same key range as the page, i.e. 2 calls per 2000 rows instead of 10. A backfill knows
    its size (`expected`, from COUNT()) and starts split; an incremental pull decides on the
    totalSize of its first page.
    """
    extra = tuple(long_text(fields)[1:])
    split = bool(extra) and expected is not None and expected > SPLIT_AFTER_ROWS
    position = start
    mark: Watermark | None = None

    def first(from_key: Key | None) -> Any:
        names = [n for n in fields.select if not (split and n in extra)]
        text = soql.select(names, fields.sobject, where(from_key, until))
        return api.call(partial(_query, text, deleted))

    body = first(position)
    while True:
        rows: list[Any] = body.get("records", [])
        page_start = position
        for raw in rows:
            key = normalize.sort_key(raw)
            if key[0] < until:
                position, mark = key, Watermark(*key)
        if split and rows and position is not None and position != page_start:
            rows = _attach(api, fields, extra, page_start, position, until, rows,
                           deleted=deleted)
        records = [to_record(raw) for raw in rows]
        if rows:
            yield Page(stream, records, mark)
        if body.get("done", True):
            return
        if extra and not split and int(body.get("totalSize", 0)) > SPLIT_AFTER_ROWS:
            split = True
            body = first(position)
            continue
        next_url = str(body["nextRecordsUrl"])
        try:
            body = api.call(partial(_more, next_url))
        except SalesforceError as exc:
            if error_code(exc)[0] != "INVALID_QUERY_LOCATOR":
                raise
            log.warning("salesforce query cursor expired; re-querying from the last row",
                        sobject=fields.sobject, position=str(position))
            body = first(position)


def _attach(api: Api, fields: StreamFields, extra: tuple[str, ...], lo: Key | None, hi: Key,
            until: datetime, rows: list[Any], *, deleted: bool) -> list[Any]:
    """Add the extra long text fields to a page's rows, read over the page's key range.

    A row missing from the narrow query was modified (or deleted) between the two queries: its
    new SystemModstamp is past `until`, so the next tick pulls it whole. It is left out here
    rather than landed with an unknown owned value.
    """
    values: dict[str, dict[str, Any]] = {}
    clauses = [soql.upto(*hi), soql.before(until)]
    if lo is not None:
        clauses.insert(0, soql.after(*lo))
    for name in extra:
        text = soql.select(["Id", name], fields.sobject, clauses)
        body: Any = api.call(partial(_query, text, deleted))
        got = {str(r["Id"]): r.get(name) for r in body.get("records", [])}
        while not body.get("done", True):
            body = api.call(partial(_more, str(body["nextRecordsUrl"])))
            got.update({str(r["Id"]): r.get(name) for r in body.get("records", [])})
        values[name] = got
    out = []
    for raw in rows:
        rid = str(raw["Id"])
        if all(rid in got for got in values.values()):
            out.append({**raw, **{name: values[name][rid] for name in extra}})
        else:
            log.info("salesforce row changed while paging; the next tick pulls it", id=rid)
    return out
