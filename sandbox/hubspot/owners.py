"""The owners API: the portal's users that records are assigned to (`hubspot_owner_id`).

`GET /crm/v3/owners/` lists owners as `{id, email, type, firstName, lastName, userId,
userIdIncludingInactive, createdAt, updatedAt, archived, teams}` (HubSpot's owners guide and
hubspot-api-client's `PublicOwner`); `id` is what `hubspot_owner_id` holds. Query: `limit`,
`after` (an opaque cursor in `paging.next.after`), `email` (an exact filter) and `archived`
(true lists only deactivated owners, as the object list endpoints do). Scope
`crm.objects.owners.read`.

Not confirmed: the page size maximum (500 here; the documented default is 100), and the order
(creation order here).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sandbox.common import Request, Response, json_response
from sandbox.hubspot.clock import Clock, iso
from sandbox.hubspot.wire import decode_cursor, encode_cursor, parse_limit

SCOPE = "crm.objects.owners.read"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
FIRST_ID = 41_000_000


@dataclass(slots=True)
class Owner:
    id: str
    first_name: str
    last_name: str
    email: str
    user_id: int
    created_ms: int
    updated_ms: int
    archived: bool = False

    def wire(self) -> dict[str, object]:
        return {"id": self.id, "email": self.email, "type": "PERSON",
                "firstName": self.first_name, "lastName": self.last_name,
                "userId": None if self.archived else self.user_id,
                "userIdIncludingInactive": self.user_id,
                "createdAt": iso(self.created_ms), "updatedAt": iso(self.updated_ms),
                "archived": self.archived, "teams": []}


@dataclass
class Owners:
    clock: Clock
    owners: list[Owner] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, first_name: str, last_name: str, email: str, *, owner_id: str | None = None,
            archived: bool = False) -> str:
        """An owner (a user of the portal), deactivated when `archived`; returns its id."""
        now = self.clock.now_ms()
        with self.lock:
            number = len(self.owners)
            oid = owner_id or str(FIRST_ID + number * 7919)
            self.owners.append(Owner(oid, first_name, last_name, email, 9_000_000 + number,
                                     now, now, archived))
        return oid

    def update(self, owner_id: str, *, first_name: str | None = None,
               last_name: str | None = None, email: str | None = None,
               archived: bool | None = None) -> None:
        """A user renamed, given a new address, or deactivated in the portal's settings."""
        with self.lock:
            owner = next(o for o in self.owners if o.id == owner_id)
            owner.first_name = owner.first_name if first_name is None else first_name
            owner.last_name = owner.last_name if last_name is None else last_name
            owner.email = owner.email if email is None else email
            owner.archived = owner.archived if archived is None else archived
            owner.updated_ms = self.clock.now_ms()

    def list_page(self, request: Request) -> Response:
        limit = parse_limit(request.arg("limit"), DEFAULT_LIMIT, MAX_LIMIT)
        start = decode_cursor(request.arg("after")) or 0
        archived = (request.arg("archived") or "false").lower() == "true"
        email = (request.arg("email") or "").lower()
        with self.lock:
            found = [o for o in self.owners if o.archived == archived
                     and (not email or o.email.lower() == email)]
        page = found[start:start + limit]
        body: dict[str, object] = {"results": [o.wire() for o in page]}
        if start + limit < len(found):
            after = encode_cursor(start + limit)
            body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return json_response(200, body)
