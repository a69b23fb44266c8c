"""Builders shared by the Salesforce connector tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.base import Page, Watermark
from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceSandbox
from sandbox.salesforce.client import _private_key_pem
from schema.models import Account, Opportunity
from schema.records import Stream
from sync.config import SalesforceConfig
from sync.ingest import land_page, read_watermark

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
ConnectorFactory = Callable[..., SalesforceConnector]


class Sleeps(list[float]):
    """A sleep function that records instead of sleeping, and an echo that records text."""

    def __init__(self) -> None:
        super().__init__()
        self.echoed: list[str] = []

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    def echo(self, text: str) -> None:
        self.echoed.append(text)


def config_for(sandbox: SalesforceSandbox, auth: str, tmp: Path) -> SalesforceConfig:
    base = SalesforceConfig(enabled=True, auth=auth, ca_bundle=str(sandbox.ca_file),  # type: ignore[arg-type]
                            api_version=sandbox.api_version)
    from dataclasses import replace

    if auth == "session":
        return replace(base, instance_url=sandbox.url, session_id=sandbox.access_token)
    if auth == "password":
        return replace(base, login_url=sandbox.url, username=sandbox.username,
                       password=sandbox.password, security_token=sandbox.security_token)
    if auth == "client_credentials":
        return replace(base, instance_url=sandbox.url, client_id=sandbox.client_id,
                       client_secret=sandbox.client_secret)
    if auth == "jwt":
        key = tmp / "server.key"
        key.write_text(_private_key_pem())
        return replace(base, login_url=sandbox.url, client_id=sandbox.client_id,
                       username=sandbox.username, private_key_file=str(key))
    raise ValueError(auth)


def load_accounts(sandbox: SalesforceSandbox, n: int, **extra: Any) -> list[str]:
    start = len(sandbox.records("Account", include_deleted=True))
    return sandbox.load("Account", [
        {"Name": f"Account {i:05d}", "Website": f"https://acct{i}.example.com",
         "Type": "Prospect", **extra}
        for i in range(start, start + n)
    ])


def load_opportunities(sandbox: SalesforceSandbox, account_ids: Iterable[str]) -> list[str]:
    return sandbox.load("Opportunity", [
        {"Name": f"Deal {i}", "AccountId": acc, "StageName": "Prospecting", "Amount": 1000 + i,
         "CloseDate": "2024-06-30", "LeadSource": "Web"}
        for i, acc in enumerate(account_ids)
    ])


def land(engine: Engine, source: str, pages: Iterable[Page], now: datetime = T0) -> int:
    """Land each page in its own transaction, as the tick does; returns records landed."""
    total = 0
    for page in pages:
        with Session(engine) as session, session.begin():
            total += land_page(session, source, page, now=now).records
    return total


def watermark(engine: Engine, source: str, stream: Stream) -> Watermark | None:
    with Session(engine) as session:
        return read_watermark(session, source, stream)


def rows(engine: Engine, model: type[Account] | type[Opportunity]) -> dict[str, Any]:
    with Session(engine) as session:
        found: list[Any] = list(session.scalars(select(model)))
        return {r.external_id: r for r in found}


def tick(connector: SalesforceConnector, engine: Engine, stream: Stream, until: datetime,
         backfill: bool = False) -> int:
    since = None if backfill else watermark(engine, connector.name, stream)
    return land(engine, connector.name, connector.pull(stream, since, until))


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)
