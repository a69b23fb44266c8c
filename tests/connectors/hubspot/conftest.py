"""Fixtures: a HubSpot emulator per test and a connector pointed at it through TLS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hs_support import T0, connector_for

from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    """A portal at a frozen instant, 2 ms a call, HubSpot's limits on with a roomy window."""
    with HubSpotSandbox(latency_s=0.002, burst_max=1000, burst_interval_s=10.0,
                        search_per_s=50) as sb:
        sb.clock.freeze(T0)
        yield sb


@pytest.fixture
def connector(sandbox: HubSpotSandbox) -> HubSpotConnector:
    return connector_for(sandbox, search_requests_per_second=40.0)
