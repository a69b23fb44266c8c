"""Batch read/update, validation, property provisioning and deal pipelines."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import ApiException as CompanyApiException
from hubspot.crm.deals import ApiException as DealApiException
from hubspot.crm.properties import ApiException as PropertyApiException
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate
from hubspot_support import T0, companies, error_body

from sandbox.hubspot import HubSpotSandbox


def test_given_one_missing_id_when_batch_updating_then_207_and_the_rest_is_written(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    ids = sandbox.load("companies", companies(3))
    sandbox.clock.advance(30)
    result = client.crm.companies.batch_api.update({"inputs": [
        {"id": ids[0], "properties": {"website": "https://a.example"}},
        {"id": "987654", "properties": {"website": "https://b.example"}},
        {"id": ids[2], "properties": {"name": "Renamed"}},
    ]})
    assert result.num_errors == 1
    [error] = result.errors
    assert error.category == "OBJECT_NOT_FOUND"
    assert error.context == {"ids": ["987654"]}
    assert sorted(r.id for r in result.results) == [ids[0], ids[2]]
    assert sandbox.get("companies", ids[0])["website"] == "https://a.example"
    assert sandbox.get("companies", ids[2])["name"] == "Renamed"
    assert sandbox.get("companies", ids[2])["hs_lastmodifieddate"] == "2024-03-01T12:00:30.000Z"
    assert [(e.object_id, e.property, e.new, e.source) for e in sandbox.write_log] == [
        (ids[0], "website", "https://a.example", "api"),
        (ids[2], "name", "Renamed", "api"),
    ]


def test_all_succeeding_batch_update_is_200_without_errors(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    ids = sandbox.load("companies", companies(2))
    result = client.crm.companies.batch_api.update(
        {"inputs": [{"id": i, "properties": {"domain": f"d{i}.com"}} for i in ids]})
    # A 200 deserialises into the model without errors; only a 207 carries num_errors.
    assert type(result).__name__ == "BatchResponseSimplePublicObject"
    assert result.status == "COMPLETE"


def test_unknown_property_fails_the_whole_batch_and_writes_nothing(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    ids = sandbox.load("companies", companies(2))
    with pytest.raises(CompanyApiException) as caught:
        client.crm.companies.batch_api.update({"inputs": [
            {"id": ids[0], "properties": {"website": "https://ok.example"}},
            {"id": ids[1], "properties": {"ecosystem_overlap_count": "3"}},
        ]})
    assert caught.value.status == 400
    body = error_body(caught.value)
    assert body["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in body["message"]
    assert 'Property \\"ecosystem_overlap_count\\" does not exist' in body["message"]
    assert sandbox.write_log == []


@pytest.mark.parametrize(
    ("props", "code"),
    [({"hs_lastmodifieddate": "0"}, "READ_ONLY_VALUE"),
     ({"lifecyclestage": "partner-ish"}, "INVALID_OPTION")],
)
def test_read_only_and_invalid_values_are_rejected(
    sandbox: HubSpotSandbox, client: HubSpot, props: dict[str, str], code: str
) -> None:
    [cid] = sandbox.load("companies", [{"name": "Acme"}])
    with pytest.raises(CompanyApiException) as caught:
        client.crm.companies.basic_api.update(cid, {"properties": props})
    assert caught.value.status == 400
    assert code in error_body(caught.value)["message"]


def test_more_than_100_inputs_are_rejected(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    with pytest.raises(CompanyApiException) as caught:
        client.crm.companies.batch_api.read(
            {"inputs": [{"id": str(i)} for i in range(101)], "properties": ["name"]})
    assert caught.value.status == 400


def test_batch_read_reports_missing_ids_with_207(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    [cid] = sandbox.load("companies", [{"name": "Acme"}])
    result = client.crm.companies.batch_api.read(
        {"inputs": [{"id": cid}, {"id": "5"}], "properties": ["name"]}, archived=False)
    assert [r.properties["name"] for r in result.results] == ["Acme"]
    assert result.num_errors == 1
    assert result.errors[0].context == {"ids": ["5"]}


def test_given_missing_ecosync_property_when_created_then_listed_usable_and_409_on_repeat(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    core = client.crm.properties.core_api
    names = {p.name for p in core.get_all("companies").results}
    assert "ecosystem_overlap_count" not in names
    assert {"name", "domain", "website", "hs_object_id"} <= names
    groups = client.crm.properties.groups_api
    groups.create("companies", PropertyGroupCreate(name="ecosync", label="Ecosync"))
    spec = PropertyCreate(name="ecosystem_overlap_count", label="Overlap count", type="number",
                          field_type="number", group_name="ecosync")
    created = core.create("companies", spec)
    assert created.name == "ecosystem_overlap_count"
    assert created.modification_metadata.read_only_value is False
    with pytest.raises(PropertyApiException) as caught:
        core.create("companies", spec)
    assert caught.value.status == 409
    assert error_body(caught.value)["category"] == "OBJECT_ALREADY_EXISTS"
    with pytest.raises(PropertyApiException) as caught:
        groups.create("companies", PropertyGroupCreate(name="ecosync", label="Again"))
    assert caught.value.status == 409
    assert core.get_by_name("companies", "ecosystem_overlap_count").type == "number"
    [cid] = sandbox.load("companies", [{"name": "Acme"}])
    client.crm.companies.basic_api.update(cid, {"properties": {"ecosystem_overlap_count": "2"}})
    assert sandbox.get("companies", cid)["ecosystem_overlap_count"] == "2"


def test_broken_setup_helpers(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    sandbox.set_property_read_only("deals", "referring_partner")
    prop = client.crm.properties.core_api.get_by_name("deals", "referring_partner")
    assert prop.modification_metadata.read_only_value is True
    sandbox.remove_property("companies", "website")
    with pytest.raises(PropertyApiException) as caught:
        client.crm.properties.core_api.get_by_name("companies", "website")
    assert caught.value.status == 404


def test_pipeline_stages_drive_closed_flags(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    [pipeline] = client.crm.pipelines.pipelines_api.get_all("deals").results
    won = {s.id: s.metadata for s in pipeline.stages}["closedwon"]
    assert won == {"isClosed": "true", "probability": "1.0"}
    [did] = sandbox.load("deals", [{"dealname": "Big", "amount": "1500.00",
                                    "dealstage": "contractsent"}])
    assert sandbox.get("deals", did)["hs_is_closed"] == "false"
    sandbox.clock.advance(60)
    sandbox.close_deal(did, won=True)
    got = client.crm.deals.basic_api.get_by_id(
        did, properties=["hs_is_closed", "hs_is_closed_won", "closedate", "amount", "pipeline"])
    assert got.properties["hs_is_closed"] == "true"
    assert got.properties["hs_is_closed_won"] == "true"
    assert got.properties["closedate"] == "2024-03-01T12:01:00.000Z"
    assert got.properties["amount"] == "1500.00"
    assert got.properties["pipeline"] == "default"
    sandbox.reopen_deal(did)
    assert sandbox.get("deals", did)["hs_is_closed_won"] == "false"
    sandbox.update("deals", did, {"closedate": ""})
    sandbox.clock.advance(60)
    client.crm.deals.basic_api.update(did, {"properties": {"dealstage": "closedlost"}})
    # Closing without a close date stamps one, as HubSpot does by default.
    assert sandbox.get("deals", did)["closedate"] == "2024-03-01T12:02:00.000Z"
    assert (sandbox.get("deals", did)["hs_is_closed"],
            sandbox.get("deals", did)["hs_is_closed_won"]) == ("true", "false")
    with pytest.raises(DealApiException) as caught:
        client.crm.deals.basic_api.update(did, {"properties": {"hs_is_closed_won": "true"}})
    assert caught.value.status == 400


def test_created_record_gets_id_and_timestamps(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    made = client.crm.companies.basic_api.create({"properties": {"name": "New Co"}})
    assert made.id.isdigit()
    assert made.created_at == T0
    assert sandbox.get("companies", made.id)["name"] == "New Co"
