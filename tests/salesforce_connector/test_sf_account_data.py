"""Account country from the sandbox org, over REST pages and Bulk API 2.0 CSV alike."""

from __future__ import annotations

import pytest
from sf_support import ConnectorFactory, land, later, rows
from sqlalchemy import Engine

from sandbox.salesforce import SalesforceSandbox
from schema.models import Account
from schema.records import Stream


@pytest.mark.parametrize("bulk", [False, True], ids=["rest", "bulk"])
def test_billing_country_lands_on_the_account(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine,
    bulk: bool,
) -> None:
    acme, blank = sandbox.load("Account", [
        {"Name": "Acme", "Website": "acme.com", "BillingCountry": "Germany"},
        {"Name": "Blank", "Website": "blank.com"},
    ])
    connector = make_connector(bulk_threshold=1 if bulk else 10_000)

    land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1)))

    calls = sandbox.traffic.calls
    assert ("bulk2.query.create" in calls) is bulk
    landed = rows(warehouse, Account)
    assert (landed[acme].country, landed[blank].country) == ("Germany", None)
    # Read with the account query itself: no call was added for it.
    assert calls.get("query", 0) + calls.get("composite", 0) == 1
