"""Builders shared by the HubSpot connector tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.base import Page
from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox
from sync.config import HubSpotConfig
from sync.ingest import land_page

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def hubspot_config(sandbox: HubSpotSandbox, **overrides: Any) -> HubSpotConfig:
    config = HubSpotConfig(enabled=True, name="hubspot", base_url=sandbox.url,
                           access_token=sandbox.access_token, ca_bundle=str(sandbox.ca_file),
                           timeout_seconds=10.0)
    return replace(config, **overrides)


class VirtualTime:
    """Monotonic seconds that pass only when the connector sleeps (its pacing, its retry
    backoff). The emulator's rate windows read the same time, so a test sees exactly how the
    connector spaced its calls, on an idle or a loaded machine, and never waits for it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)


def virtual_time(sandbox: HubSpotSandbox) -> VirtualTime:
    """The sandbox's rate windows on virtual time (created on first use, then shared)."""
    current = sandbox.limits.monotonic
    if isinstance(current, VirtualTime):
        return current
    vt = VirtualTime()
    sandbox.limits.configure(monotonic=vt)
    return vt


def connector_for(sandbox: HubSpotSandbox, **overrides: Any) -> HubSpotConnector:
    """A connector on the sandbox whose pacing and backoff run on the sandbox's virtual time."""
    vt = virtual_time(sandbox)
    connector = HubSpotConnector(hubspot_config(sandbox, **overrides), now=sandbox.clock.now,
                                 sleep=vt.sleep)
    connector.client.pacer.clock = vt
    return connector


def companies(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"name": f"Company {i}", "domain": f"company{i}.example.com",
             "website": f"https://www.company{i}.example.com",
             "lifecyclestage": ("customer", "lead", "opportunity")[i % 3]}
            for i in range(start, start + n)]


def deals(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [{"dealname": f"Deal {i}", "amount": f"{1000 + i}.50", "deal_currency_code": "EUR",
             "closedate": "2024-06-30T00:00:00.000Z", **extra}
            for i in range(start, start + n)]


def land_all(engine: Engine, source: str, pages: Iterable[Page],
             now: Callable[[], datetime] = lambda: T0) -> list[Page]:
    """Land every page in its own transaction, as the engine does; returns the pages."""
    landed: list[Page] = []
    for page in pages:
        with Session(engine) as session, session.begin():
            land_page(session, source, page, now=now())
        landed.append(page)
    return landed


def endpoint_calls(sandbox: HubSpotSandbox, prefix: str) -> int:
    return sum(n for key, n in sandbox.traffic.calls.items() if key.startswith(prefix))
