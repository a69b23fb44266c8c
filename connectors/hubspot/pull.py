"""Pulling companies and deals: list backfill, windowed incremental search, archived records.

Memory stays bounded by one page (100 list / 200 search records) plus, during a search
re-window, the ids that share the boundary timestamp.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import (
    AuthFailed,
    ConnectorError,
    Page,
    PageGuard,
    Record,
    Watermark,
    carrying_end,
    http_date,
)
from connectors.hubspot.client import HubSpotClient, Response
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.errors import HubSpotApiError
from connectors.hubspot.normalize import (
    StageInfo,
    company_record,
    deal_record,
    inline_company,
    parse_time,
    primary_company,
    stage_map,
)
from connectors.hubspot.owners import OwnerDirectory
from connectors.hubspot.properties import StreamProperties, stream_properties
from schema.records import Stream

log = structlog.get_logger("ecosync.connectors.hubspot")
LIST_LIMIT = 100  # the list endpoint's maximum page size
SEARCH_LIMIT = 200  # the search endpoint's maximum page size
SEARCH_CEILING = 10_000  # search serves at most this many results per query
ASSOCIATION_BATCH = 1_000  # deals per v4 association batch read
DELETED_SWEEP_INTERVAL = timedelta(minutes=15)
MODIFIED = "hs_lastmodifieddate"

Raw = dict[str, Any]


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _modified_ms(raw: Mapping[str, Any]) -> int:
    props = raw.get("properties") or {}
    moment = parse_time(props.get(MODIFIED)) or parse_time(raw.get("updatedAt"))
    if moment is None:
        raise ValueError(f"HubSpot record {raw.get('id')!r} has no {MODIFIED}")
    return _ms(moment)


class Puller:
    def __init__(self, client: HubSpotClient, config: HubSpotConfig) -> None:
        self.client = client
        self.config = config
        self._stages: dict[str, StageInfo] | None = None
        self._stages_refreshed = False
        # Archived records can only be listed in full (no time filter exists), so incremental
        # pulls sweep them at most every `sweep_interval`; `_swept` keeps, per stream, the
        # `until` of this process's last complete sweep (or deleted backfill).
        self.sweep_interval = DELETED_SWEEP_INTERVAL
        self._swept: dict[Stream, datetime] = {}
        self.owners = OwnerDirectory(client)
        # Our portal's owners name our reps; a partner's portal (read-only) keeps its own.
        self.read_owners = True

    # ---- public entry points -------------------------------------------------------------

    def pull(self, stream: Stream, since: Watermark | None, until: datetime | None,
             deleted: bool) -> Iterator[Page]:
        names = stream_properties(self.config, stream)
        self._stages_refreshed = False
        self.owners.new_pull()
        if since is None:
            # A backfill's watermark is the moment its walk began: read the clock first.
            end = until if until is not None else self.clock()
            yield from carrying_end(self._backfill(names, end, deleted), stream, lambda: end)
            return
        window = _Window(until)
        yield from carrying_end(self._incremental(names, since, window, deleted), stream,
                                window.until)

    def clock(self) -> datetime:
        """The portal's clock, from the Date header of one light read (the definition of
        the property incremental pulls filter on: a small body, a scope ecosync needs)."""
        resp = self.client.call("GET /crm/v3/properties/companies/hs_lastmodifieddate",
                                "crm.properties.core_api", "get_by_name", "companies",
                                MODIFIED)
        return _date(resp.headers)

    def _incremental(self, names: StreamProperties, since: Watermark, window: _Window,
                     deleted: bool) -> Iterator[Page]:
        stream = names.stream
        start = since.modified_at - timedelta(minutes=self.config.lookback_minutes)
        # Search results carry no associations: deals are read in groups of pages sharing one
        # v4 batch read (1,000 deals), then yielded page by page with their watermarks.
        searched = self._search(names, _ms(start), window)
        deals = names.stream is Stream.OPPORTUNITIES
        for group in _grouped(searched, ASSOCIATION_BATCH if deals else 1):
            companies = self._batch_companies(names, [r for raws in group for r in raws])
            for raws in group:
                last = raws[-1]
                mark = Watermark(datetime.fromtimestamp(_modified_ms(last) / 1000, tz=UTC),
                                 str(last["id"]))
                yield Page(stream, self._records(names, raws, companies), mark)
        if deleted:
            yield from self._sweep_archived(names, window.until(), since.swept_at)

    def _sweep_archived(self, names: StreamProperties, until: datetime,
                        swept_before: datetime | None) -> Iterator[Page]:
        """Records archived since the last sweep; every one when no sweep is known.

        The last sweep is this process's, or the one kept with the watermark (a new process
        honours the cadence and emits only what was archived since). Without either, every
        archived record is emitted (re-landing a deletion keeps its first deleted_at). Each
        call costs ceil(archived / 100) whatever the filter, hence the interval.
        """
        known = [t for t in (self._swept.get(names.stream), swept_before) if t is not None]
        last = max(known) if known else None
        if last is not None and until - last < self.sweep_interval:
            return
        lookback = timedelta(minutes=self.config.lookback_minutes)
        since_ms = None if last is None else _ms(last - lookback)
        for raws in self._list(names, archived=True, archived_since_ms=since_ms):
            yield Page(names.stream, self._records(names, raws, self._inline(names, raws)),
                       None)
        self._swept[names.stream] = until
        yield Page(names.stream, [], None, swept=until)  # the sweep is complete

    def count(self, stream: Stream, created_until: datetime | None = None) -> int:
        """Live records of a stream (one search call), created up to ``created_until`` if
        given: for progress bars and the completeness audit."""
        names = stream_properties(self.config, stream)
        groups = [] if created_until is None else [{"filters": [
            {"propertyName": "createdate", "operator": "LTE",
             "value": str(_ms(created_until))}]}]
        body = {"limit": 1, "properties": ["hs_object_id"], "filterGroups": groups}
        resp = self.client.call(f"POST /crm/v3/objects/{names.object_type}/search",
                                f"crm.{names.object_type}.search_api", "do_search", body,
                                search=True)
        return int(resp.body.get("total") or 0)

    # ---- backfill ------------------------------------------------------------------------

    def _backfill(self, names: StreamProperties, until: datetime,
                  deleted: bool) -> Iterator[Page]:
        """Every record through the list endpoint; only the final page carries a watermark.

        The list walks records in id order, not modification order, so no watermark is
        safe before the walk ends: a resumed backfill restarts from the beginning (re-landing
        is idempotent). At the end, everything modified before ``until`` (the tick start,
        before the walk began) has been read in a state at least that recent, so
        ``until`` is the safe watermark; later changes are re-read by the next incremental
        pull, whose lookback also covers clock skew and search-index lag.
        """
        final = Watermark(until, "")
        pending: Page | None = None
        sources = [False, True] if deleted else [False]
        for archived in sources:
            for raws in self._list(names, archived=archived):
                if pending is not None:
                    yield pending
                pending = Page(names.stream,
                               self._records(names, raws, self._inline(names, raws)), None)
        swept = until if deleted else None  # the archived listing was read in full
        yield (Page(names.stream, [], final, swept=swept) if pending is None
               else replace(pending, watermark=final, swept=swept))
        if deleted:
            self._swept[names.stream] = until

    def _list(self, names: StreamProperties, *, archived: bool,
              archived_since_ms: int | None = None) -> Iterator[list[Raw]]:
        obj = names.object_type
        after: str | None = None
        guard = PageGuard(f"HubSpot {obj} list{' (archived)' if archived else ''}")
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_LIMIT, "properties": names.read,
                                      "archived": archived}
            if names.stream is Stream.OPPORTUNITIES:
                kwargs["associations"] = ["companies"]  # inline: no batch read per page
            if after:
                kwargs["after"] = after
            resp = self.client.call(f"GET /crm/v3/objects/{obj}", f"crm.{obj}.basic_api",
                                    "get_page", **kwargs)
            raws: list[Raw] = list(resp.body.get("results") or [])
            guard.got(str(r["id"]) for r in raws)
            if archived_since_ms is not None:
                # No API lists archived records by time: filter the full archived listing.
                raws = [r for r in raws if _archived_ms(r) >= archived_since_ms]
            if raws:
                yield raws
            after = (((resp.body.get("paging") or {}).get("next")) or {}).get("after")
            if not after:
                return
            guard.ask(after)

    # ---- incremental search --------------------------------------------------------------

    def _search_call(self, names: StreamProperties, filters: list[dict[str, Any]],
                     sort: str, after: int) -> Response:
        obj = names.object_type
        body: dict[str, Any] = {
            "limit": SEARCH_LIMIT, "after": str(after), "properties": names.read,
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "filterGroups": [{"filters": filters}],
        }
        return self.client.call(f"POST /crm/v3/objects/{obj}/search",
                                f"crm.{obj}.search_api", "do_search", body, search=True)

    def _search(self, names: StreamProperties, start_ms: int,
                window: _Window) -> Iterator[list[Raw]]:
        """Records with start <= hs_lastmodifieddate < until, ascending, each once.

        Without a given ``until`` the first request has no upper bound, and its Date header
        (the portal's clock when it answered) becomes ``until``: records it returned from
        that moment on are left to the next window; if more pages follow, the window is
        re-opened at the last time read, bounded by ``until`` (no extra call: the first page
        is not read again).

        Offset paging stops at 10,000 results, so a window that reaches it is re-opened at
        the last modification time seen (GTE) and the ids already read at exactly that time
        are skipped. A window also re-opens when ``total`` shrinks between pages: a record
        modified again during the walk leaves the window and shifts later records to lower
        offsets, so the shrunk page may start past a record never read; it is dropped.
        """
        lower, op = start_ms, "GTE"
        boundary: set[str] = set()  # ids already yielded whose modified time == lower
        # Each re-opened window must start further on: a later time, or the same time with
        # more of its ids already read, or strictly after it.
        windows = PageGuard(f"HubSpot {names.object_type} search windows", ordered=True)
        while True:
            windows.ask((lower, op == "GT", len(boundary)))
            filters = [{"propertyName": MODIFIED, "operator": op, "value": str(lower)}]
            if window.until_ms is not None:
                filters.append({"propertyName": MODIFIED, "operator": "LT",
                                "value": str(window.until_ms)})
            offset, total = 0, None
            last_ms: int | None = None
            at_last: set[str] = set()
            pages = PageGuard(f"HubSpot {names.object_type} search", ordered=True)
            while True:
                pages.ask(offset)
                resp = self._search_call(names, filters, MODIFIED, offset)
                body = resp.body
                pages.got(str(r["id"]) for r in body.get("results") or ())
                if window.until_ms is None:
                    # The portal's clock when it answered ends this window.
                    window.end = _date(resp.headers)
                    results = list(body.get("results") or ())
                    kept = [r for r in results if _modified_ms(r) < _ms(window.end)]
                    more = ((body.get("paging") or {}).get("next") or {}).get("after")
                    body = {"results": kept}
                    if more is not None and len(kept) == len(results):
                        # More pages follow: read them in a window bounded by `until`.
                        body["paging"] = {"next": {"after": more}}
                        reopen = True
                    else:
                        reopen = False
                else:
                    reopen = False
                page_total = int(body.get("total") or 0)
                if total is not None and page_total < total:
                    # Records left the window since the previous page, so this page may
                    # start past records never read: drop it and re-open the window.
                    reason = "shrunk"
                    break
                total = page_total
                page: list[Raw] = []
                for raw in body.get("results") or ():
                    ms, rid = _modified_ms(raw), str(raw["id"])
                    if ms != last_ms:
                        last_ms, at_last = ms, set()
                    at_last.add(rid)
                    if ms == lower and rid in boundary:
                        continue  # read in the previous window
                    page.append(raw)
                if page:
                    yield page
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if after is None:
                    return
                if reopen:
                    reason = "clock"
                    break
                offset = int(after)
                if offset >= SEARCH_CEILING:
                    reason = "ceiling"
                    break
            assert last_ms is not None
            log.info("hubspot.search.rewindow", object_type=names.object_type, reason=reason,
                     lower_ms=lower, last_ms=last_ms)
            if last_ms == lower and op == "GTE" and reason == "ceiling":
                # 10,000 records share one timestamp (a bulk import): walk that instant by id,
                # then carry on strictly after it.
                yield from self._search_instant(names, lower, boundary | at_last)
                op, boundary = "GT", set()
                continue
            boundary = (boundary | at_last) if last_ms == lower else at_last
            lower, op = last_ms, "GTE"

    def _search_instant(self, names: StreamProperties, at_ms: int,
                        seen: set[str]) -> Iterator[list[Raw]]:
        """All records modified exactly at ``at_ms``, keyset-paged on hs_object_id."""
        after_id = 0
        guard = PageGuard(f"HubSpot {names.object_type} search at one instant", ordered=True)
        while True:
            filters = [{"propertyName": MODIFIED, "operator": "EQ", "value": str(at_ms)},
                       {"propertyName": "hs_object_id", "operator": "GT",
                        "value": str(after_id)}]
            offset = 0
            while True:
                guard.ask((after_id, offset))
                body = self._search_call(names, filters, "hs_object_id", offset).body
                results = list(body.get("results") or ())
                guard.got(str(r["id"]) for r in results)
                page = [r for r in results if str(r["id"]) not in seen]
                if page:
                    yield page
                if results:
                    after_id = max(after_id, max(int(r["id"]) for r in results))
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if after is None:
                    return
                offset = int(after)
                if offset >= SEARCH_CEILING:
                    break

    # ---- records -------------------------------------------------------------------------

    def _records(self, names: StreamProperties, raws: list[Raw],
                 companies: Mapping[str, str]) -> list[Record]:
        source = self.config.name
        if names.stream is Stream.ACCOUNTS:
            owners = self.owners.lookup((r.get("properties") or {}).get("hubspot_owner_id")
                                        for r in raws) if self.read_owners else {}
            return [company_record(r, source=source, names=names, owners=owners)
                    for r in raws]
        stages = self._stage_info(raws)
        return [deal_record(r, source=source, names=names, stages=stages,
                            company_id=companies.get(str(r["id"]))) for r in raws]

    def _inline(self, names: StreamProperties, raws: list[Raw]) -> dict[str, str]:
        """Deal → primary company from a list page's inline associations; one v4 batch read
        for the deals whose inline list HubSpot cut off (none on most pages)."""
        if names.stream is not Stream.OPPORTUNITIES:
            return {}
        out: dict[str, str] = {}
        cut: list[str] = []
        for raw in raws:
            company, complete = inline_company(raw)
            if not complete:
                cut.append(str(raw["id"]))
            elif company is not None:
                out[str(raw["id"])] = company
        out.update(self._primary_companies(cut))
        return out

    def _batch_companies(self, names: StreamProperties, raws: list[Raw]) -> dict[str, str]:
        if names.stream is not Stream.OPPORTUNITIES:
            return {}
        return self._primary_companies([str(r["id"]) for r in raws])

    def _primary_companies(self, deal_ids: list[str]) -> dict[str, str]:
        """One v4 batch read for up to 1,000 deals (search results carry no associations)."""
        if not deal_ids:
            return {}
        body = {"inputs": [{"id": i} for i in deal_ids]}
        resp = self.client.call("POST /crm/v4/associations/deals/companies/batch/read",
                                "crm.associations.v4.batch_api", "get_page", "deals",
                                "companies", body)
        # 207: deals without any company come back under `errors`; nothing to do for them.
        out: dict[str, str] = {}
        for result in resp.body.get("results") or ():
            company = primary_company(result.get("to") or ())
            if company is not None:
                out[str((result.get("from") or {}).get("id"))] = company
        return out

    def _stage_info(self, raws: list[Raw]) -> dict[str, StageInfo]:
        if self._stages is None:
            self._stages = self._load_stages()
        unknown = any((r.get("properties") or {}).get("dealstage") not in self._stages
                      for r in raws if (r.get("properties") or {}).get("dealstage"))
        if unknown and not self._stages_refreshed:
            # A stage added since we loaded the pipelines: reload once per pull; deals of
            # stages still unknown fall back to hs_is_closed / hs_is_closed_won.
            self._stages_refreshed = True
            self._stages = self._load_stages()
        return self._stages

    def _load_stages(self) -> dict[str, StageInfo]:
        try:
            resp = self.client.call("GET /crm/v3/pipelines/deals",
                                    "crm.pipelines.pipelines_api", "get_all", "deals")
        except (AuthFailed, HubSpotApiError) as exc:
            # Without the pipelines (e.g. a token lacking the scope) hs_is_closed and
            # hs_is_closed_won still say open / won / lost; a bad token fails the next call.
            log.warning("hubspot.pipelines.unavailable", error=str(exc))
            return {}
        return stage_map(resp.body.get("results") or ())


def _archived_ms(raw: Mapping[str, Any]) -> int:
    moment = parse_time(raw.get("archivedAt")) or parse_time(raw.get("updatedAt"))
    return _ms(moment) if moment else 0


def _date(headers: Mapping[str, str]) -> datetime:
    moment = http_date(headers.get("date"))
    if moment is None:
        raise ConnectorError("HubSpot sent no Date header; cannot read the portal's clock")
    return moment


class _Window:
    """A search window's end: given, or the Date of the window's first answer."""

    def __init__(self, end: datetime | None) -> None:
        self.end = end

    @property
    def until_ms(self) -> int | None:
        return None if self.end is None else _ms(self.end)

    def until(self) -> datetime:
        assert self.end is not None, "the window's first search sets its end"
        return self.end


def _grouped(pages: Iterator[list[Raw]], size: int) -> Iterator[list[list[Raw]]]:
    """Consecutive pages in groups of about `size` records (a page is never split)."""
    group: list[list[Raw]] = []
    count = 0
    for raws in pages:
        if group and count + len(raws) > size:
            yield group
            group, count = [], 0
        group.append(raws)
        count += len(raws)
    if group:
        yield group
