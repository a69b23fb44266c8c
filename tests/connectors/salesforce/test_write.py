"""Writing owned fields back: call counts, per-record failures, locks, Bulk, value formats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sf_support import ConnectorFactory, land, later, load_accounts, load_opportunities
from sqlalchemy import Engine

from connectors.base import FieldUpdate, ReadOnlyRefused
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.fields import FieldInfo
from sandbox.salesforce import SalesforceSandbox
from schema.records import Stream


def _updates(ids: list[str], **values: object) -> list[FieldUpdate]:
    return [FieldUpdate(Stream.ACCOUNTS, i, {"overlap_count": n % 7, **values})
            for n, i in enumerate(ids)]


@pytest.mark.parametrize("m", [1, 200, 201, 1000, 1001])
def test_given_m_updates_then_calls_are_at_most_one_per_thousand_plus_describe(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, m: int
) -> None:
    ids = load_accounts(sandbox, m)

    results = connector.write(Stream.ACCOUNTS, _updates(ids, overlap_partners="Acme (customer)"))

    assert [r.external_id for r in results] == ids and all(r.ok for r in results)
    calls = sandbox.traffic.calls
    assert calls["composite"] == -(-m // 1000)
    assert sum(calls.values()) <= -(-m // 1000) + 1
    rec = sandbox.get("Account", ids[-1])
    assert rec is not None and rec["Ecosystem_Overlap_Count__c"] == (m - 1) % 7
    assert rec["Ecosystem_Partners__c"] == "Acme (customer)"
    assert {e.via for e in sandbox.api_writes()} == {"collections"}


def test_given_bad_records_in_a_batch_then_they_fail_alone_and_the_rest_lands(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    ids = load_accounts(sandbox, 250)
    sandbox.delete(ids[10])
    updates = _updates(ids)
    updates[20] = FieldUpdate(Stream.ACCOUNTS, "001000000000000AAA", {"overlap_count": 1})

    results = connector.write(Stream.ACCOUNTS, updates)

    failed = {r.external_id: r for r in results if not r.ok}
    assert set(failed) == {ids[10], "001000000000000AAA"}
    assert failed[ids[10]].error_code == "ENTITY_IS_DELETED"
    assert failed["001000000000000AAA"].error_code == "INVALID_CROSS_REFERENCE_KEY"
    assert not failed[ids[10]].retryable and failed[ids[10]].message
    landed = [i for i in ids if i != ids[10]
              and sandbox.get("Account", i)["Ecosystem_Overlap_Count__c"] is not None]  # type: ignore[index]
    assert len(landed) == 248


def test_given_locked_rows_then_only_those_are_retried(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    ids = load_accounts(sandbox, 400)
    sandbox.faults.configure(lock=0.2)

    results = connector.write(Stream.ACCOUNTS, _updates(ids))

    assert sandbox.faults.fired["lock"] > 0
    assert all(r.ok for r in results)
    assert sandbox.traffic.calls["composite"] >= 2  # the first pass, then the locked few
    written = [e for e in sandbox.api_writes() if e.field == "Ecosystem_Overlap_Count__c"]
    assert len(written) == 400  # each record written exactly once


def test_given_rows_locked_for_good_then_they_report_a_retryable_failure(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    ids = load_accounts(sandbox, 3)
    sandbox.faults.configure(lock=1.0)

    results = connector.write(Stream.ACCOUNTS, _updates(ids))

    assert all(not r.ok and r.retryable and r.error_code == "UNABLE_TO_LOCK_ROW"
               for r in results)


def test_given_more_than_the_bulk_threshold_then_one_bulk_job_writes_and_na_clears(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory
) -> None:
    ids = load_accounts(sandbox, 60, Ecosystem_Partners__c="old value")
    sandbox.delete(ids[5])
    connector = make_connector(bulk_write_threshold=50)
    updates = [FieldUpdate(Stream.ACCOUNTS, i, {"overlap_count": 2, "overlap_partners": None})
               for i in ids]

    results = connector.write(Stream.ACCOUNTS, updates)

    failed = [r for r in results if not r.ok]
    assert [r.external_id for r in failed] == [ids[5]]
    assert failed[0].error_code == "ENTITY_IS_DELETED"
    rec = sandbox.get("Account", ids[0])
    assert rec is not None and rec["Ecosystem_Partners__c"] is None  # cleared by #N/A
    assert rec["Ecosystem_Overlap_Count__c"] == 2
    calls = sandbox.traffic.calls
    assert calls["bulk2.ingest.create"] == 1 and "composite" not in calls
    assert sum(calls.values()) <= 10


def test_values_are_formatted_per_field_type(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    acc = load_accounts(sandbox, 1)
    (opp,) = load_opportunities(sandbox, acc)
    stamp = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    long_name = "P" * 300

    results = connector.write(Stream.OPPORTUNITIES, [FieldUpdate(
        Stream.OPPORTUNITIES, opp, {"partner_influenced": True, "sourcing_partner": long_name,
                                    "attribution_stamped_at": stamp,
                                    "influencing_partners": "A; B"})])

    assert results[0].ok
    rec = sandbox.get("Opportunity", opp)
    assert rec is not None
    assert rec["Partner_Influenced__c"] is True
    assert rec["Sourcing_Partner__c"] == "P" * 254 + "…"
    assert rec["Partner_Attribution_Stamped_At__c"] == "2024-05-06T07:08:09.000+0000"
    stored = connector.stored_form(Stream.OPPORTUNITIES, {
        "partner_influenced": True, "sourcing_partner": long_name,
        "attribution_stamped_at": stamp, "influencing_partners": "A; B"})
    assert stored == {"partner_influenced": "true", "sourcing_partner": "P" * 254 + "…",
                      "attribution_stamped_at": "2024-05-06T07:08:09Z",
                      "influencing_partners": "A; B"}


def test_stored_form_matches_what_a_pull_reads_back(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    from sf_support import later

    ids = load_accounts(sandbox, 1)
    desired = {"overlap_count": 3.0, "overlap_partners": "Acme (customer); Beta (prospect)",
               "overlap_contacts": "", "overlap_changed_at": datetime(2024, 1, 2, tzinfo=UTC)}
    connector.write(Stream.ACCOUNTS, [FieldUpdate(Stream.ACCOUNTS, ids[0], desired)])

    (page,) = list(connector.pull(Stream.ACCOUNTS, None, later(1)))
    assert dict(page.records[0].owned) == connector.stored_form(Stream.ACCOUNTS, desired)


def test_a_field_ecosync_does_not_own_is_refused(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    ids = load_accounts(sandbox, 1)
    (result,) = connector.write(Stream.ACCOUNTS, [FieldUpdate(Stream.ACCOUNTS, ids[0],
                                                              {"Name": "x"})])
    assert not result.ok and result.error_code == "INVALID_VALUE"
    assert "composite" not in sandbox.traffic.calls


def test_given_a_partial_failure_through_the_engine_then_it_is_dead_lettered_and_the_rest_lands(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    from sf_support import T0, land, later
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from schema.models import WritebackError, WritebackState
    from sync.writeback import plan_changes, push

    ids = load_accounts(sandbox, 300)
    land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1)))
    sandbox.delete(ids[42])
    changes = []
    for n, record_id in enumerate(ids):
        desired = {"overlap_count": 1 + n % 3, "overlap_partners": "Acme (customer)"}
        change = plan_changes(connector.name, Stream.ACCOUNTS, record_id, desired,
                              connector.stored_form(Stream.ACCOUNTS, desired), {}, None)
        assert change is not None
        changes.append(change)

    stats = push(warehouse, connector, changes, now=T0, run_id=None)

    assert (stats.records_written, stats.records_failed) == (299, 1)
    with Session(warehouse) as session:
        (dead,) = session.scalars(select(WritebackError)).all()
        written = session.scalars(select(WritebackState)).all()
    assert dead.external_id == ids[42] and dead.error_code == "ENTITY_IS_DELETED"
    assert dead.payload == {"overlap_count": "1", "overlap_partners": "Acme (customer)"}
    assert len({w.external_id for w in written}) == 299
    assert sandbox.traffic.calls["composite"] == 2  # the pull's first page, then one write


def test_given_a_bulk_job_that_fails_then_every_record_is_a_retryable_failure(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = load_accounts(sandbox, 30)
    connector = make_connector(bulk_write_threshold=10)
    # An unknown column fails the whole job (InvalidBatch), as on the platform.
    writable = connector.catalog.writable

    def renamed(stream: Stream) -> dict[str, FieldInfo]:
        return {**writable(stream),
                "overlap_count": FieldInfo("No_Such_Field__c", "double", 0, 0, True)}

    monkeypatch.setattr(connector.catalog, "writable", renamed)

    results = connector.write(Stream.ACCOUNTS, _updates(ids))

    assert all(not r.ok and r.retryable and r.error_code == "BULK_JOB_FAILED" for r in results)
    assert "Field name not found" in (results[0].message or "")


def test_given_a_read_only_connector_then_writes_and_field_creation_are_refused_without_a_call(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine
) -> None:
    acc = load_accounts(sandbox, 3)
    connector = make_connector(read_only=True)
    land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1)))
    reads = sandbox.traffic.total()

    with pytest.raises(ReadOnlyRefused, match="read-only; refused to write 1 Account"):
        connector.write(Stream.ACCOUNTS, [FieldUpdate(Stream.ACCOUNTS, acc[0],
                                                      {"overlap_count": 2})])
    with pytest.raises(ReadOnlyRefused, match="create or change fields"):
        connector.ensure_fields(check_only=False)

    assert sandbox.traffic.total() == reads and sandbox.api_writes() == []
    assert connector.ensure_fields(check_only=True)  # checking only reads
