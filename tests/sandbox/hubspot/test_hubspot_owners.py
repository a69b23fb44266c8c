"""The owners API through hubspot-api-client: paged, live and deactivated apart, behind
crm.objects.owners.read."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.owners import ApiException

from sandbox.hubspot import HubSpotSandbox


def test_owners_are_listed_in_pages_with_names_and_emails(
        sandbox: HubSpotSandbox, client: HubSpot) -> None:
    ids = [sandbox.add_owner(f"Rep{i}", "Seller", f"rep{i}@ourco.example") for i in range(130)]
    gone = sandbox.add_owner("Old", "Timer", "old@ourco.example", archived=True)
    api = client.crm.owners.owners_api

    first = api.get_page()
    assert len(first.results) == 100  # the default page
    owner = first.results[0]
    assert (owner.id, owner.first_name, owner.last_name, owner.email, owner.type) == (
        ids[0], "Rep0", "Seller", "rep0@ourco.example", "PERSON")
    assert owner.archived is False and owner.user_id is not None
    rest = api.get_page(after=first.paging.next.after)
    assert [o.id for o in rest.results] == ids[100:] and rest.paging is None
    assert [o.id for o in api.get_page(archived=True).results] == [gone]
    assert [o.id for o in api.get_page(email="rep7@ourco.example").results] == [ids[7]]
    assert len(api.get_page(limit=500).results) == 130


def test_without_the_scope_owners_are_refused(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    sandbox.add_owner("Ann", "Archer", "ann@ourco.example")
    sandbox.revoke_scope("crm.objects.owners.read")

    with pytest.raises(ApiException) as refused:
        client.crm.owners.owners_api.get_page()

    assert refused.value.status == 403 and "MISSING_SCOPES" in refused.value.body
    assert "crm.objects.owners.read" in refused.value.body
