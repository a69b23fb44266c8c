"""The Salesforce connector (simple-salesforce): pull, write-back, field provisioning.

    connector = SalesforceConnector(config.crm.salesforce)
    for page in connector.pull(Stream.ACCOUNTS, since=watermark, until=tick_start):
        land_page(session, connector.name, page, now=tick_start)

See BEHAVIOR.md in this package for the platform rules the code relies on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import structlog
from simple_salesforce.util import exception_handler

from connectors.base import (
    ApiUsage,
    AuthFailed,
    ConnectorError,
    ExchangeRate,
    FieldStatus,
    FieldUpdate,
    MissingFields,
    Page,
    ReadOnlyRefused,
    Watermark,
    WriteResult,
    carrying_end,
    http_date,
)
from connectors.salesforce import bulk, provision
from connectors.salesforce import rates as rates_query
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.fields import ENSURE_HINT, SOBJECT, Catalog
from connectors.salesforce.pull import (
    floor_second,
    normalizer,
    open_window,
    plain_window,
    rest_pages,
)
from connectors.salesforce.pull import window_start as _window_start
from connectors.salesforce.queries import count
from connectors.salesforce.session import Api
from connectors.salesforce.soql import count as count_query
from connectors.salesforce.soql import literal, select, where
from connectors.salesforce.write import Writer, stored_value
from schema.records import Stream

__all__ = ["SalesforceConnector"]
log = structlog.get_logger("ecosync.salesforce")
BULK_TIMEOUT_S = 1800.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SalesforceConnector:
    """Connector protocol implementation for one Salesforce org."""

    def __init__(
        self, config: SalesforceConfig, *, session: requests.Session | None = None,
        now: Callable[[], datetime] = _utcnow, sleep: Callable[[float], None] = time.sleep,
        bulk_timeout_s: float = BULK_TIMEOUT_S,
        echo: Callable[[str], None] | None = None, read_only: bool = False,
    ) -> None:
        self.config = config
        self.name = config.name
        # Read-only (a partner's org): every write method raises before any call is made.
        self.read_only = read_only
        self._now = now
        self._sleep = sleep
        self._bulk_timeout_s = bulk_timeout_s
        # The field spec goes to the log (stderr), never stdout: stdout may be a JSON report.
        self._echo = echo or (lambda text: log.warning("salesforce owned fields", spec=text))
        self.api = Api(config, session or requests.Session(), sleep)
        self.catalog = Catalog(self.api, config, owned=not read_only)
        self._run_until: datetime | None = None
        self._rates: tuple[datetime, list[ExchangeRate]] | None = None

    # ------------------------------------------------------------------ run lifecycle
    def new_run(self) -> None:
        """Forget cached describes, so the next call sees field changes made since."""
        self.catalog.forget()

    def usage(self) -> ApiUsage:
        return self.api.usage

    def server_time(self) -> datetime:
        """The org's clock, from the Date header of the versions URI (GET /services/data/),
        which Salesforce does not count as an API call."""
        def versions(sf: Any) -> requests.Response:
            response = self.api.http.get(f"https://{sf.sf_instance}/services/data/",
                                         headers=sf.headers)
            if response.status_code >= 300:
                # As simple-salesforce raises for every other call, so that the one classifier
                # sees a 401 as an expired session and a 5xx as weather.
                exception_handler(response, "versions")
            return response

        moment = http_date(self.api.call(versions).headers.get("Date"))
        if moment is None:
            raise ConnectorError("Salesforce sent no Date header; cannot read the org's clock")
        return moment

    def exchange_rates(self) -> list[ExchangeRate]:
        """The org's dated rates (else its static ones); none for a single-currency org.
        Read at most once an hour: rates change rarely and each read is an API call."""
        now = self._now()
        if self._rates is not None and (now - self._rates[0]).total_seconds() < 3600:
            return self._rates[1]
        rates: list[ExchangeRate] = []
        if self.catalog.field("Opportunity", "CurrencyIsoCode") is not None:
            try:
                rows = self.api.call(lambda sf: sf.query_all(rates_query.DATED))["records"]
            except ConnectorError:
                # Advanced currency management is off: only the static rates exist.
                rows = self.api.call(lambda sf: sf.query_all(rates_query.STATIC))["records"]
            rates = rates_query.parse_rates(rows)
        self._rates = (now, rates)
        return rates

    # ------------------------------------------------------------------ checks
    def check(self) -> list[str]:
        problems: list[str] = []
        try:
            self.api.call(lambda sf: sf.limits())
            for stream in (Stream.ACCOUNTS, Stream.OPPORTUNITIES):
                problems.extend(self.catalog.problems(stream, include_owned=False))
                if self.read_only:
                    continue  # a partner's org: ecosync owns no field there
                for status in self.catalog.owned_status(stream):
                    sobject = SOBJECT[stream]
                    if not status.exists:
                        problems.append(f"Salesforce {sobject}.{status.api_name} (owned field "
                                        f"{status.logical_name}) is missing: {ENSURE_HINT}")
                    elif not status.updateable:
                        problems.append(f"Salesforce {sobject}.{status.api_name} (owned field "
                                        f"{status.logical_name}) is read-only for the "
                                        f"integration user: {ENSURE_HINT}")
        except AuthFailed as exc:
            problems.append(str(exc))
        except ConnectorError as exc:
            problems.append(f"Salesforce: {exc}")
        return problems

    # ------------------------------------------------------------------ pull
    def pull(self, stream: Stream, since: Watermark | None, until: datetime | None, *,
             deleted: bool = True) -> Iterator[Page]:
        """The window [since - lookback, until), deleted rows included (queryAll) unless
        ``deleted=False``; every page carries ``until``, read from the org's clock
        (server_time, which Salesforce does not count as an API call) when None."""
        end = until if until is not None else self.server_time()
        yield from carrying_end(self._window(stream, since, end, deleted), stream, lambda: end)

    def _window(self, stream: Stream, since: Watermark | None, until: datetime,
                deleted: bool) -> Iterator[Page]:
        if until != self._run_until:
            # A new tick (ticks are told apart by their start): describe afresh, once, so a
            # field added or removed since the last tick is seen; both streams share it.
            self._run_until = until
            self.catalog.forget()
        fields = self.catalog.stream_fields(stream)  # MissingFields before anything is pulled
        # The window never reaches past the tick's start, read from the org's own clock
        # (server_time), in the whole seconds SOQL compares.
        until = floor_second(until)
        start = _window_start(since, timedelta(minutes=self.config.lookback_minutes))
        to_record = normalizer(stream, self.name, fields)
        first: dict[str, Any] | None
        if since is None:
            total, first = open_window(self.api, fields, start, until, deleted=deleted)
        else:
            total, first = plain_window(self.api, fields, start, until, deleted=deleted)
        log.info("salesforce pull", sobject=fields.sobject, rows=total, backfill=since is None,
                 bulk=total > self.config.bulk_threshold)
        if total > self.config.bulk_threshold:
            # The first REST page came with the count: land it rather than throw it away, and
            # let Bulk read the rest of the window, past that page's last (stamp, id).
            for page in rest_pages(self.api, stream, fields, start, until, deleted=deleted,
                                   to_record=to_record, first=first, max_pages=1):
                yield page
                if page.watermark is not None:
                    start = (page.watermark.modified_at, page.watermark.last_id)
            text = select(fields.select, fields.sobject, where(start, until), ordered=False)
            try:
                yield from bulk.query_pages(
                    self.api, stream, text, until, deleted=deleted, to_record=to_record,
                    sleep=self._sleep, timeout_s=self._bulk_timeout_s)
                return
            except bulk.BulkUnavailable as exc:
                log.warning("bulk query failed; pulling the window over REST",
                            sobject=fields.sobject, error=str(exc))
            first = None  # the rest of the window over REST, from where that page ended
        yield from rest_pages(self.api, stream, fields, start, until, deleted=deleted,
                              to_record=to_record, first=first)

    def count(self, stream: Stream, *, created_until: datetime | None = None) -> int:
        """Live records of the stream's object (COUNT(), deleted rows excluded), those created
        up to `created_until` when given (a completeness audit counts up to a watermark)."""
        clauses = ([f"CreatedDate <= {literal(created_until)}"]
                   if created_until is not None else [])
        return count(self.api, count_query(SOBJECT[stream], clauses), deleted=False)

    # ------------------------------------------------------------------ write
    def stored_form(self, stream: Stream, values: Mapping[str, object]
                    ) -> dict[str, str | None]:
        owned = self.catalog.writable(stream)
        out: dict[str, str | None] = {}
        for logical, value in values.items():
            info = owned.get(logical)
            if info is None:
                raise MissingFields(f"{logical!r} is not a field ecosync owns on "
                                    f"{SOBJECT[stream]}")
            out[logical] = stored_value(value, info)
        return out

    def write(self, stream: Stream, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        if self.read_only:
            raise ReadOnlyRefused(self.name, f"write {len(updates)} {SOBJECT[stream]} records")
        if not updates:
            return []
        writer = Writer(self.api, SOBJECT[stream], self.catalog.writable(stream),
                        bulk_threshold=self.config.bulk_write_threshold, sleep=self._sleep,
                        bulk_timeout_s=self._bulk_timeout_s)
        return writer.write(updates)

    # ------------------------------------------------------------------ fields
    def ensure_fields(self, *, check_only: bool) -> list[FieldStatus]:
        if self.read_only and not check_only:
            raise ReadOnlyRefused(self.name, "create or change fields")
        statuses = self._field_statuses()
        todo = [s for s in statuses if not (s.exists and s.updateable)]
        if check_only or not todo:
            if todo:
                self._echo(provision.spec(statuses))
            return statuses
        missing = [s for s in todo if not s.exists]
        result = provision.create(self.api, missing, [s for s in todo if s.exists])
        created = {s.api_name for s in missing} - set(result.failed)
        # Describe again rather than assume: what the org shows now is the truth.
        self.catalog.forget()
        statuses = [replace(s, created=s.api_name in created) for s in self._field_statuses()]
        self._echo(provision.spec(statuses, reason=result.message))
        return statuses

    def _field_statuses(self) -> list[FieldStatus]:
        return [s for stream in (Stream.ACCOUNTS, Stream.OPPORTUNITIES)
                for s in self.catalog.owned_status(stream)]
