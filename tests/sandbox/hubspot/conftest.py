"""Fixtures: a HubSpot sandbox per test and a real hubspot-api-client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hubspot import HubSpot
from hubspot_support import T0

from sandbox.hubspot import HubSpotSandbox
from sandbox.hubspot.client import hubspot_client


@pytest.fixture
def sandbox() -> Iterator[HubSpotSandbox]:
    """A fresh portal with rate limits off (tests that exercise limits build their own)."""
    with HubSpotSandbox(rate_limits=False) as sb:
        sb.clock.freeze(T0)
        yield sb


@pytest.fixture
def client(sandbox: HubSpotSandbox) -> HubSpot:
    return hubspot_client(sandbox)
