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


def _more(url: str, sf: Any) -> Any:
    return sf.query_more(url, identifier_is_url=True)


def rest_pages(
    api: Api, stream: Stream, fields: StreamFields, start: Key | None, until: datetime, *,
    deleted: bool, to_record: Normalizer,
) -> Iterator[Page]:
    """REST query / queryAll pages of up to 2000 rows, following nextRecordsUrl.

    If the server forgets the cursor (INVALID_QUERY_LOCATOR: cursors expire after ~15 idle
    minutes, ~10 open per user), the query is re-issued from the last delivered row with the
    tie-safe predicate, so nothing is skipped or repeated.
    """
    position = start
    mark: Watermark | None = None

    def first(from_key: Key | None) -> Any:
        text = soql.select(fields.select, fields.sobject, where(from_key, until))
        return api.call(lambda sf: sf.query(text, include_deleted=deleted))

    body = first(position)
    while True:
        rows: list[Any] = body.get("records", [])
        records = []
        for raw in rows:
            records.append(to_record(raw))
            key = normalize.sort_key(raw)
            if key[0] < until:
                position, mark = key, Watermark(*key)
        if records:
            yield Page(stream, records, mark)
        if body.get("done", True):
            return
        next_url = str(body["nextRecordsUrl"])
        try:
            body = api.call(partial(_more, next_url))
        except SalesforceError as exc:
            if error_code(exc)[0] != "INVALID_QUERY_LOCATOR":
                raise
            log.warning("salesforce query cursor expired; re-querying from the last row",
                        sobject=fields.sobject, position=str(position))
            body = first(position)
