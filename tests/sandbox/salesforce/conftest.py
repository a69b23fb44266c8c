"""Fixtures: a fresh Salesforce sandbox per test and simple-salesforce clients bound to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.salesforce import SalesforceSandbox
from sandbox.salesforce.client import salesforce_client

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def sf_sandbox() -> Iterator[SalesforceSandbox]:
    with SalesforceSandbox(seed=7) as sandbox:
        sandbox.clock.freeze(T0)
        yield sandbox


@pytest.fixture
def sf(sf_sandbox: SalesforceSandbox) -> Any:
    """simple-salesforce with a direct session id (no login, no auto-refresh)."""
    return salesforce_client(sf_sandbox)


@pytest.fixture
def load_accounts(sf_sandbox: SalesforceSandbox) -> Callable[[int], list[str]]:
    """Insert n accounts named `Account 00000`...; returns their ids in order."""

    def load(n: int) -> list[str]:
        start = len(sf_sandbox.records("Account", include_deleted=True))
        return sf_sandbox.load("Account", [
            {"Name": f"Account {i:05d}", "Website": f"https://acct{i}.example.com",
             "Type": "Prospect"}
            for i in range(start, start + n)
        ])

    return load
