"""check() and ensure_fields(): describe-based verification and provisioning."""

from __future__ import annotations

import re

import pytest
import responses
from sf_support import ConnectorFactory, Sleeps

from connectors.base import FieldStatus
from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceSandbox
from schema.records import Stream
from sync.config import SalesforceConfig


def test_given_a_ready_org_then_check_finds_nothing(connector: SalesforceConnector) -> None:
    assert connector.check() == []


def test_given_missing_and_read_only_owned_fields_then_check_says_to_run_fields_ensure(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    sandbox.remove_field("Account", "Ecosystem_Overlap_Count__c")
    sandbox.set_field_updateable("Opportunity", "Sourcing_Partner__c", False)

    problems = connector.check()

    assert len(problems) == 2
    assert "Account.Ecosystem_Overlap_Count__c" in problems[0] and "missing" in problems[0]
    assert "Opportunity.Sourcing_Partner__c" in problems[1] and "read-only" in problems[1]
    assert all("ecosync fields ensure --source salesforce" in p for p in problems)


def test_given_a_misnamed_duns_field_then_check_names_the_config_key(
    make_connector: ConnectorFactory,
) -> None:
    problems = make_connector(duns_field="DUNS__c").check()
    assert problems == [
        "Account.DUNS__c does not exist (crm.salesforce.duns_field); fix the key or create "
        "the field"
    ]


def test_ensure_check_only_reports_status_per_owned_field(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, sleeps: Sleeps
) -> None:
    sandbox.remove_field("Opportunity", "Influencing_Partners__c")

    statuses = connector.ensure_fields(check_only=True)

    assert len(statuses) == 8
    missing = [s for s in statuses if not s.exists]
    assert missing == [FieldStatus(Stream.OPPORTUNITIES, "influencing_partners",
                                   "Influencing_Partners__c", exists=False, updateable=False)]
    assert "Opportunity.Influencing_Partners__c" in sleeps.echoed[0]
    assert "Text Area (Long)(32768)" in sleeps.echoed[0]


@pytest.mark.parametrize("grant_new_fields", [True, False])
def test_given_missing_fields_then_ensure_creates_them_with_field_level_security(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, sleeps: Sleeps,
    grant_new_fields: bool,
) -> None:
    sandbox.grant_new_fields = grant_new_fields  # False: invisible until a permission set
    sandbox.remove_field("Account", "Ecosystem_Overlap_Changed_At__c")
    sandbox.remove_field("Opportunity", "Partner_Influenced__c")

    statuses = connector.ensure_fields(check_only=False)

    assert {s.api_name for s in statuses if s.created} == {
        "Ecosystem_Overlap_Changed_At__c", "Partner_Influenced__c"}
    assert all(s.exists and s.updateable for s in statuses)
    assert sandbox.traffic.calls["metadata.createMetadata"] == 1
    assert sandbox.traffic.calls["metadata.upsertMetadata"] == 1
    created = sandbox.describe_field("Account", "Ecosystem_Overlap_Changed_At__c")
    assert created is not None and created.type == "datetime"
    boolean = sandbox.describe_field("Opportunity", "Partner_Influenced__c")
    assert boolean is not None and boolean.type == "boolean"
    assert "Ecosync_Owned_Fields" in sleeps.echoed[0]
    connector.new_run()
    assert connector.check() == []


def test_given_a_read_only_owned_field_then_ensure_grants_edit_and_reports_what_remains(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, sleeps: Sleeps
) -> None:
    sandbox.set_field_updateable("Opportunity", "Sourcing_Partner__c", False)

    statuses = connector.ensure_fields(check_only=False)

    assert "metadata.createMetadata" not in sandbox.traffic.calls
    assert sandbox.traffic.calls["metadata.upsertMetadata"] == 1  # the permission set
    (still,) = [s for s in statuses if not s.updateable]
    assert still.api_name == "Sourcing_Partner__c" and still.exists and not still.created
    assert re.search(r"Opportunity\.Sourcing_Partner__c .* READ-ONLY", sleeps.echoed[0])


_REFUSED = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:sf="http://soap.sforce.com/2006/04/metadata"><soapenv:Body><soapenv:Fault>
<faultcode>sf:INSUFFICIENT_ACCESS</faultcode>
<faultstring>INSUFFICIENT_ACCESS: insufficient access rights on object id</faultstring>
</soapenv:Fault></soapenv:Body></soapenv:Envelope>"""


_DESCRIBE = {
    "Account": ["Id", "Name", "Website", "OwnerId", "Type", "CreatedDate", "SystemModstamp",
                "IsDeleted", "Ecosystem_Overlap_Count__c", "Ecosystem_Partners__c",
                "Ecosystem_Partner_Contacts__c", "Ecosystem_Overlap_Changed_At__c"],
    "Opportunity": ["Id", "AccountId", "Name", "StageName", "Amount", "CloseDate",
                    "CreatedDate", "IsClosed", "IsWon", "LeadSource", "SystemModstamp",
                    "IsDeleted", "Partner_Influenced__c", "Influencing_Partners__c",
                    "Partner_Attribution_Stamped_At__c"],
}
_SAVE_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns="http://soap.sforce.com/2006/04/metadata"><soapenv:Body><{op}Response>
<result><fullName>{name}</fullName><success>true</success></result>
</{op}Response></soapenv:Body></soapenv:Envelope>"""


@responses.activate
def test_ensure_creates_missing_fields_through_the_metadata_api() -> None:
    base = "https://org.example.com/services/data/v59.0"
    for sobject, names in _DESCRIBE.items():
        responses.get(f"{base}/sobjects/{sobject}/describe", json={"fields": [
            {"name": n, "type": "string", "updateable": True} for n in names]})
    soap = "https://org.example.com/services/Soap/m/59.0/"
    responses.post(soap, body=_SAVE_OK.format(op="createMetadata",
                                              name="Opportunity.Sourcing_Partner__c"))
    responses.post(soap, body=_SAVE_OK.format(op="upsertMetadata", name="Ecosync_Owned_Fields")
                   .replace("<success>", "<created>true</created><success>"))
    echoed: list[str] = []
    config = SalesforceConfig(enabled=True, auth="session", session_id="00D!x",
                              instance_url="https://org.example.com")
    connector = SalesforceConnector(config, sleep=lambda _s: None, echo=echoed.append)

    statuses = connector.ensure_fields(check_only=False)

    created = [s for s in statuses if s.created]
    assert [s.api_name for s in created] == ["Sourcing_Partner__c"]
    create_body = responses.calls[2].request.body
    assert isinstance(create_body, bytes)
    assert b"Opportunity.Sourcing_Partner__c" in create_body and b"<ns0:type>Text<" in create_body
    upsert_body = responses.calls[3].request.body
    assert isinstance(upsert_body, bytes) and b"Ecosync_Owned_Fields" in upsert_body
    assert "assign permission set Ecosync_Owned_Fields" in echoed[0]


@responses.activate
def test_given_an_org_refusing_the_metadata_api_then_ensure_prints_the_fields_to_create() -> None:
    base = "https://org.example.com/services/data/v59.0"
    for sobject, names in _DESCRIBE.items():
        kept = [n for n in names if n != "Ecosystem_Overlap_Changed_At__c"]
        responses.get(f"{base}/sobjects/{sobject}/describe", json={"fields": [
            {"name": n, "type": "string", "updateable": True} for n in kept]})
    responses.post("https://org.example.com/services/Soap/m/59.0/", status=500, body=_REFUSED,
                   content_type="text/xml")
    echoed: list[str] = []
    config = SalesforceConfig(enabled=True, auth="session", session_id="00D!x",
                              instance_url="https://org.example.com")
    connector = SalesforceConnector(config, sleep=lambda _s: None, echo=echoed.append)

    statuses = connector.ensure_fields(check_only=False)

    assert {s.api_name for s in statuses if not s.exists} == {
        "Ecosystem_Overlap_Changed_At__c", "Sourcing_Partner__c"}
    assert not any(s.created for s in statuses)
    (spec,) = echoed
    assert "Metadata API refused" in spec and "INSUFFICIENT_ACCESS" in spec
    assert re.search(r"Account\.Ecosystem_Overlap_Changed_At__c\s+Date/Time", spec)
    assert re.search(r"Opportunity\.Sourcing_Partner__c\s+Text\(255\)", spec)


def test_given_an_unreadable_jwt_key_then_check_names_the_key_file(
    make_connector: ConnectorFactory, tmp_path: object,
) -> None:
    problems = make_connector("jwt", private_key_file="/nonexistent/server.key").check()
    assert problems == ["cannot read crm.salesforce.private_key_file '/nonexistent/server.key' "
                        "(No such file or directory); point it at the connected app's PEM "
                        "private key"]
