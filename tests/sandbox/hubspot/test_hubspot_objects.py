"""List, get and archive through the unmodified hubspot-api-client."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import ApiException as CompanyApiException
from hubspot_support import T0, companies, error_body

from sandbox.hubspot import HubSpotSandbox


def test_given_5000_companies_when_paged_by_100_then_each_is_seen_once(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    ids = sandbox.load("companies", companies(5000))
    api = client.crm.companies.basic_api
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        kwargs = {"after": after} if after else {}
        page = api.get_page(limit=100, properties=["name", "domain"], archived=False, **kwargs)
        pages += 1
        assert len(page.results) == 100
        seen += [r.id for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert pages == 50
    assert seen == ids
    assert sandbox.traffic.calls["GET /crm/v3/objects/companies"] == 50
    last = page.results[-1]
    assert last.properties == {
        "name": "Company 4999",
        "domain": "company4999.example.com",
        "createdate": "2024-03-01T12:00:00.000Z",
        "hs_lastmodifieddate": "2024-03-01T12:00:00.000Z",
        "hs_object_id": ids[-1],
    }
    assert last.updated_at == T0


def test_get_all_helper_and_default_properties(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    sandbox.load("companies", companies(150))
    everything = client.crm.companies.get_all()
    assert len(everything) == 150
    # Without `properties`, HubSpot returns its default set; values are strings or null.
    assert set(everything[0].properties) == {
        "createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}


def test_requested_but_unset_property_is_null_and_unknown_is_ignored(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    [cid] = sandbox.load("companies", [{"name": "Acme"}])
    got = client.crm.companies.basic_api.get_by_id(cid, properties=["website", "no_such_prop"])
    assert got.properties["website"] is None
    assert "no_such_prop" not in got.properties


def test_archived_records_are_listed_only_with_archived_true(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    ids = sandbox.load("companies", companies(10))
    for cid in ids[:3]:
        sandbox.archive("companies", cid)
    api = client.crm.companies.basic_api
    live = api.get_page(limit=100, archived=False)
    gone = api.get_page(limit=100, archived=True)
    assert [r.id for r in live.results] == ids[3:]
    assert [r.id for r in gone.results] == ids[:3]
    assert all(r.archived and r.archived_at == T0 for r in gone.results)
    with pytest.raises(CompanyApiException) as caught:
        api.get_by_id(ids[0])
    assert caught.value.status == 404
    assert error_body(caught.value)["category"] == "OBJECT_NOT_FOUND"
    assert api.get_by_id(ids[0], archived=True).archived is True


def test_archive_through_api_then_restore_helper(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    [cid] = sandbox.load("companies", [{"name": "Acme"}])
    client.crm.companies.basic_api.archive(cid)
    assert sandbox.records("companies") == []
    sandbox.restore("companies", cid)
    assert client.crm.companies.basic_api.get_by_id(cid).properties["name"] == "Acme"


def test_unknown_id_is_404(client: HubSpot) -> None:
    with pytest.raises(CompanyApiException) as caught:
        client.crm.companies.basic_api.get_by_id("999999")
    assert caught.value.status == 404


def test_limit_above_100_is_rejected(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    with pytest.raises(CompanyApiException) as caught:
        client.crm.companies.basic_api.get_page(limit=101)
    assert caught.value.status == 400


def test_frozen_clock_gives_many_records_one_timestamp_and_writes_advance_it(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    ids = sandbox.load("companies", companies(3))
    sandbox.clock.advance(90)
    sandbox.update("companies", ids[1], {"website": "https://acme.io"})
    got = client.crm.companies.batch_api.read(
        {"inputs": [{"id": i} for i in ids], "properties": ["website"]})
    stamps = {r.id: r.properties["hs_lastmodifieddate"] for r in got.results}
    assert stamps == {ids[0]: "2024-03-01T12:00:00.000Z",
                      ids[1]: "2024-03-01T12:01:30.000Z",
                      ids[2]: "2024-03-01T12:00:00.000Z"}
    [entry] = sandbox.write_log
    assert (entry.object_id, entry.property, entry.old, entry.new, entry.source) == (
        ids[1], "website", "https://www.company1.example.com", "https://acme.io", "helper")


def test_missing_bearer_token_gets_hubspots_401(sandbox: HubSpotSandbox) -> None:
    from sandbox.hubspot.client import hubspot_client

    bad = hubspot_client(sandbox, token="pat-na1-wrong")
    with pytest.raises(CompanyApiException) as caught:
        bad.crm.companies.basic_api.get_page()
    assert caught.value.status == 401
    body = error_body(caught.value)
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found")


def test_inline_associations_stop_at_100_entries_and_say_there_are_more(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    cids = sandbox.load("companies", companies(120))
    (deal,) = sandbox.load("deals", [{"dealname": "Crowded"}])
    for cid in cids:
        sandbox.associate(deal, cid, primary=cid == cids[0])

    page = client.crm.deals.basic_api.get_page(limit=10, associations=["companies"])

    block = page.results[0].associations["companies"]
    assert len(block.results) == 100  # 121 entries (the primary twice), cut at 100
    assert block.results[0].type == "deal_to_company"  # the primary, labeled
    assert {r.type for r in block.results[1:]} == {"deal_to_company_unlabeled"}
    assert block.paging.next.after
