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

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import structlog

from connectors.base import Page, PageGuard, Watermark
from connectors.salesforce import normalize, queries, soql
from connectors.salesforce.errors import SalesforceApiError
from connectors.salesforce.fields import StreamFields
from connectors.salesforce.longtext import extra_long_text, page_queries, split_pages
from connectors.salesforce.session import Api
from schema.records import Stream

log = structlog.get_logger("ecosync.salesforce")
Key = soql.Key
# Paging at 200 rows (2+ long text fields) costs n/200 calls, split pages about n/2000.
SPLIT_AFTER_ROWS = 600


def normalizer(stream: Stream, source: str, fields: StreamFields) -> normalize.Normalizer:
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


def open_window(api: Api, fields: StreamFields, start: Key | None, until: datetime, *,
                deleted: bool) -> tuple[int, dict[str, Any]]:
    """A backfill's COUNT() and its first REST page, in one Composite call (one API call).

    The count decides between REST and Bulk; when Bulk wins, the page is dropped.
    """
    extra = extra_long_text(fields)
    clauses = soql.where(start, until)
    page = (page_queries(fields, extra, start, until) if extra else
            [("main", soql.select(fields.select, fields.sobject, clauses))])
    bodies = queries.composite(
        api, [("count", soql.count(fields.sobject, clauses)), *page], deleted=deleted)
    return int(bodies.pop("count")["totalSize"]), bodies


def plain_window(api: Api, fields: StreamFields, start: Key | None, until: datetime, *,
                 deleted: bool) -> tuple[int, dict[str, Any]]:
    """An incremental window's first page by a plain query; its totalSize sizes the window.

    (Not a Composite call: a tick that finds nothing to do should make only reads that look
    like reads.)
    """
    text = soql.select(fields.select, fields.sobject, soql.where(start, until))
    body = queries.query(api, text, deleted=deleted)
    return int(body.get("totalSize", 0)), {"main": body}


def rest_pages(
    api: Api, stream: Stream, fields: StreamFields, start: Key | None, until: datetime, *,
    deleted: bool, to_record: normalize.Normalizer, first: dict[str, Any] | None = None,
    max_pages: int | None = None,
) -> Iterator[Page]:
    """REST query / queryAll pages of up to 2000 rows, following nextRecordsUrl (at most
    `max_pages` of them when given).

    `first` holds the first page already fetched (open_window or plain_window). If the server
    forgets the cursor (INVALID_QUERY_LOCATOR: cursors expire after ~15 idle minutes, ~10 open
    per user), the query is re-issued from the last delivered row with the tie-safe predicate,
    so nothing is skipped or repeated. With two or more long text fields, a window of more
    than a few 200-row pages continues as split pages (longtext.py).
    """
    extra = extra_long_text(fields)
    if extra and (first is None or "long0" in first):  # fresh, or a split page already
        yield from split_pages(api, stream, fields, extra, start, until, deleted=deleted,
                               to_record=to_record, first=first, max_pages=max_pages)
        return
    position = start
    mark: Watermark | None = None
    guard = PageGuard(f"Salesforce {fields.sobject} query")

    def again(from_key: Key | None) -> Any:
        guard.ask(("query from", from_key))
        text = soql.select(fields.select, fields.sobject, soql.where(from_key, until))
        return queries.query(api, text, deleted=deleted)

    body = first["main"] if first is not None else again(position)
    while True:
        rows: list[Any] = body.get("records", [])
        guard.got(str(raw["Id"]) for raw in rows)
        for raw in rows:
            key = normalize.sort_key(raw)
            if key[0] < until:
                position, mark = key, Watermark(*key)
        if rows:
            yield Page(stream, [to_record(raw) for raw in rows], mark)
            if max_pages is not None:
                max_pages -= 1
        if body.get("done", True) or max_pages == 0:
            return
        if extra and int(body.get("totalSize", 0)) > SPLIT_AFTER_ROWS:
            yield from split_pages(api, stream, fields, extra, position, until,
                                   deleted=deleted, to_record=to_record)
            return
        try:
            next_url = str(body["nextRecordsUrl"])
            guard.ask(next_url)
            body = queries.more(api, next_url)
        except SalesforceApiError as exc:
            if exc.code != "INVALID_QUERY_LOCATOR":
                raise
            log.warning("salesforce query cursor expired; re-querying from the last row",
                        sobject=fields.sobject, position=str(position))
            body = again(position)
