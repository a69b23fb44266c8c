"""Writes through the unmodified simple-salesforce: single PATCH, sObject Collections, Composite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from sandbox.salesforce import SalesforceSandbox
from sandbox.salesforce.store import id18


def _collection(ids: list[str], **values: Any) -> dict[str, Any]:
    return {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, "id": i, **values} for i in ids],
    }


def test_single_patch_returns_204_and_bumps_systemmodstamp(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    (rid,) = load_accounts(1)
    sf_sandbox.clock.advance(90)

    status = sf.Account.update(rid, {"Ecosystem_Overlap_Count__c": 3,
                                     "Ecosystem_Overlap_Changed_At__c": "2024-03-01T12:01:30Z"})

    rec = sf_sandbox.get("Account", rid)
    assert status == 204
    assert rec is not None
    assert rec["Ecosystem_Overlap_Count__c"] == 3.0
    assert rec["Ecosystem_Overlap_Changed_At__c"] == "2024-03-01T12:01:30.000+0000"
    assert rec["SystemModstamp"] == "2024-03-01T12:01:30.000+0000"
    assert [(e.field, e.old, e.new, e.via) for e in sf_sandbox.api_writes()] == [
        ("Ecosystem_Overlap_Count__c", None, 3.0, "rest"),
        ("Ecosystem_Overlap_Changed_At__c", None, "2024-03-01T12:01:30.000+0000", "rest"),
    ]


def test_single_patch_errors(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(2)
    sf_sandbox.delete(ids[1])

    with pytest.raises(SalesforceMalformedRequest) as unknown:
        sf.Account.update(ids[0], {"Nope__c": 1})
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        sf.Account.update(ids[0], {"SystemModstamp": "2024-01-01T00:00:00Z"})
    with pytest.raises(SalesforceResourceNotFound) as deleted:
        sf.Account.update(ids[1], {"Website": "x"})

    assert unknown.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Nope__c' on sobject of type Account" in unknown.value.content[0][
        "message"]
    assert read_only.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert deleted.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert sf_sandbox.api_writes() == []


def test_collection_of_201_records_is_rejected_whole(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(201)

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("composite/sobjects", method="PATCH", json=_collection(ids, Website="x"))

    assert info.value.status == 400
    assert info.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert sf_sandbox.api_writes() == []


def test_collection_reports_partial_failure_per_record(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(3)
    sf_sandbox.delete(ids[1])
    body = _collection(ids, Ecosystem_Partners__c="Acme (customer)")
    body["records"].append({"attributes": {"type": "Account"}, "id": ids[2],
                            "Ecosystem_Partners__c": "x" * 40000})

    results = sf.restful("composite/sobjects", method="PATCH", json=body)

    assert results[0] == {"id": ids[0], "success": True, "errors": []}
    assert results[1]["success"] is False
    assert results[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert results[2]["success"] is True
    assert results[3]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert [e.id for e in sf_sandbox.api_writes()] == [ids[0], ids[2]]


def test_collection_with_read_only_field_fails_each_record(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(2)
    sf_sandbox.set_field_updateable("Account", "Ecosystem_Overlap_Count__c", False)

    results = sf.restful("composite/sobjects", method="PATCH",
                         json=_collection(ids, Ecosystem_Overlap_Count__c=2))

    assert [r["errors"][0]["statusCode"] for r in results] == [
        "INVALID_FIELD_FOR_INSERT_UPDATE"] * 2
    assert results[0]["errors"][0]["fields"] == ["Ecosystem_Overlap_Count__c"]


def test_collection_unknown_field_rejects_the_request(
    sf: Any, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(2)

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("composite/sobjects", method="PATCH", json=_collection(ids, Bogus__c="x"))

    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_all_or_none_rolls_back_every_record(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(3)
    sf_sandbox.delete(ids[2])
    body = _collection(ids, Website="new.example")
    body["allOrNone"] = True

    results = sf.restful("composite/sobjects", method="PATCH", json=body)

    assert [r["success"] for r in results] == [False, False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[2]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    rec = sf_sandbox.get("Account", ids[0])
    assert rec is not None
    assert rec["Website"] != "new.example"
    assert sf_sandbox.api_writes() == []


def test_lock_fault_fails_records_with_unable_to_lock_row(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(50)
    sf_sandbox.faults.configure(lock=0.5)

    results = sf.restful("composite/sobjects", method="PATCH", json=_collection(ids, Type="Other"))

    locked = [r for r in results if not r["success"]]
    assert 10 < len(locked) < 40
    assert {r["errors"][0]["statusCode"] for r in locked} == {"UNABLE_TO_LOCK_ROW"}
    assert len(sf_sandbox.api_writes()) == 50 - len(locked)


def test_composite_with_five_collections_of_200_is_one_api_call(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(1000)
    before = sf_sandbox.api_usage
    subrequests = [
        {"method": "PATCH", "url": "/services/data/v59.0/composite/sobjects",
         "referenceId": f"chunk{n}",
         "body": _collection(ids[n * 200:(n + 1) * 200], Ecosystem_Overlap_Count__c=n)}
        for n in range(5)
    ]

    out = sf.restful("composite", method="POST",
                     json={"allOrNone": False, "compositeRequest": subrequests})

    responses = out["compositeResponse"]
    assert [r["httpStatusCode"] for r in responses] == [200] * 5
    assert all(item["success"] for r in responses for item in r["body"])
    assert sf_sandbox.api_usage - before == 1
    assert sf_sandbox.traffic.calls["composite"] == 1
    assert sf_sandbox.traffic.calls["composite/sobjects"] == 0
    assert len(sf_sandbox.api_writes()) == 1000
    assert sf.api_usage["api-usage"].used == sf_sandbox.api_usage


def test_composite_limits(sf: Any, load_accounts: Callable[[int], list[str]]) -> None:
    ids = load_accounts(1)
    query = {"method": "GET", "url": "/services/data/v59.0/query/?q=SELECT+Id+FROM+Account"}
    patch = {"method": "PATCH", "url": f"/services/data/v59.0/sobjects/Account/{ids[0]}",
             "body": {"Website": "w"}}

    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite", method="POST", json={"compositeRequest": [
            {**query, "referenceId": f"q{n}"} for n in range(6)]})
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite", method="POST", json={"compositeRequest": [
            {**patch, "referenceId": f"p{n}"} for n in range(26)]})


def test_composite_references_and_all_or_none(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(2)
    sf_sandbox.delete(ids[1])
    request = {"allOrNone": True, "compositeRequest": [
        {"method": "GET", "referenceId": "q",
         "url": "/services/data/v59.0/query/?q=SELECT+Id+FROM+Account+LIMIT+1"},
        {"method": "PATCH", "referenceId": "first",
         "url": "/services/data/v59.0/sobjects/Account/@{q.records[0].Id}",
         "body": {"Website": "ref.example"}},
        {"method": "PATCH", "referenceId": "gone",
         "url": f"/services/data/v59.0/sobjects/Account/{ids[1]}", "body": {"Website": "x"}},
    ]}

    out = sf.restful("composite", method="POST", json=request)["compositeResponse"]

    assert [r["httpStatusCode"] for r in out] == [400, 400, 404]
    assert out[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert out[2]["body"][0]["errorCode"] == "ENTITY_IS_DELETED"
    rec = sf_sandbox.get("Account", ids[0])
    assert rec is not None
    assert rec["Website"] != "ref.example"

    request["allOrNone"] = False
    out = sf.restful("composite", method="POST", json=request)["compositeResponse"]

    assert [r["httpStatusCode"] for r in out] == [200, 204, 404]
    rec = sf_sandbox.get("Account", ids[0])
    assert rec is not None
    assert rec["Website"] == "ref.example"


def test_opportunity_stage_drives_closed_and_won(
    sf: Any, sf_sandbox: SalesforceSandbox
) -> None:
    (oid,) = sf_sandbox.load("Opportunity", [
        {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2024-06-30", "Amount": 5}])

    sf_sandbox.close_opportunity(oid, won=False)
    closed = sf.query(f"SELECT IsClosed, IsWon, StageName FROM Opportunity WHERE Id = '{oid}'")
    sf_sandbox.reopen_opportunity(oid)
    sf.Opportunity.update(oid, {"Partner_Influenced__c": True, "Sourcing_Partner__c": "Globex"})
    reopened = sf.query(
        f"SELECT IsClosed, Partner_Influenced__c FROM Opportunity WHERE Id = '{oid}'")

    assert closed["records"][0]["IsClosed"] is True
    assert closed["records"][0]["IsWon"] is False
    assert reopened["records"][0]["IsClosed"] is False
    assert reopened["records"][0]["Partner_Influenced__c"] is True


def test_ids_are_checked_and_15_char_ids_accepted(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    (rid,) = load_accounts(1)
    (opp,) = sf_sandbox.load("Opportunity", [
        {"Name": "D", "StageName": "Prospecting", "CloseDate": "2024-06-30"}])

    results = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Account"}, "id": rid[:15], "Website": "short.example"},
        {"attributes": {"type": "Account"}, "id": opp, "Website": "x"},
        {"attributes": {"type": "Account"}, "id": "001bogus", "Website": "x"},
    ]})

    assert results[0] == {"id": rid, "success": True, "errors": []}
    assert [r["errors"][0]["statusCode"] for r in results[1:]] == ["MALFORMED_ID"] * 2


@pytest.mark.parametrize(("id15", "id18_"), [
    ("001D000000IRFma", "001D000000IRFmaIAH"),  # the example id of the REST query docs
    ("01gD0000002HU6K", "01gD0000002HU6KIAW"),  # the example query locator
])
def test_case_safe_id_suffix(id15: str, id18_: str) -> None:
    assert id18(id15) == id18_


def test_datetime_values_lose_their_milliseconds_as_in_salesforce(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    (rid,) = load_accounts(1)

    sf.Account.update(rid, {"Ecosystem_Overlap_Changed_At__c": "2024-03-01T12:00:07.891+01:00"})

    row = sf.query(f"SELECT Ecosystem_Overlap_Changed_At__c FROM Account WHERE Id = '{rid}'")
    assert row["records"][0]["Ecosystem_Overlap_Changed_At__c"] == "2024-03-01T11:00:07.000+0000"


def test_create_requires_the_required_fields(sf: Any, sf_sandbox: SalesforceSandbox) -> None:
    created = sf.Account.create({"Name": "Initech", "Website": "initech.example"})

    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Opportunity.create({"Name": "No stage"})

    rec = sf_sandbox.get("Account", created["id"])
    assert rec is not None
    assert (rec["Name"], rec["IsDeleted"]) == ("Initech", False)
    assert missing.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert len(sf_sandbox.records("Opportunity")) == 0


def test_a_value_of_the_wrong_json_type_fails_the_request(
    sf: Any, load_accounts: Callable[[int], list[str]]
) -> None:
    (rid,) = load_accounts(1)

    with pytest.raises(SalesforceMalformedRequest) as number:
        sf.Account.update(rid, {"Ecosystem_Overlap_Count__c": "three"})
    with pytest.raises(SalesforceMalformedRequest) as stamp:
        sf.Account.update(rid, {"Ecosystem_Overlap_Changed_At__c": "yesterday"})

    assert number.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert "Cannot deserialize instance of datetime" in stamp.value.content[0]["message"]
