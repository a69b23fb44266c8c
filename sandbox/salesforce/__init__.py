"""A wire-faithful local emulator of the Salesforce REST and Bulk 2.0 APIs.

    with SalesforceSandbox() as sf:
        sf.load("Account", [{"Name": "Acme", "Website": "acme.com"}])
        client = salesforce_client(sf)          # sandbox.salesforce.client
        client.query("SELECT Id, Name FROM Account")

See README.md in this package for what is emulated and what is not.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox.common import Faults, HttpsServer, Traffic, make_tls
from sandbox.salesforce import schema
from sandbox.salesforce.app import SalesforceApp
from sandbox.salesforce.auth import Credentials, Tokens
from sandbox.salesforce.bulk import Bulk
from sandbox.salesforce.clock import Clock
from sandbox.salesforce.schema import FieldDef
from sandbox.salesforce.store import Record, Store, WriteLogEntry

__all__ = ["FieldDef", "SalesforceSandbox", "WriteLogEntry"]

API_VERSION = "59.0"


class SalesforceSandbox:
    """An emulated org served over HTTPS on 127.0.0.1 while the context is open.

    Fault knobs (`faults.configure(rate_limit=.., concurrent_limit=.., unavailable=.., drop=..,
    lock=..)`) fire with the given probability per eligible request, seeded for
    reproducibility; `faults.next(kind=n)` fires a kind on its next n requests.
    `echo_500`, `echo_400` and `echo_401` answer any request (logins included) with that status
    and an error message quoting the request's Authorization header and body, credentials
    and all.
    """

    api_version = API_VERSION

    def __init__(
        self,
        *,
        daily_limit: int = 100_000,
        latency_s: float = 0.0,
        multi_currency: bool = False,
        seed: int = 0,
        credentials: Credentials | None = None,
        tls_dir: Path | None = None,
        port: int = 0,
    ) -> None:
        self.store = Store(multi_currency=multi_currency)
        self.traffic = Traffic(latency_s=latency_s)
        # The subset of API calls that carried writes, by the same keys as `traffic`.
        self.write_calls = Traffic()
        self.faults = Faults(seed=seed)
        self.tokens = Tokens(org_id=self.store.org_id, credentials=credentials or Credentials())
        self.daily_limit = daily_limit
        # Fields created through the Metadata API are visible at once unless this is False, in
        # which case (as in a real org) a PermissionSet must grant them first.
        self.grant_new_fields = True
        self.bulk = Bulk(self)
        self.app = SalesforceApp(self)
        self._tls_dir = tls_dir
        self._own_dir: Path | None = None
        self._server: HttpsServer | None = None
        self._port = port  # 0: a free port
        self.access_token = self.tokens.issue()
        self.ca_file = Path()
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SalesforceSandbox:
        if self._tls_dir is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="sf-sandbox-"))
        tls = make_tls(self._tls_dir or self._own_dir or Path())
        self.ca_file = tls.ca_file
        self._server = HttpsServer(self.app, self.traffic, tls, self.clock.now,
                                   self._port).start()
        self.url = self._server.url
        self.tokens.origin = self.url
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self) -> SalesforceSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ settings
    @property
    def credentials(self) -> Credentials:
        return self.tokens.credentials

    @property
    def username(self) -> str:
        return self.credentials.username

    @property
    def password(self) -> str:
        return self.credentials.password

    @property
    def security_token(self) -> str:
        return self.credentials.security_token

    @property
    def client_id(self) -> str:
        return self.credentials.client_id

    @property
    def client_secret(self) -> str:
        return self.credentials.client_secret

    @property
    def org_id(self) -> str:
        return self.store.org_id

    @property
    def latency_s(self) -> float:
        return self.traffic.latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        self.traffic.latency_s = value

    @property
    def clock(self) -> Clock:
        return self.store.clock

    @property
    def write_log(self) -> list[WriteLogEntry]:
        return self.store.write_log

    @property
    def api_usage(self) -> int:
        """API calls counted against the daily allocation so far."""
        return self.app.api_used

    @api_usage.setter
    def api_usage(self, value: int) -> None:
        self.app.api_used = value

    def api_writes(self) -> list[WriteLogEntry]:
        """Write-log entries made through the API (not by the sandbox's own helpers)."""
        return [e for e in self.store.write_log if e.via != "sandbox"]

    def expire_token_after(self, n_calls: int | None) -> None:
        """Every access token (current and future) expires after n more API calls; None: never."""
        self.tokens.expire_after(n_calls)

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far (logins still work and issue fresh ones)."""
        self.tokens.revoke_all()

    def fail_next_logins(self, n: int = 1) -> None:
        self.tokens.fail_logins = n

    @property
    def bulk_polls_until_complete(self) -> int:
        """How many polls a Bulk job answers InProgress before JobComplete (0: at once)."""
        return self.bulk.polls_until_complete

    @bulk_polls_until_complete.setter
    def bulk_polls_until_complete(self, value: int) -> None:
        self.bulk.polls_until_complete = value

    def fail_next_bulk_query(self, message: str = "InternalServerError: retry later") -> None:
        """The next Bulk 2.0 query job ends in state Failed with this errorMessage."""
        self.bulk.fail_next_query = message

    # ------------------------------------------------------------------ data helpers
    def load(self, object_name: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        return self.store.load(object_name, rows)

    def update(
        self,
        object_name: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        modstamp: datetime | None = None,
    ) -> Record:
        """Change a record as a user would (no API validation, no API call counted).

        `modstamp` sets SystemModstamp explicitly, e.g. earlier than rows already read, to
        simulate a transaction that committed late.
        """
        obj = self._obj(object_name)
        defs = self.store.fields[obj]
        unknown = [k for k in values if k not in defs]
        if unknown:
            raise KeyError(f"{obj} has no field(s) {unknown}")
        clean = {k: schema.coerce(defs[k], v) for k, v in values.items()}
        return self.store.apply(obj, record_id, clean, via="sandbox", modstamp=modstamp)

    def delete(self, record_id: str) -> None:
        found = self.store.find(record_id)
        if found is None:
            raise KeyError(record_id)
        self.store.soft_delete(found[0], found[1]["Id"], via="sandbox")

    def undelete(self, record_id: str) -> None:
        """Restore a soft-deleted record from the Recycle Bin (SystemModstamp moves on)."""
        found = self.store.find(record_id)
        if found is None:
            raise KeyError(record_id)
        self.store.soft_delete(found[0], found[1]["Id"], via="sandbox", deleted=False)

    def close_opportunity(self, record_id: str, won: bool = True) -> Record:
        stage = "Closed Won" if won else "Closed Lost"
        today = self.clock.now().date().isoformat()
        return self.update("Opportunity", record_id, {"StageName": stage, "CloseDate": today})

    def reopen_opportunity(self, record_id: str, stage: str = "Negotiation/Review") -> Record:
        return self.update("Opportunity", record_id, {"StageName": stage})

    def get(self, object_name: str, record_id: str) -> Record | None:
        """A copy of the stored record (wire-form values), or None."""
        rec = self.store.get(object_name, record_id)
        return dict(rec) if rec is not None else None

    def records(self, object_name: str, include_deleted: bool = False) -> list[Record]:
        """Copies of the object's records in insertion order."""
        return [dict(r) for r in self.store.records(object_name, include_deleted)]

    # ------------------------------------------------------------------ metadata helpers
    def describe_field(self, object_name: str, field: str) -> FieldDef | None:
        return self.store.fields[self._obj(object_name)].get(field)

    def add_field(self, object_name: str, field: FieldDef) -> None:
        self.store.add_field(self._obj(object_name), field)

    def remove_field(self, object_name: str, field: str) -> None:
        self.store.remove_field(self._obj(object_name), field)

    def set_field_updateable(self, object_name: str, field: str, updateable: bool) -> None:
        self.store.set_field_updateable(self._obj(object_name), field, updateable)

    def connection_info(self) -> dict[str, str]:
        """What a user needs to point a client at this sandbox (printed by the CLI)."""
        return {
            "instance_url": self.url,
            "access_token": self.access_token,
            "ca_file": str(self.ca_file),
            "api_version": self.api_version,
            "username": self.username,
            "password": self.password,
            "security_token": self.security_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def _obj(self, name: str) -> str:
        canonical = self.store.object_name(name)
        if canonical is None:
            raise KeyError(f"unknown object {name!r}")
        return canonical
