"""HubSpotConnector: the Connector protocol (connectors.base) over hubspot-api-client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import (
    ApiUsage,
    AuthFailed,
    ConnectorError,
    ExchangeRate,
    FieldStatus,
    FieldUpdate,
    Page,
    ReadOnlyRefused,
    TransientError,
    Watermark,
    WriteResult,
)
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.errors import HubSpotApiError, MissingScopes
from connectors.hubspot.owners import scope_problem as owner_scope_problem
from connectors.hubspot.properties import (
    GROUP_LABEL,
    GROUP_NAME,
    is_updateable,
    property_create_body,
    stored_value,
    stream_properties,
    type_mismatch,
)
from connectors.hubspot.pull import Puller
from connectors.hubspot.rates import PATH as RATES_PATH
from connectors.hubspot.rates import SCOPE as RATES_SCOPE
from connectors.hubspot.rates import parse_rates, read_rates
from connectors.hubspot.write import Writer
from schema.records import Stream

ENSURE_HINT = "run `ecosync fields ensure --source hubspot`"
RATES_TTL = timedelta(hours=1)
log = structlog.get_logger("ecosync.connectors.hubspot")
SINGULAR = {"companies": "company", "deals": "deal"}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _FieldReport:
    statuses: list[FieldStatus]
    problems: list[str]


class HubSpotConnector:
    """Companies (accounts) and deals (opportunities) of one HubSpot portal.

    ``now`` returns the current aware UTC time; it decides when an OAuth access token is
    refreshed (tests pass the emulator's clock).
    """

    def __init__(self, config: HubSpotConfig, *,
                 now: Callable[[], datetime] = _utcnow, read_only: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.name = config.name
        # Read-only (a partner's portal): every write method raises before any call is made.
        self.read_only = read_only
        self.client = HubSpotClient(config, now=now, sleep=sleep)
        self._puller = Puller(self.client, config)
        self._puller.read_owners = not read_only  # no owners call for a partner's portal
        self._writer = Writer(self.client, config)
        self._rates: tuple[datetime, list[ExchangeRate]] | None = None

    # ---- reading -------------------------------------------------------------------------

    def pull(self, stream: Stream, since: Watermark | None, until: datetime | None, *,
             deleted: bool = True) -> Iterator[Page]:
        """Backfill (``since=None``, list endpoint) or incremental search since ``since``.

        Incremental pages carry the (hs_lastmodifieddate, id) of their last record; a
        backfill's pages carry none until the final page, which carries ``until`` (read
        first when None). ``until=None`` on an incremental pull: the window ends at the
        Date of its first search (BEHAVIOR.md 4). Archived records follow as ``is_deleted``
        pages without a watermark, at most every 15 minutes (since ``since.swept_at``); the
        last page says where the window ended and whether a sweep completed.
        """
        return self._puller.pull(stream, since, until, deleted)

    def count(self, stream: Stream, *, created_until: datetime | None = None) -> int:
        """Live records in the portal for ``stream`` (one search call), those created up to
        ``created_until`` when given."""
        return self._puller.count(stream, created_until)

    # ---- writing -------------------------------------------------------------------------

    def stored_form(self, stream: Stream, values: Mapping[str, object]) -> dict[str, str | None]:
        names = stream_properties(self.config, stream)
        out: dict[str, str | None] = {}
        for logical, value in values.items():
            prop = names.by_logical(logical)
            if prop is None:
                raise KeyError(f"{logical!r} is not an ecosync-owned {stream} field")
            out[logical] = stored_value(prop.kind, value)
        return out

    def write(self, stream: Stream, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        if self.read_only:
            raise ReadOnlyRefused(self.name, f"write {len(updates)} {stream.value} records")
        return self._writer.write(stream, updates)

    # ---- fields and health -----------------------------------------------------------------

    def ensure_fields(self, *, check_only: bool) -> list[FieldStatus]:
        if self.read_only and not check_only:
            raise ReadOnlyRefused(self.name, "create or change properties")
        return self._fields(check_only=check_only).statuses

    def check(self) -> list[str]:
        try:
            if self.read_only:
                # A partner's portal: ecosync owns no property there; it needs to read
                # companies and deals, which one search of each proves.
                for stream in (Stream.ACCOUNTS, Stream.OPPORTUNITIES):
                    self._puller.count(stream, None)
                return []
            report = self._fields(check_only=True)
            rates = self._rates_problems() + owner_scope_problem(self.client)
        except AuthFailed as exc:
            return [str(exc)]
        except TransientError as exc:
            return [str(exc)]  # names the URL and what to check
        except ConnectorError as exc:
            return [f"{self.name}: cannot reach HubSpot at crm.hubspot.base_url = "
                    f"{self.config.base_url}: {exc}"]
        return report.problems + rates

    def usage(self) -> ApiUsage:
        return self.client.budget.usage()

    def exchange_rates(self) -> list[ExchangeRate]:
        """The portal's dated rates (DESIGN.md 6); none without the settings.currencies.read
        scope (the static config rates then apply, and `check()` says so). Read at most once
        an hour: rates change rarely and each read costs calls."""
        now = self.client.now()
        if self._rates is not None and now - self._rates[0] < RATES_TTL:
            return self._rates[1]
        try:
            rates = parse_rates(read_rates(self.client))
        except MissingScopes as exc:
            log.warning("hubspot exchange rates unreadable; static rates apply",
                        source=self.name, error=str(exc))
            rates = []
        self._rates = (now, rates)
        return rates

    def _rates_problems(self) -> list[str]:
        try:
            self.client.get(RATES_PATH, [("limit", "1")])
        except MissingScopes:
            return [f"{self.name}: the app lacks the {RATES_SCOPE} scope, so closed deals are "
                    "converted to the corporate currency at attribution.static_rates instead "
                    "of the portal's dated exchange rates; add the scope to the app "
                    "(docs/hubspot-admin.md, 'Scopes')"]
        return []

    def server_time(self) -> datetime:
        """The portal's clock, from the Date header of one light read. Incremental pulls
        need none: given ``until=None``, a window ends at the Date of its first search."""
        return self._puller.clock()

    # ---- internals -----------------------------------------------------------------------

    def _definitions(self, object_type: str) -> dict[str, Mapping[str, Any]]:
        resp = self.client.call(f"GET /crm/v3/properties/{object_type}",
                                "crm.properties.core_api", "get_all", object_type)
        return {str(d.get("name")): d for d in resp.body.get("results") or ()}

    def _ensure_group(self, object_type: str) -> None:
        body = {"name": GROUP_NAME, "label": GROUP_LABEL, "displayOrder": -1}
        try:
            self.client.call(f"POST /crm/v3/properties/{object_type}/groups",
                             "crm.properties.groups_api", "create", object_type, body)
        except HubSpotApiError as exc:
            if exc.status != 409:  # 409: the group exists already, which is what we want
                raise

    def _create(self, object_type: str, body: dict[str, Any]) -> bool:
        """Create a property; False when it already existed (409: someone was first)."""
        try:
            self.client.call(f"POST /crm/v3/properties/{object_type}",
                             "crm.properties.core_api", "create", object_type, body)
        except HubSpotApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _fields(self, *, check_only: bool) -> _FieldReport:
        statuses: list[FieldStatus] = []
        problems: list[str] = []
        for stream in (Stream.ACCOUNTS, Stream.OPPORTUNITIES):
            names = stream_properties(self.config, stream)
            obj = names.object_type
            what = SINGULAR[obj]
            defs = self._definitions(obj)
            missing = [p for p in names.owned if p.name not in defs]
            if missing and not check_only:
                self._ensure_group(obj)
            for prop in names.owned:
                definition = defs.get(prop.name)
                if definition is None and not check_only:
                    created = self._create(obj, property_create_body(prop))
                    statuses.append(FieldStatus(stream, prop.logical, prop.name, True, True,
                                                created=created))
                    continue
                if definition is None:
                    statuses.append(FieldStatus(stream, prop.logical, prop.name, False, False))
                    problems.append(f"{self.name}: HubSpot {what} property {prop.name!r} "
                                    f"({prop.logical}) does not exist; {ENSURE_HINT}")
                    continue
                updateable = is_updateable(definition)
                statuses.append(FieldStatus(stream, prop.logical, prop.name, True, updateable))
                if not updateable:
                    problems.append(f"{self.name}: HubSpot {what} property {prop.name!r} "
                                    f"({prop.logical}) is read-only; ecosync must be able to "
                                    "write it (make it editable in HubSpot, or map "
                                    f"{prop.logical} to another property in crm.hubspot."
                                    f"{'company' if what == 'company' else 'deal'}_properties)")
                mismatch = type_mismatch(prop, definition)
                if mismatch:
                    problems.append(f"{self.name}: HubSpot {what} property {prop.name!r} "
                                    f"({prop.logical}) {mismatch}; recreate it or map "
                                    f"{prop.logical} to a property of the right type")
            for key, prop_name in (("referring_partner_property", names.referring_partner),
                                   ("lead_source_property", names.lead_source),
                                   ("duns_property", names.duns)):
                if prop_name and prop_name not in defs:
                    problems.append(f"{self.name}: crm.hubspot.{key} = {prop_name!r}, but "
                                    f"HubSpot has no {what} property of that name; fix the "
                                    "name or create the property")
        return _FieldReport(statuses, problems)
