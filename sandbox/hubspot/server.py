"""HubSpotSandbox: the emulated portal served over HTTPS, with helpers for tests and seeds."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox.common import HttpsServer, Traffic, make_tls
from sandbox.hubspot.app import HubSpotApp
from sandbox.hubspot.auth import Auth, HubSpotFaults
from sandbox.hubspot.clock import Clock, iso, to_ms
from sandbox.hubspot.currencies import Currencies
from sandbox.hubspot.limits import RateLimits
from sandbox.hubspot.owners import Owners
from sandbox.hubspot.schema import LOST_STAGE, OBJECT_ALIASES, WON_STAGE, PropertyDef
from sandbox.hubspot.store import Portal, Rec, WriteLogEntry


def _object_type(name: str) -> str:
    object_type = OBJECT_ALIASES.get(name)
    if object_type is None:
        raise ValueError(f"unknown object type {name!r}: use 'companies' or 'deals'")
    return object_type


class HubSpotSandbox:
    """A HubSpot CRM portal on https://127.0.0.1:<port>; use as a context manager.

    ``url`` goes to ``HubSpot(host=...)`` and ``ca_file`` to ``ssl_ca_cert``; authenticate
    with ``access_token`` (a private app token) or OAuth (``client_id``, ``client_secret``,
    ``refresh_token`` against ``/oauth/v1/token``).
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        search_index_lag_s: float = 0.0,
        burst_max: int = 100,
        burst_interval_s: float = 10.0,
        search_per_s: int = 5,
        daily_max: int = 250_000,
        rate_limits: bool = True,
        fault_seed: int = 0,
        directory: Path | None = None,
        port: int = 0,
    ) -> None:
        self.clock = Clock()
        self.portal = Portal(self.clock, search_index_lag_s)
        self.traffic = Traffic(latency_s=latency_s)
        self.faults = HubSpotFaults(seed=fault_seed)
        self.limits = RateLimits(burst_max=burst_max, burst_interval_s=burst_interval_s,
                                 search_per_s=search_per_s, daily_max=daily_max,
                                 enabled=rate_limits)
        self.auth = Auth(self.clock, self.faults)
        self._own_dir = directory is None
        self._dir = Path(tempfile.mkdtemp(prefix="hubspot-sandbox-")) if directory is None \
            else directory
        self._tls = make_tls(self._dir)
        self.currencies = Currencies(self.clock)
        self.owners = Owners(self.clock)
        self.app = HubSpotApp(self.portal, self.auth, self.limits, self.faults, self.traffic,
                              self.currencies, self.owners)
        self._server: HttpsServer | None = None
        self._port = port  # 0: a free port

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> HubSpotSandbox:
        if self._server is None:
            self._server = HttpsServer(self.app, self.traffic, self._tls,
                                       self.clock.now, self._port).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> HubSpotSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- connection details --------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.url

    @property
    def ca_file(self) -> Path:
        return self._tls.ca_file

    @property
    def access_token(self) -> str:
        return self.auth.access_token

    @property
    def client_id(self) -> str:
        return self.auth.client_id

    @property
    def client_secret(self) -> str:
        return self.auth.client_secret

    @property
    def refresh_token(self) -> str:
        return self.auth.refresh_token

    def connection_info(self) -> dict[str, str]:
        """What a user needs to point a client at this portal (for ``sandbox serve``)."""
        return {
            "url": self.url,
            "ca_file": str(self.ca_file),
            "access_token": self.access_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "token_url": f"{self.url}/oauth/v1/token",
        }

    def issue_oauth_token(self) -> str:
        """A fresh OAuth access token, as if the refresh had just happened."""
        return self.auth.issue()

    # ---- knobs ---------------------------------------------------------------------------

    @property
    def latency_s(self) -> float:
        return self.traffic.latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        self.traffic.latency_s = value

    @property
    def search_index_lag_s(self) -> float:
        return self.portal.search_index_lag_s

    @search_index_lag_s.setter
    def search_index_lag_s(self, value: float) -> None:
        self.portal.search_index_lag_s = value

    @property
    def write_log(self) -> list[WriteLogEntry]:
        with self.portal.lock:
            return list(self.portal.write_log)

    # ---- data helpers --------------------------------------------------------------------

    def load(self, object_type: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Seed records; ``id`` (numeric string) optional; returns the ids in order."""
        return self.portal.load(_object_type(object_type), rows)

    def get(self, object_type: str, object_id: str) -> dict[str, str | None]:
        """The live properties of a record, archived or not (KeyError when absent)."""
        rec = self.portal.get(_object_type(object_type), str(object_id))
        if rec is None:
            raise KeyError(f"{object_type} {object_id}")
        return dict(rec.props)

    def record(self, object_type: str, object_id: str) -> Rec:
        rec = self.portal.get(_object_type(object_type), str(object_id))
        if rec is None:
            raise KeyError(f"{object_type} {object_id}")
        return rec

    def records(self, object_type: str, archived: bool = False) -> list[Rec]:
        return list(self.portal.records(_object_type(object_type), archived))

    def update(self, object_type: str, object_id: str, properties: Mapping[str, Any]) -> Rec:
        """Change properties as a user would (validated; advances hs_lastmodifieddate)."""
        object_type = _object_type(object_type)
        with self.portal.lock:
            self.record(object_type, object_id)
            values = self.portal.validate(object_type, properties)
            return self.portal.write(object_type, str(object_id), values, "helper")

    def archive(self, object_type: str, object_id: str) -> None:
        object_type = _object_type(object_type)
        with self.portal.lock:
            self.record(object_type, object_id)
            self.portal.archive(object_type, str(object_id))

    def restore(self, object_type: str, object_id: str) -> None:
        object_type = _object_type(object_type)
        with self.portal.lock:
            self.record(object_type, object_id)
            self.portal.restore(object_type, str(object_id))

    def associate(self, deal_id: str, company_id: str, primary: bool = True) -> None:
        self.record("deals", deal_id)
        self.record("companies", company_id)
        self.portal.associate(str(deal_id), str(company_id), primary)

    def dissociate(self, deal_id: str, company_id: str) -> None:
        self.portal.dissociate(str(deal_id), str(company_id))

    def close_deal(self, deal_id: str, won: bool = True, at: datetime | None = None) -> Rec:
        """Move a deal to closedwon/closedlost; sets closedate (now unless ``at``)."""
        closed = iso(self.clock.now_ms() if at is None else to_ms(at))
        return self.update("deals", deal_id,
                           {"dealstage": WON_STAGE if won else LOST_STAGE, "closedate": closed})

    def reopen_deal(self, deal_id: str, stage: str = "contractsent") -> Rec:
        return self.update("deals", deal_id, {"dealstage": stage})

    def define_property(
        self, object_type: str, name: str, type: str = "string",  # HubSpot's own name for it
        field_type: str = "text", label: str | None = None, group: str | None = None,
    ) -> None:
        """Create a custom property directly (as an admin would in the UI)."""
        object_type = _object_type(object_type)
        now = self.clock.now_ms()
        default_group = "companyinformation" if object_type == "companies" else "dealinformation"
        with self.portal.lock:
            self.portal.properties[object_type][name] = PropertyDef(
                name=name, label=label or name, type=type, field_type=field_type,
                group_name=group or default_group, read_only_definition=False,
                hubspot_defined=False, created_ms=now, updated_ms=now)

    def remove_property(self, object_type: str, name: str) -> None:
        """Delete a property definition (values stay stored but are no longer returned)."""
        with self.portal.lock:
            del self.portal.properties[_object_type(object_type)][name]

    def set_property_read_only(self, object_type: str, name: str, read_only: bool = True) -> None:
        with self.portal.lock:
            self.portal.properties[_object_type(object_type)][name].read_only_value = read_only

    def property_names(self, object_type: str) -> list[str]:
        with self.portal.lock:
            return list(self.portal.properties[_object_type(object_type)])

    # ---- currencies and scopes -------------------------------------------------------------

    def add_exchange_rate(self, currency: str, conversion_rate: Decimal | float | str,
                          effective_at: datetime | None = None) -> str:
        """A dated rate: company-currency units per one `currency`, from `effective_at`."""
        return self.currencies.add(currency, conversion_rate, effective_at)

    def add_owner(self, first_name: str, last_name: str, email: str, *,
                  owner_id: str | None = None, archived: bool = False) -> str:
        """A user records can be assigned to (`hubspot_owner_id`); returns the owner id."""
        return self.owners.add(first_name, last_name, email, owner_id=owner_id,
                               archived=archived)

    def update_owner(self, owner_id: str, **changes: Any) -> None:
        """Rename, re-address or deactivate (`archived=True`) an owner."""
        self.owners.update(owner_id, **changes)

    def revoke_scope(self, scope: str) -> None:
        """The app loses `scope`: calls that need it answer 403 MISSING_SCOPES (checked for
        `settings.currencies.read` and `crm.objects.owners.read`)."""
        self.auth.revoked.add(scope)
