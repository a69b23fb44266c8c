"""Writing owned properties: batches of 100, 207 partial failures, 400 isolation, formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hs_support import T0, companies, connector_for, deals, hubspot_config

from connectors.base import FieldUpdate, MissingFields, ReadOnlyRefused
from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox
from schema.records import Stream

UPDATE_COMPANIES = "POST /crm/v3/objects/companies/batch/update"
UPDATE_DEALS = "POST /crm/v3/objects/deals/batch/update"
A, D = Stream.ACCOUNTS, Stream.OPPORTUNITIES


@pytest.fixture
def provisioned(sandbox: HubSpotSandbox, connector: HubSpotConnector) -> HubSpotConnector:
    connector.ensure_fields(check_only=False)
    sandbox.traffic.reset()
    return connector


def test_given_250_updates_when_writing_then_three_batches_land_every_value(
    sandbox: HubSpotSandbox, provisioned: HubSpotConnector
) -> None:
    ids = sandbox.load("companies", companies(250))
    updates = [FieldUpdate(A, cid, {"overlap_count": i, "overlap_partners": f"P{i} (customer)"})
               for i, cid in enumerate(ids)]

    results = provisioned.write(A, updates)

    assert [r.external_id for r in results] == ids and all(r.ok for r in results)
    assert sandbox.traffic.calls[UPDATE_COMPANIES] == 3  # ceil(250 / 100)
    assert sandbox.get("companies", ids[249])["ecosystem_overlap_count"] == "249"
    assert sandbox.get("companies", ids[0])["ecosystem_partners"] == "P0 (customer)"


def test_given_some_ids_gone_when_writing_then_they_fail_alone_and_the_rest_land(
    sandbox: HubSpotSandbox, provisioned: HubSpotConnector
) -> None:
    ids = sandbox.load("companies", companies(5))
    sandbox.archive("companies", ids[1])
    updates = [FieldUpdate(A, cid, {"overlap_count": 7}) for cid in [*ids, "999999"]]

    results = provisioned.write(A, updates)

    by_id = {r.external_id: r for r in results}
    assert {i for i, r in by_id.items() if not r.ok} == {ids[1], "999999"}
    assert by_id["999999"].error_code == "OBJECT_NOT_FOUND"
    assert "Check that ids are valid" in (by_id["999999"].message or "")
    assert all(sandbox.get("companies", i).get("ecosystem_overlap_count") == "7"
               for i in (ids[0], ids[2], ids[3], ids[4]))
    assert sandbox.traffic.calls[UPDATE_COMPANIES] == 1  # a 207, not a retry


def test_given_one_invalid_value_when_writing_then_the_batch_is_split_and_only_it_fails(
    sandbox: HubSpotSandbox, provisioned: HubSpotConnector
) -> None:
    ids = sandbox.load("companies", companies(8))
    updates = [FieldUpdate(A, cid, {"overlap_count": "lots" if i == 5 else i})
               for i, cid in enumerate(ids)]

    results = provisioned.write(A, updates)

    failed = [r for r in results if not r.ok]
    assert [(r.external_id, r.error_code) for r in failed] == [(ids[5], "INVALID_INTEGER")]
    assert sandbox.get("companies", ids[7])["ecosystem_overlap_count"] == "7"
    # 8 → 4+4 → 2+2 → 1+1 around the bad record: 1 + 2 + 2 + 2 calls.
    assert sandbox.traffic.calls[UPDATE_COMPANIES] == 7


def test_given_every_kind_of_value_when_writing_then_hubspot_stores_what_stored_form_predicts(
    sandbox: HubSpotSandbox, provisioned: HubSpotConnector
) -> None:
    did = sandbox.load("deals", deals(1))[0]
    cid = sandbox.load("companies", companies(1))[0]
    stamped = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    deal_values: dict[str, object] = {"partner_influenced": True,
                                      "influencing_partners": "Acme; Globex",
                                      "sourcing_partner": "Acme",
                                      "attribution_stamped_at": stamped}
    company_values: dict[str, object] = {"overlap_count": Decimal("2.50"),
                                         "overlap_contacts": "x" * 70_000,
                                         "overlap_changed_at": T0}

    provisioned.write(D, [FieldUpdate(D, did, deal_values)])
    provisioned.write(A, [FieldUpdate(A, cid, company_values)])

    stored = sandbox.get("deals", did)
    assert stored["partner_influenced"] == "true"
    assert stored["partner_attribution_stamped_at"] == "2024-03-01T12:30:15.123Z"
    pulled = {r.external_id: r for s in (A, D)
              for p in provisioned.pull(s, None, T0, deleted=False) for r in p.records}
    assert dict(pulled[did].owned) == provisioned.stored_form(D, deal_values)
    assert dict(pulled[cid].owned) == {**provisioned.stored_form(A, company_values),
                                       "overlap_partners": None}
    assert len(pulled[cid].owned["overlap_contacts"] or "") == 65_536


def test_given_a_field_ecosync_does_not_own_when_writing_then_nothing_is_sent_for_it(
    sandbox: HubSpotSandbox, provisioned: HubSpotConnector
) -> None:
    cid = sandbox.load("companies", companies(1))[0]

    results = provisioned.write(A, [FieldUpdate(A, cid, {"name": "Hijacked"}),
                                    FieldUpdate(A, cid, {"partner_influenced": True})])

    assert [(r.ok, r.error_code) for r in results] == [(False, "NOT_OWNED"), (False, "NOT_OWNED")]
    assert sandbox.traffic.total() == 0
    assert sandbox.get("companies", cid)["name"] == "Company 0"


def test_given_two_updates_of_one_record_when_writing_then_one_input_carries_both(
    sandbox: HubSpotSandbox, provisioned: HubSpotConnector
) -> None:
    cid = sandbox.load("companies", companies(1))[0]
    results = provisioned.write(A, [FieldUpdate(A, cid, {"overlap_count": 1}),
                                    FieldUpdate(A, cid, {"overlap_partners": "P (customer)"})])
    assert all(r.ok for r in results)
    assert sandbox.traffic.calls[UPDATE_COMPANIES] == 1
    stored = sandbox.get("companies", cid)
    assert (stored["ecosystem_overlap_count"], stored["ecosystem_partners"]) == (
        "1", "P (customer)")
    only_owned = {e.property for e in sandbox.write_log if e.source == "api"}
    assert only_owned == {"ecosystem_overlap_count", "ecosystem_partners"}


def test_given_a_cleared_value_when_writing_then_the_property_is_emptied(
    sandbox: HubSpotSandbox, provisioned: HubSpotConnector
) -> None:
    cid = sandbox.load("companies", [{"name": "A", "ecosystem_partners": "Old (customer)"}])[0]
    assert provisioned.write(A, [FieldUpdate(A, cid, {"overlap_partners": None})])[0].ok
    assert sandbox.get("companies", cid).get("ecosystem_partners") is None
    assert provisioned.stored_form(A, {"overlap_partners": None}) == {"overlap_partners": None}


def test_given_the_owned_properties_are_missing_when_writing_then_missing_fields_names_the_fix(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    cid = sandbox.load("companies", companies(1))[0]
    with pytest.raises(MissingFields, match=r"ecosystem_overlap_count.*fields ensure"):
        connector.write(A, [FieldUpdate(A, cid, {"overlap_count": 1})])


def test_given_renamed_properties_in_config_when_writing_then_the_configured_names_are_used(
    sandbox: HubSpotSandbox
) -> None:
    sandbox.define_property("deals", "eco_sourced_by")
    connector = connector_for(sandbox, deal_properties={"sourcing_partner": "eco_sourced_by"})
    did = sandbox.load("deals", deals(1))[0]
    assert connector.write(D, [FieldUpdate(D, did, {"sourcing_partner": "Acme"})])[0].ok
    assert sandbox.get("deals", did)["eco_sourced_by"] == "Acme"
    assert json.dumps(sandbox.get("deals", did)).count("Acme") == 1


def test_given_the_budget_runs_out_mid_write_then_written_batches_report_ok_the_rest_retry(
) -> None:
    with HubSpotSandbox(daily_max=40) as sb:
        sb.clock.freeze(T0)
        connector = connector_for(sb, max_api_share=0.5)  # ecosync may use 20 calls today
        connector.ensure_fields(check_only=False)  # 12 calls
        for _ in range(6):  # another app of the portal: 18 used
            sb.limits.admit(search=False, day=sb.clock.now_ms() // 86_400_000, with_daily=True)
        ids = sb.load("companies", companies(250))

        results = connector.write(A, [FieldUpdate(A, i, {"overlap_count": 1}) for i in ids])

        assert [r.ok for r in results] == [True] * 200 + [False] * 50
        assert {(r.error_code, r.retryable) for r in results[200:]} == {
            ("BudgetExhausted", True)}
        assert sb.get("companies", ids[199])["ecosystem_overlap_count"] == "1"
        assert sb.get("companies", ids[200]).get("ecosystem_overlap_count") is None
        assert sb.limits.daily_used == 20


def test_given_a_read_only_connector_then_writes_and_property_creation_are_refused(
    sandbox: HubSpotSandbox,
) -> None:
    (company,) = sandbox.load("companies", companies(1))
    connector = HubSpotConnector(hubspot_config(sandbox), now=sandbox.clock.now,
                                 read_only=True)

    with pytest.raises(ReadOnlyRefused, match="read-only; refused to write 1 accounts"):
        connector.write(Stream.ACCOUNTS, [FieldUpdate(Stream.ACCOUNTS, company,
                                                      {"overlap_count": 2})])
    with pytest.raises(ReadOnlyRefused, match="create or change properties"):
        connector.ensure_fields(check_only=False)

    assert sandbox.traffic.total() == 0 and sandbox.write_log == []
    assert "ecosystem_overlap_count" not in sandbox.property_names("companies")
