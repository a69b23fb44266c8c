"""Field provisioning through the Metadata API (`sf.mdapi`, SOAP via zeep)."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce import SalesforceSandbox
from sandbox.salesforce.client import requests_session


@pytest.fixture
def mdapi(sf: Any, sf_sandbox: SalesforceSandbox) -> Any:
    md = sf.mdapi
    # zeep keeps its own requests session: it must trust the sandbox CA too.
    md._client.transport.session = requests_session(sf_sandbox)
    return md


def test_create_and_read_custom_fields(sf: Any, sf_sandbox: SalesforceSandbox, mdapi: Any) -> None:
    sf_sandbox.remove_field("Account", "Ecosystem_Partners__c")

    mdapi.CustomField.create([
        mdapi.CustomField(fullName="Account.Ecosystem_Partners__c", label="Ecosystem Partners",
                          type=mdapi.FieldType("LongTextArea"), length=32768, visibleLines=3),
        mdapi.CustomField(fullName="Account.Fit_Score__c", label="Fit Score",
                          type=mdapi.FieldType("Number"), precision=18, scale=2),
    ])
    read = mdapi.CustomField.read(["Account.Ecosystem_Partners__c"])
    missing = mdapi.CustomField.read(["Account.Nope__c"])

    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert (fields["Ecosystem_Partners__c"]["type"], fields["Ecosystem_Partners__c"]["length"]) \
        == ("textarea", 32768)
    assert fields["Fit_Score__c"]["scale"] == 2
    assert (read.fullName, read.type, read.length) == (
        "Account.Ecosystem_Partners__c", "LongTextArea", 32768)
    assert missing.fullName is None
    assert sf_sandbox.traffic.calls["metadata.createMetadata"] == 1


def test_creating_an_existing_field_fails_with_duplicate_name(mdapi: Any) -> None:
    field = mdapi.CustomField(fullName="Account.Ecosystem_Overlap_Count__c", label="Count",
                              type=mdapi.FieldType("Number"), precision=18, scale=0)

    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        mdapi.CustomField.create([field])


def test_field_without_security_stays_invisible_until_granted(
    sf: Any, sf_sandbox: SalesforceSandbox, mdapi: Any
) -> None:
    sf_sandbox.grant_new_fields = False
    mdapi.CustomField.create([mdapi.CustomField(
        fullName="Opportunity.Partner_Tier__c", label="Partner Tier",
        type=mdapi.FieldType("Text"), length=40)])

    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Partner_Tier__c FROM Opportunity")
    mdapi.PermissionSet.upsert([mdapi.PermissionSet(
        fullName="Ecosync_Integration", label="Ecosync Integration",
        fieldPermissions=[mdapi.PermissionSetFieldPermissions(
            field="Opportunity.Partner_Tier__c", readable=True, editable=True)])])

    assert sf.query("SELECT Partner_Tier__c FROM Opportunity")["totalSize"] == 0
