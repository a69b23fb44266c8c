"""Our accounts' owners: the CRM user's name and e-mail, once per (source, owner id).

The connectors read them with the accounts (Salesforce `Owner.Name` / `Owner.Email` on the
account query, HubSpot's owners API behind `hubspot_owner_id`) and ingest lands them here,
next to the accounts of the same page. A person is one row however many accounts they own:
the latest name and e-mail seen on any of their accounts holds for all of them.

Owner e-mails are personal data. Inside ecosync they are shown to our own people (the web
view); they leave only for a partner we share a population with in full (the exchange
export, private matching's contacts: `sync.sharing` decides), and no log line carries a name
or an address (counts only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, func, select
from sqlalchemy.orm import Session

from schema.models import Account, CrmOwner
from schema.records import AccountRecord
from schema.upsert import bulk_upsert

KEY = ["source", "owner_id"]
_TEXT = 255  # the columns' length

# The join from an account to its owner (an account whose owner is unknown keeps a NULL).
OWNER_OF_ACCOUNT: ColumnElement[bool] = and_(CrmOwner.source == Account.source,
                                             CrmOwner.owner_id == Account.owner_id)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.replace("\x00", "").strip()[:_TEXT]
    return text or None


@dataclass
class OwnerBatch:
    """The owners named on one page of accounts, the last reading of each winning."""

    seen: dict[tuple[str, str], tuple[str | None, str | None]] = field(default_factory=dict)

    def add(self, rec: AccountRecord) -> None:
        # An owner the CRM would not describe (e.g. HubSpot without the owners scope) is left
        # as it is: nothing known is not a change.
        name, email = _clean(rec.owner_name), _clean(rec.owner_email)
        if rec.owner_id and (name or email) and len(rec.owner_id) <= 64:
            self.seen[(rec.source, rec.owner_id)] = (name, email)

    def land(self, session: Session, now: datetime) -> int:
        """Upsert the owners seen; a row whose name and e-mail did not change is untouched."""
        if not self.seen:
            return 0
        rows = [{"source": source, "owner_id": owner_id, "name": name, "email": email,
                 "updated_at": now}
                for (source, owner_id), (name, email) in self.seen.items()]
        return bulk_upsert(session, CrmOwner, rows, KEY, ["name", "email"],
                           only_if_changed=True, update_expressions=_touch)


def _touch(table: Table, excluded: Any) -> dict[str, Any]:
    return {"updated_at": excluded.updated_at}


def owner_label(name: Any, owner_id: Any) -> Any:
    """SQL: the owner's name, else their CRM id (an owner the CRM did not describe)."""
    return func.coalesce(name, owner_id)


def owner_choices(session: Session) -> list[tuple[str, str]]:
    """(owner id, name) of every owner whose name is known, by name: the web's owner filter
    (one read of this small table, not a pass over the accounts)."""
    found = session.execute(select(CrmOwner.owner_id, CrmOwner.name)
                            .where(CrmOwner.name.is_not(None))
                            .order_by(CrmOwner.name, CrmOwner.owner_id))
    return [(str(owner_id), str(name)) for owner_id, name in found]
