"""Account.Owner (a User) through simple-salesforce: nested in REST query records, dotted
columns in Bulk API 2.0 CSV; User.Name is compound and follows first and last name."""

from __future__ import annotations

import csv
import io
from typing import Any

from sandbox.salesforce import SalesforceSandbox

ANN = "005000000000001AAA"


def _seed(sandbox: SalesforceSandbox) -> list[str]:
    sandbox.load("User", [{"Id": ANN, "FirstName": "Ann", "LastName": "Archer",
                           "Email": "ann@ourco.example", "Username": "ann@ourco.example",
                           "IsActive": True}])
    return sandbox.load("Account", [{"Name": "Acme", "OwnerId": ANN},
                                    {"Name": "Bravo", "OwnerId": "005000000000404AAA"}])


def test_rest_query_nests_the_owner_and_a_dangling_lookup_is_null(
        sf_sandbox: SalesforceSandbox, sf: Any) -> None:
    acme, bravo = _seed(sf_sandbox)

    records = sf.query("SELECT Id, Owner.Name, Owner.Email FROM Account ORDER BY Name")["records"]

    assert records[0]["Id"] == acme and records[0]["Owner"]["Name"] == "Ann Archer"
    assert records[0]["Owner"]["Email"] == "ann@ourco.example"
    assert records[0]["Owner"]["attributes"]["type"] == "User"
    assert records[1]["Id"] == bravo and records[1]["Owner"] is None
    user = sf.query(f"SELECT Name, Email, IsActive FROM User WHERE Id = '{ANN}'")["records"][0]
    assert (user["Name"], user["IsActive"]) == ("Ann Archer", True)

    sf_sandbox.update("User", ANN, {"LastName": "Archer-Lee"})
    again = sf.query(f"SELECT Owner.Name FROM Account WHERE Id = '{acme}'")["records"][0]
    assert again["Owner"]["Name"] == "Ann Archer-Lee"


def test_bulk_csv_names_relationship_columns_with_dots(
        sf_sandbox: SalesforceSandbox, sf: Any) -> None:
    _seed(sf_sandbox)

    (page,) = list(sf.bulk2.Account.query(
        "SELECT Id, Name, Owner.Name, Owner.Email FROM Account", wait=0))

    rows = list(csv.DictReader(io.StringIO(page)))
    assert list(rows[0]) == ["Id", "Name", "Owner.Name", "Owner.Email"]
    by_name = {r["Name"]: r for r in rows}
    assert (by_name["Acme"]["Owner.Name"], by_name["Acme"]["Owner.Email"]) == (
        "Ann Archer", "ann@ourco.example")
    assert by_name["Bravo"]["Owner.Name"] == ""  # an empty lookup: an empty cell
