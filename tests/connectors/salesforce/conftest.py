"""Fixtures: a fresh Salesforce sandbox per test and SalesforceConnector builders bound to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sf_support import T0, ConnectorFactory, Sleeps, config_for

from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceSandbox


@pytest.fixture
def sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(seed=11) as sb:
        sb.clock.freeze(T0)
        yield sb


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_connector(sandbox: SalesforceSandbox, sleeps: Sleeps,
                   tmp_path: Any) -> ConnectorFactory:
    """connector(auth="session", **config overrides) → a connector on the sandbox."""

    def build(auth: str = "session", read_only: bool = False,
              **overrides: Any) -> SalesforceConnector:
        config = replace(config_for(sandbox, auth, tmp_path), **overrides)
        return SalesforceConnector(config, now=lambda: T0.replace(year=T0.year + 1),
                                   sleep=sleeps, echo=sleeps.echo, read_only=read_only)

    return build


@pytest.fixture
def connector(make_connector: ConnectorFactory) -> SalesforceConnector:
    return make_connector()
