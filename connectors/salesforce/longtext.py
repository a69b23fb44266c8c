"""Split pages: full 2,000-row pages although the stream selects several long text areas.

Selecting two or more long text areas caps REST pages at 200 rows (a documented platform
rule); Account selects two owned ones. Paging 200 rows at a time would cost ten calls per
2,000 rows. Instead each page is one Composite call (one API call) holding:

- the main query with one long text field: the tie-safe cursor `(SystemModstamp, Id) > last`,
  ORDER BY both, LIMIT 2000;
- per other long text field, `SELECT Id, <field>` with the same WHERE, ORDER BY and LIMIT:
  the same rows in the same order, so the values line up by Id.

Both are evaluated a moment apart. If a row changed in between, a main row can be missing from
a narrow result (or the narrow result can be shifted by a row committed in between): those
rows are then read by a narrow query over exactly the page's key range `(lo, hi]` (one more
call, rare). A row still missing changed after the main query: its new SystemModstamp is past
`until`, so the next tick pulls it whole; it is left out here rather than landed with an
unknown owned value (the engine would read that as "cleared in the CRM").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import structlog

from connectors.base import Page, PageGuard, Watermark
from connectors.salesforce import normalize, queries, soql
from connectors.salesforce.fields import StreamFields
from connectors.salesforce.session import Api
from schema.records import Stream

log = structlog.get_logger("ecosync.salesforce")
PAGE = 2000
LONG_TEXT_MIN = 256  # a textarea at least this long is a "long text area"


def long_text(fields: StreamFields) -> list[str]:
    return [n for n in fields.select
            if (i := fields.info.get(n)) is not None and i.type == "textarea"
            and i.length >= LONG_TEXT_MIN]


def extra_long_text(fields: StreamFields) -> tuple[str, ...]:
    """The long text fields beyond the first (which rides in the main query)."""
    extra = tuple(long_text(fields)[1:])
    # One composite holds the next page plus ≤ 4 narrow queries.
    return extra if len(extra) < queries.MAX_QUERY_SUBREQUESTS else ()


def main_query(fields: StreamFields, extra: Sequence[str], start: soql.Key | None,
               until: datetime) -> str:
    names = [n for n in fields.select if n not in extra]
    return soql.select(names, fields.sobject, soql.where(start, until)) + f" LIMIT {PAGE}"


def page_queries(fields: StreamFields, extra: Sequence[str], start: soql.Key | None,
                 until: datetime) -> list[tuple[str, str]]:
    """The (referenceId, SOQL) subrequests that make one split page."""
    return [("main", main_query(fields, extra, start, until)), *[
        (f"long{i}", soql.select(["Id", name], fields.sobject, soql.where(start, until))
         + f" LIMIT {PAGE}")
        for i, name in enumerate(extra)
    ]]


def split_pages(
    api: Api, stream: Stream, fields: StreamFields, extra: Sequence[str], start: soql.Key | None,
    until: datetime, *, deleted: bool, to_record: normalize.Normalizer,
    first: dict[str, Any] | None = None, max_pages: int | None = None,
) -> Iterator[Page]:
    """`first`: the bodies of the first page's subrequests, if already fetched; at most
    `max_pages` pages when given."""
    low, bodies = start, first
    # Keyset paging: each page must start past the (SystemModstamp, Id) the previous one ended.
    guard = PageGuard(f"Salesforce {fields.sobject} query", ordered=True)
    while True:
        if bodies is None:
            bodies = queries.composite(api, page_queries(fields, extra, low, until),
                                       deleted=deleted)
        rows: list[Any] = bodies["main"]["records"]
        if not rows:
            return
        guard.got(str(raw["Id"]) for raw in rows)
        high = normalize.sort_key(rows[-1])
        guard.ask(high)
        values = {name: {str(r["Id"]): r.get(name) for r in bodies[f"long{i}"]["records"]}
                  for i, name in enumerate(extra)}
        if any(str(r["Id"]) not in got for r in rows for got in values.values()):
            ranged = queries.composite(api, [
                (f"long{i}", soql.select(["Id", name], fields.sobject,
                                         soql.key_range(low, high, until)))
                for i, name in enumerate(extra)], deleted=deleted)
            for i, name in enumerate(extra):
                values[name].update(_values(api, ranged[f"long{i}"], name))
        records = []
        for raw in rows:
            rid = str(raw["Id"])
            if all(rid in got for got in values.values()):
                records.append(to_record({**raw, **{n: values[n][rid] for n in extra}}))
            else:
                log.info("salesforce row changed while paging; the next tick pulls it", id=rid)
        yield Page(stream, records, Watermark(*high))
        if max_pages is not None:
            max_pages -= 1
        if len(rows) < PAGE or max_pages == 0:
            return
        low, bodies = high, None


def _values(api: Api, body: Any, name: str) -> dict[str, Any]:
    got = {str(r["Id"]): r.get(name) for r in body.get("records", [])}
    guard = PageGuard(f"Salesforce {name} query")
    # Late commits can push a key range past one page: follow it (rare).
    while not body.get("done", True):
        next_url = str(body["nextRecordsUrl"])
        guard.ask(next_url)
        body = queries.more(api, next_url)
        guard.got(str(r["Id"]) for r in body.get("records", []))
        got.update({str(r["Id"]): r.get(name) for r in body.get("records", [])})
    return got
