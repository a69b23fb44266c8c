"""Owner names and e-mails behind `hubspot_owner_id`, from the owners API.

A company holds only its owner's id; `GET /crm/v3/owners/` lists the portal's owners
(`id`, `firstName`, `lastName`, `email`; paged with `after`; scope `crm.objects.owners.read`).
Reading it once per record would cost a call per company: the directory reads the whole list
(one call per 100 owners) the first time a page of companies names an owner, keeps it for the
connector's life, and reads it again when a page names an owner it does not know (at most once
per pull: a new user), or once it is an hour old (renames, new addresses). Deactivated owners
(`archived=true`, listed apart) are read only when an unknown id remains after that.

Without the scope the names stay empty, the pull goes on, and `check()` (doctor) says which
scope to add. Names and e-mails are personal data: nothing here logs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from connectors.base import AuthFailed, PageGuard
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.errors import HubSpotApiError, MissingScopes

ENDPOINT = "GET /crm/v3/owners"
SCOPE = "crm.objects.owners.read"
PAGE = 100  # the documented default page size (no maximum is documented)
TTL = timedelta(hours=1)
log = structlog.get_logger("ecosync.connectors.hubspot")


def _stale(read_at: datetime | None, now: datetime) -> bool:
    return read_at is None or now - read_at >= TTL


@dataclass(frozen=True, slots=True)
class Owner:
    name: str | None
    email: str | None


def parse_owner(raw: Mapping[str, Any]) -> Owner:
    """Pure: one owners-API result → name ("First Last") and e-mail."""
    parts = [str(raw.get(k) or "").strip() for k in ("firstName", "lastName")]
    name = " ".join(p for p in parts if p) or None
    email = str(raw.get("email") or "").strip() or None
    return Owner(name, email)


class OwnerDirectory:
    def __init__(self, client: HubSpotClient) -> None:
        self.client = client
        self._active: dict[str, Owner] = {}
        self._archived: dict[str, Owner] = {}
        self._active_at: datetime | None = None
        self._archived_at: datetime | None = None
        self._missing: set[str] = set()  # ids no listing had, until a list is read again
        self._refreshed = False  # this pull already re-read the live list
        self._refused_at: datetime | None = None  # the app lacks the scope (as of then)

    def new_pull(self) -> None:
        self._refreshed = False

    def lookup(self, ids: Iterable[str | None]) -> dict[str, Owner]:
        """The owners of these ids that the portal describes (reading the lists as needed)."""
        wanted = {i for i in ids if i}
        if not wanted:
            return {}
        now = self.client.now()
        unknown = wanted - self._known() - self._missing
        if _stale(self._refused_at, now) and (
                _stale(self._active_at, now) or (unknown and not self._refreshed)):
            self._refreshed = True
            self._active, self._active_at = self._read(now, archived=False)
            unknown = wanted - self._known()
        if not _stale(self._refused_at, now):
            return {}
        if unknown and (_stale(self._archived_at, now) or unknown - self._missing):
            self._archived, self._archived_at = self._read(now, archived=True)
            unknown = wanted - self._known()
        self._missing |= unknown  # not asked again until a list is read again
        return {i: o for i in wanted if (o := self._active.get(i) or self._archived.get(i))}

    def _known(self) -> set[str]:
        return self._active.keys() | self._archived.keys()

    def _read(self, now: datetime, *, archived: bool) -> tuple[dict[str, Owner], datetime]:
        self._missing = set()
        try:
            return dict(self._listing(archived=archived)), now
        except MissingScopes as exc:
            self._refused_at = now  # asked again in an hour, not once per page
            log.warning("hubspot owners unreadable; owner names stay empty",
                        source=self.client.config.name, error=str(exc))
        except (AuthFailed, HubSpotApiError) as exc:
            log.warning("hubspot owners unavailable; owner names stay empty",
                        source=self.client.config.name, archived=archived, error=str(exc))
        return {}, now

    def _listing(self, *, archived: bool) -> Iterator[tuple[str, Owner]]:
        after: str | None = None
        guard = PageGuard(f"HubSpot owners list{' (archived)' if archived else ''}")
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE, "archived": archived}
            if after:
                kwargs["after"] = after
            resp = self.client.call(ENDPOINT, "crm.owners.owners_api", "get_page", **kwargs)
            results = list(resp.body.get("results") or ())
            guard.got(str(r.get("id")) for r in results)
            for raw in results:
                yield str(raw.get("id")), parse_owner(raw)
            after = (((resp.body.get("paging") or {}).get("next")) or {}).get("after")
            if not after:
                return
            guard.ask(after)


def scope_problem(client: HubSpotClient) -> list[str]:
    """Doctor: one line when the app cannot read owners (one light read otherwise)."""
    try:
        client.call(ENDPOINT, "crm.owners.owners_api", "get_page", limit=1)
    except MissingScopes:
        return [f"{client.config.name}: the app lacks the {SCOPE} scope, so our account "
                "owners' names and e-mails stay empty (the web view shows owner ids; exchange "
                "exports and private matching send no owner contacts); add the scope to the "
                "app (docs/hubspot-admin.md, 'Scopes')"]
    return []
