"""Provisioning the owned properties and reporting what is missing or read-only."""

from __future__ import annotations

from hs_support import connector_for

from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox
from schema.owned_fields import OWNED_FIELDS
from schema.records import Stream

CREATE_COMPANY_PROPERTY = "POST /crm/v3/properties/companies"
CREATE_DEAL_PROPERTY = "POST /crm/v3/properties/deals"


def _definition(sandbox: HubSpotSandbox, object_type: str, name: str) -> tuple[str, str, str]:
    prop = sandbox.portal.properties[object_type][name]
    return prop.type, prop.field_type, prop.group_name


def test_given_a_fresh_portal_when_ensuring_then_the_group_and_8_typed_properties_exist(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    statuses = connector.ensure_fields(check_only=False)

    assert [(s.api_name, s.exists, s.updateable, s.created) for s in statuses] == [
        (f.hubspot, True, True, True) for f in OWNED_FIELDS]
    assert sandbox.portal.groups["companies"]["ecosync"]["label"] == "ecosync"
    assert "ecosync" in sandbox.portal.groups["deals"]
    assert _definition(sandbox, "companies", "ecosystem_overlap_count") == (
        "number", "number", "ecosync")
    assert _definition(sandbox, "companies", "ecosystem_partners")[:2] == ("string", "textarea")
    assert _definition(sandbox, "deals", "sourcing_partner")[:2] == ("string", "text")
    assert _definition(sandbox, "deals", "partner_influenced")[:2] == ("bool",
                                                                       "booleancheckbox")
    assert _definition(sandbox, "deals", "partner_attribution_stamped_at")[:2] == (
        "datetime", "date")
    assert connector.check() == []


def test_given_provisioned_properties_when_ensuring_again_then_nothing_is_created(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    connector.ensure_fields(check_only=False)
    sandbox.traffic.reset()

    statuses = connector.ensure_fields(check_only=False)

    assert not any(s.created for s in statuses) and all(s.exists for s in statuses)
    assert sandbox.traffic.calls[CREATE_COMPANY_PROPERTY] == 0
    assert sandbox.traffic.total() == 2  # one property listing per object type


def test_given_one_property_created_elsewhere_meanwhile_when_ensuring_then_409_is_fine(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    sandbox.define_property("companies", "ecosystem_partners", field_type="textarea")
    sandbox.portal.groups["deals"]["ecosync"] = {"name": "ecosync", "label": "x",
                                                  "displayOrder": -1, "archived": False}

    statuses = connector.ensure_fields(check_only=False)

    created = {s.api_name for s in statuses if s.created}
    assert created == {f.hubspot for f in OWNED_FIELDS} - {"ecosystem_partners"}
    assert sandbox.traffic.calls["POST /crm/v3/properties/deals/groups"] == 1  # 409, accepted


def test_given_check_only_when_properties_are_missing_then_only_a_report_is_made(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    sandbox.define_property("deals", "sourcing_partner")

    statuses = connector.ensure_fields(check_only=True)

    assert {s.api_name for s in statuses if not s.exists} == {
        f.hubspot for f in OWNED_FIELDS} - {"sourcing_partner"}
    assert sandbox.traffic.calls[CREATE_COMPANY_PROPERTY] == 0
    assert sandbox.traffic.calls[CREATE_DEAL_PROPERTY] == 0
    assert "ecosystem_overlap_count" not in sandbox.property_names("companies")


def test_given_a_missing_property_when_checking_then_the_problem_names_it_and_the_fix(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    connector.ensure_fields(check_only=False)
    sandbox.remove_property("deals", "influencing_partners")

    problems = connector.check()

    assert problems == [
        "hubspot: HubSpot deal property 'influencing_partners' (influencing_partners) does "
        "not exist; run `ecosync fields ensure --source hubspot`"]


def test_given_a_read_only_property_when_checking_then_it_is_reported_not_updateable(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    connector.ensure_fields(check_only=False)
    sandbox.set_property_read_only("companies", "ecosystem_overlap_count")

    statuses = connector.ensure_fields(check_only=True)
    problems = connector.check()

    status = next(s for s in statuses if s.api_name == "ecosystem_overlap_count")
    assert (status.exists, status.updateable) == (True, False)
    assert len(problems) == 1 and "'ecosystem_overlap_count'" in problems[0]
    assert "read-only" in problems[0]


def test_given_a_wrongly_typed_or_unknown_configured_property_when_checking_then_both_named(
    sandbox: HubSpotSandbox,
) -> None:
    sandbox.define_property("companies", "eco_count", type="string")
    connector = connector_for(sandbox, company_properties={"overlap_count": "eco_count"},
                              referring_partner_property="partner_ref")
    connector.ensure_fields(check_only=False)

    problems = connector.check()

    assert any("'eco_count' (overlap_count) has type 'string'" in p for p in problems)
    assert any("crm.hubspot.referring_partner_property = 'partner_ref'" in p for p in problems)
    assert len(problems) == 2
    assert {s.api_name for s in connector.ensure_fields(check_only=True)
            if s.stream is Stream.ACCOUNTS} >= {"eco_count"}
