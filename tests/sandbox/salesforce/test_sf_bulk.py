"""Bulk API 2.0 query and ingest jobs through simple-salesforce's `bulk2` client."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceOperationError

from sandbox.salesforce import SalesforceSandbox


def _rows(page: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(page)))


def test_bulk_query_pages_csv_with_locators(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(5000)
    sf_sandbox.delete(ids[0])

    pages = list(sf.bulk2.Account.query(
        "SELECT Id, Name, SystemModstamp FROM Account", max_records=2000, wait=0))
    deleted = list(sf.bulk2.Account.query_all(
        "SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true", wait=0))

    rows = [r for page in pages for r in _rows(page)]
    assert [len(_rows(p)) for p in pages] == [2000, 2000, 999]
    assert pages[0].startswith('"Id","Name","SystemModstamp"\n')
    assert [r["Id"] for r in rows] == ids[1:]
    assert rows[0]["SystemModstamp"] == "2024-03-01T12:00:00.000Z"
    assert _rows(deleted[0]) == [{"Id": ids[0], "IsDeleted": "true"}]
    assert sf_sandbox.traffic.calls["bulk2.query.results"] == 4


def test_bulk_query_job_goes_through_in_progress(
    sf_sandbox: SalesforceSandbox, sf: Any
) -> None:
    session, base = sf.session, f"{sf_sandbox.url}/services/data/v59.0/jobs/query"
    headers = {"Authorization": f"Bearer {sf_sandbox.access_token}",
               "Content-Type": "application/json"}

    job = session.post(base, headers=headers, json={
        "operation": "query", "query": "SELECT Id FROM Account"}).json()
    states = [session.get(f"{base}/{job['id']}", headers=headers).json()["state"]
              for _ in range(2)]
    results = session.get(f"{base}/{job['id']}/results", headers=headers)

    assert job["state"] == "UploadComplete"
    assert states == ["InProgress", "JobComplete"]
    assert results.headers["Sforce-Locator"] == "null"
    assert results.headers["Sforce-NumberOfRecords"] == "0"


def test_failed_bulk_query_job_raises(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    load_accounts(10)
    sf_sandbox.fail_next_bulk_query("InternalServerError : retry later")

    with pytest.raises(SalesforceOperationError, match="retry later"):
        list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))
    assert len(_rows(next(iter(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))))) == 10


def test_bulk_ingest_update_reports_successes_and_failures(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(4)
    sf_sandbox.update("Account", ids[2], {"Ecosystem_Partners__c": "Old"})
    sf_sandbox.delete(ids[3])
    records = [
        {"Id": ids[0], "Ecosystem_Partners__c": "Acme (customer)", "Website": ""},
        {"Id": ids[1], "Ecosystem_Partners__c": "Globex (prospect)", "Website": "new.example"},
        {"Id": ids[2], "Ecosystem_Partners__c": "#N/A", "Website": ""},
        {"Id": ids[3], "Ecosystem_Partners__c": "x", "Website": ""},
    ]

    (summary,) = sf.bulk2.Account.update(records=records, wait=0)
    failed = _rows(sf.bulk2.Account.get_failed_records(summary["job_id"]))
    succeeded = _rows(sf.bulk2.Account.get_successful_records(summary["job_id"]))
    unprocessed = _rows(sf.bulk2.Account.get_unprocessed_records(summary["job_id"]))

    assert summary["numberRecordsProcessed"] == 4
    assert summary["numberRecordsFailed"] == 1
    assert [r["sf__Id"] for r in failed] == [ids[3]]
    assert failed[0]["sf__Error"].startswith("ENTITY_IS_DELETED:entity is deleted")
    assert {r["sf__Id"] for r in succeeded} == set(ids[:3])
    assert unprocessed == []
    first, second, third = (sf_sandbox.get("Account", i) for i in ids[:3])
    assert first is not None
    assert second is not None
    assert third is not None
    assert first["Website"] == "https://acct0.example.com"  # empty cell: left unchanged
    assert second["Website"] == "new.example"
    assert third["Ecosystem_Partners__c"] is None  # '#N/A' clears the field
    assert {e.via for e in sf_sandbox.api_writes()} == {"bulk"}


def test_bulk_ingest_with_unknown_column_fails_the_job(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    ids = load_accounts(1)

    with pytest.raises(SalesforceOperationError, match="Field name not found : Bogus__c"):
        sf.bulk2.Account.update(records=[{"Id": ids[0], "Bogus__c": "1"}], wait=0)

    assert sf_sandbox.api_writes() == []


def test_bulk_job_can_complete_on_the_first_poll(
    sf: Any, sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]]
) -> None:
    load_accounts(5)
    sf_sandbox.bulk_polls_until_complete = 0

    pages = list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))

    assert len(_rows(pages[0])) == 5
    assert sf_sandbox.traffic.calls["bulk2.query.get"] == 1
