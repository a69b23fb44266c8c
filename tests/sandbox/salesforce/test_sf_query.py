"""REST query/queryAll through the unmodified simple-salesforce: paging, SOQL, errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce import SalesforceSandbox

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)  # the frozen clock of the fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_given_5000_accounts_when_query_all_then_every_row_arrives_in_3_pages(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(5000)

    result = sf.query_all("SELECT Id, Name FROM Account ORDER BY Id")

    assert [r["Id"] for r in result["records"]] == ids
    assert result["records"][0]["attributes"]["type"] == "Account"
    assert sf_sandbox.traffic.calls["query"] == 1
    assert sf_sandbox.traffic.calls["queryMore"] == 2


def test_given_5000_accounts_when_query_and_query_more_then_pages_of_2000(
    sf: Any, load_accounts: Callable[[int], list[str]]
) -> None:
    load_accounts(5000)

    first = sf.query("SELECT Id FROM Account")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    third = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)

    assert (first["totalSize"], first["done"], len(first["records"])) == (5000, False, 2000)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    assert len(second["records"]) == 2000
    assert (third["done"], len(third["records"]), "nextRecordsUrl" in third) == (True, 1000, False)
    seen = {r["Id"] for r in first["records"] + second["records"] + third["records"]}
    assert len(seen) == 5000


@pytest.mark.parametrize(("asked", "served"), [(100, 200), (500, 500), (5000, 2000)])
def test_batch_size_header_is_clamped_to_200_2000(
    sf: Any, load_accounts: Callable[[int], list[str]], asked: int, served: int
) -> None:
    load_accounts(2500)

    options = {"Sforce-Query-Options": f"batchSize={asked}"}
    page = sf.query("SELECT Id FROM Account", headers=options)

    assert len(page["records"]) == served


def test_two_long_text_fields_cap_the_batch_at_200(
    sf: Any, load_accounts: Callable[[int], list[str]]
) -> None:
    load_accounts(500)

    page = sf.query("SELECT Id, Ecosystem_Partners__c, Ecosystem_Partner_Contacts__c FROM Account")

    assert len(page["records"]) == 200


def test_count_returns_total_without_records(
    sf: Any, load_accounts: Callable[[int], list[str]]
) -> None:
    load_accounts(42)

    result = sf.query("SELECT COUNT() FROM Account WHERE Type = 'prospect'")

    assert (result["totalSize"], result["records"]) == (42, [])


def test_deleted_rows_only_through_query_all(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(3)
    sf_sandbox.delete(ids[1])

    live = sf.query("SELECT Id, IsDeleted FROM Account")
    every = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)

    assert [r["Id"] for r in live["records"]] == [ids[0], ids[2]]
    assert {r["Id"]: r["IsDeleted"] for r in every["records"]}[ids[1]] is True
    assert every["totalSize"] == 3


def test_tie_safe_cursor_reads_3000_rows_sharing_one_systemmodstamp(
    sf: Any, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(3000)  # frozen clock: one SystemModstamp for all
    seen: list[str] = []
    stamp, last_id = "2024-01-01T00:00:00Z", "000000000000000AAA"

    for _ in range(10):
        soql = (
            "SELECT Id, SystemModstamp FROM Account WHERE SystemModstamp > "
            f"{stamp} OR (SystemModstamp = {stamp} AND Id > '{last_id}') "
            "ORDER BY SystemModstamp ASC, Id ASC LIMIT 1000"
        )
        rows = sf.query(soql)["records"]
        if not rows:
            break
        seen += [r["Id"] for r in rows]
        stamp = rows[-1]["SystemModstamp"].replace("+0000", "Z")
        last_id = rows[-1]["Id"]

    assert seen == ids
    assert rows == []


def test_late_commit_appears_behind_the_cursor(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(2)
    sf_sandbox.clock.advance(60)
    sf_sandbox.update("Account", ids[0], {"Website": "late.example"},
                      modstamp=T0 - timedelta(seconds=30))

    rows = sf.query("SELECT Id, Website, SystemModstamp FROM Account ORDER BY SystemModstamp")

    assert rows["records"][0]["Id"] == ids[0]
    assert rows["records"][0]["SystemModstamp"] == "2024-03-01T11:59:30.000+0000"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Name = 'account 00001'", [1]),
        ("Id = '{id1_15}'", [1]),
        ("Name IN ('Account 00001', 'Account 00003')", [1, 3]),
        ("Name NOT IN ('Account 00001')", [0, 2, 3]),
        ("NOT (Name = 'Account 00001')", [0, 2, 3]),
        ("Name LIKE 'account 0000%' AND Website != null", [0, 1, 2, 3]),
        ("(Name = 'Account 00000' OR Name = 'Account 00003') AND Type = 'Prospect'", [0, 3]),
        ("Ecosystem_Overlap_Count__c > 1.5", [2]),
        ("Ecosystem_Overlap_Count__c = null", [0, 1, 3]),
        ("CreatedDate >= 2024-03-01T12:00:00+00:00", [0, 1, 2, 3]),
        ("CreatedDate > 2024-03-01T12:00:00.000Z", []),
        ("CreatedDate < 2024-03-01T13:00:00+01:00", []),
    ],
)
def test_where_clause_semantics(
    sf: Any,
    sf_sandbox: SalesforceSandbox,
    load_accounts: Callable[[int], list[str]],
    where: str,
    expected: list[int],
) -> None:
    ids = load_accounts(4)
    sf_sandbox.update("Account", ids[2], {"Ecosystem_Overlap_Count__c": 2})

    where = where.replace("{id1_15}", ids[1][:15])
    rows = sf.query(f"SELECT Id FROM Account WHERE {where} ORDER BY Name")["records"]

    assert [r["Id"] for r in rows] == [ids[i] for i in expected]


def test_order_by_desc_with_nulls_and_limit_offset(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(4)
    sf_sandbox.update("Account", ids[1], {"Ecosystem_Overlap_Count__c": 5})
    sf_sandbox.update("Account", ids[2], {"Ecosystem_Overlap_Count__c": 9})

    rows = sf.query(
        "SELECT Id FROM Account ORDER BY Ecosystem_Overlap_Count__c DESC NULLS LAST, Name DESC "
        "LIMIT 3 OFFSET 1"
    )["records"]

    assert [r["Id"] for r in rows] == [ids[1], ids[3], ids[0]]


def test_opportunity_dates_and_parent_relationship(sf: Any, sf_sandbox: SalesforceSandbox) -> None:
    (acct,) = sf_sandbox.load("Account", [{"Name": "Acme", "Website": "acme.com"}])
    opp_ids = sf_sandbox.load("Opportunity", [
        {"Name": "Big", "AccountId": acct, "StageName": "Closed Won", "CloseDate": "2024-02-01",
         "Amount": 1000},
        {"Name": "Orphan", "StageName": "Prospecting", "CloseDate": "2024-04-01"},
    ])

    rows = sf.query(
        "SELECT Id, Account.Website, IsWon, Amount FROM Opportunity "
        "WHERE CloseDate >= 2024-01-01 ORDER BY CloseDate"
    )["records"]

    assert rows[0]["Account"]["Website"] == "acme.com"
    assert (rows[0]["IsWon"], rows[0]["Amount"]) == (True, 1000)
    assert rows[1]["Account"] is None
    assert [r["Id"] for r in rows] == opp_ids


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        ("SELECT Idd FROM Account", "INVALID_FIELD", "No such column 'Idd' on entity 'Account'"),
        ("SELECT Id FROM Acount", "INVALID_TYPE", "sObject type 'Acount' is not supported"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Id = 'c'",
         "MALFORMED_QUERY", "unexpected token: 'OR'"),
        ("SELECT Id FROM Account WHERE SystemModstamp > '2024-01-01'", "INVALID_FIELD",
         "must be of type dateTime"),
        ("SELECT Id FROM Account WHERE Ecosystem_Partners__c = 'x'", "INVALID_FIELD",
         "can not be filtered"),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY", "duplicate field selected"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
        ("SELECT CurrencyIsoCode FROM Account", "INVALID_FIELD", "No such column"),
        ("SELECT Id FROM Account WHERE Id > ''", "INVALID_QUERY_FILTER_OPERATOR",
         "invalid ID field: "),
    ],
)
def test_bad_soql_fails_as_salesforce_does(sf: Any, soql: str, code: str, fragment: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)

    error = info.value.content[0]
    assert error["errorCode"] == code
    assert fragment in error["message"]


def test_removed_field_is_rejected_like_a_missing_custom_field(
    sf: Any, sf_sandbox: SalesforceSandbox
) -> None:
    sf_sandbox.remove_field("Account", "Ecosystem_Overlap_Count__c")

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Ecosystem_Overlap_Count__c FROM Account")

    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    names = [f["name"] for f in sf.Account.describe()["fields"]]
    assert "Ecosystem_Overlap_Count__c" not in names


def test_describe_lists_custom_fields_with_metadata(sf: Any) -> None:
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    opp = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}

    assert fields["Ecosystem_Partners__c"]["type"] == "textarea"
    assert fields["Ecosystem_Partners__c"]["length"] == 32768
    assert fields["Ecosystem_Overlap_Changed_At__c"]["type"] == "datetime"
    assert fields["SystemModstamp"]["updateable"] is False
    assert opp["Partner_Influenced__c"]["type"] == "boolean"
    assert opp["Sourcing_Partner__c"]["length"] == 255
    assert opp["Referring_Partner__c"]["custom"] is True
    assert {o["name"] for o in sf.describe()["sobjects"]} >= {"Account", "Opportunity"}


def test_multi_currency_org_exposes_rates() -> None:
    from sandbox.salesforce.client import salesforce_client

    with SalesforceSandbox(multi_currency=True) as sandbox:
        sandbox.load("Opportunity", [{"Name": "EU", "StageName": "Prospecting",
                                      "CloseDate": "2024-05-01", "CurrencyIsoCode": "EUR"}])
        client = salesforce_client(sandbox)

        rates = client.query(
            "SELECT IsoCode, ConversionRate FROM CurrencyType WHERE IsActive = true")
        dated = client.query("SELECT IsoCode, ConversionRate, StartDate FROM DatedConversionRate "
                             "WHERE IsoCode = 'EUR' ORDER BY StartDate")
        opp = client.query("SELECT CurrencyIsoCode FROM Opportunity")

    assert {r["IsoCode"]: r["ConversionRate"] for r in rates["records"]}["EUR"] == 0.92
    assert [r["StartDate"] for r in dated["records"]] == ["0001-01-01", "2024-01-01"]
    assert opp["records"][0]["CurrencyIsoCode"] == "EUR"


def test_incremental_query_sees_writes_made_after_earlier_reads(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(5)
    soql = ("SELECT Id FROM Account WHERE SystemModstamp > 2024-03-01T12:00:00Z "
            "ORDER BY SystemModstamp, Id")
    assert sf.query(soql)["records"] == []
    sf_sandbox.clock.advance(5)
    sf.Account.update(ids[3], {"Website": "b.example"})
    sf_sandbox.clock.advance(5)
    sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "id": ids[1], "Website": "a.example"}]})
    sf_sandbox.delete(ids[4])

    live = [r["Id"] for r in sf.query(soql)["records"]]
    every = [r["Id"] for r in sf.query_all(soql, include_deleted=True)["records"]]

    assert live == [ids[3], ids[1]]
    assert every == [ids[3], ids[1], ids[4]]


def test_get_record_and_replication_endpoints(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(3)
    sf_sandbox.clock.advance(60)
    sf_sandbox.update("Account", ids[0], {"Website": "changed.example"})
    sf_sandbox.delete(ids[1])
    start, end = T0 + timedelta(seconds=30), T0 + timedelta(hours=1)

    record = sf.Account.get(ids[0])
    updated = sf.Account.updated(start, end)
    deleted = sf.Account.deleted(start, end)

    assert record["Website"] == "changed.example"
    assert record["attributes"]["url"].endswith(ids[0])
    assert updated["ids"] == [ids[0]]
    assert [d["id"] for d in deleted["deletedRecords"]] == [ids[1]]


def test_an_eleventh_open_cursor_releases_the_oldest(
    sf: Any, load_accounts: Callable[[int], list[str]]
) -> None:
    load_accounts(400)
    options = {"Sforce-Query-Options": "batchSize=200"}
    first = sf.query("SELECT Id FROM Account", headers=options)
    for _ in range(10):
        sf.query("SELECT Id FROM Account", headers=options)

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)

    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_undelete_brings_a_row_back_with_a_new_systemmodstamp(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    (rid,) = load_accounts(1)
    sf_sandbox.delete(rid)
    sf_sandbox.clock.advance(10)

    sf_sandbox.undelete(rid)

    rows = sf.query("SELECT Id, IsDeleted, SystemModstamp FROM Account")["records"]
    assert [(r["Id"], r["IsDeleted"], r["SystemModstamp"]) for r in rows] == [
        (rid, False, "2024-03-01T12:00:10.000+0000")]
