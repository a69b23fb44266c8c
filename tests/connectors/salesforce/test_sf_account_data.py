"""Account country and owner (name, e-mail) from the sandbox org, over REST pages and Bulk
API 2.0 CSV alike, with the account query itself."""

from __future__ import annotations

import pytest
from sf_support import ConnectorFactory, land, later, rows
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.base import Watermark
from sandbox.salesforce import SalesforceSandbox
from schema.models import Account, CrmOwner
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


def _owners(engine: Engine) -> dict[str, tuple[str | None, str | None]]:
    with Session(engine) as session:
        return {o.owner_id: (o.name, o.email) for o in session.scalars(select(CrmOwner))}


@pytest.mark.parametrize("bulk", [False, True], ids=["rest", "bulk"])
def test_owner_name_and_email_come_with_the_account_query(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine,
    bulk: bool,
) -> None:
    ann, bob = "005000000000001AAA", "005000000000002AAA"
    sandbox.load("User", [
        {"Id": ann, "FirstName": "Ann", "LastName": "Archer", "Email": "ann@ourco.example",
         "Username": "ann@ourco.example", "IsActive": True},
        {"Id": bob, "FirstName": "Bob", "LastName": "Baker", "Email": "bob@ourco.example",
         "Username": "bob@ourco.example", "IsActive": False},  # left: still the owner
    ])
    ids = sandbox.load("Account", [{"Name": f"A{i}", "OwnerId": (ann, bob)[i % 2]}
                                   for i in range(30)])
    connector = make_connector(bulk_threshold=1 if bulk else 10_000)

    land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1)))

    calls = sandbox.traffic.calls
    assert ("bulk2.query.create" in calls) is bulk
    assert calls.get("query", 0) + calls.get("composite", 0) == 1  # no call per owner
    assert _owners(warehouse) == {ann: ("Ann Archer", "ann@ourco.example"),
                                  bob: ("Bob Baker", "bob@ourco.example")}
    assert {rows(warehouse, Account)[i].owner_id for i in ids} == {ann, bob}

    # A rename reaches the warehouse with the next read of any account of that owner.
    sandbox.update("User", ann, {"LastName": "Archer-Lee"})
    sandbox.clock.advance(60)
    sandbox.update("Account", ids[0], {"Website": "a0.example"})
    mark = Watermark(later(1), "")
    land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, mark, later(120)))
    assert _owners(warehouse)[ann] == ("Ann Archer-Lee", "ann@ourco.example")
