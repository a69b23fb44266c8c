"""Logins, session expiry, API limits and transport faults, seen through simple-salesforce."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from sandbox.salesforce import SalesforceSandbox
from sandbox.salesforce.client import requests_session, salesforce_client


@pytest.mark.parametrize("flow", ["password", "soap", "client_credentials", "jwt"])
def test_login_flows_reach_the_sandbox(
    sf_sandbox: SalesforceSandbox, load_accounts: Callable[[int], list[str]], flow: Any
) -> None:
    load_accounts(3)

    client = salesforce_client(sf_sandbox, auth=flow)

    assert client.sf_instance == sf_sandbox.url.removeprefix("https://")
    assert client.query("SELECT COUNT() FROM Account")["totalSize"] == 3


def test_token_endpoint_errors_match_salesforce(sf_sandbox: SalesforceSandbox) -> None:
    session = requests_session(sf_sandbox)
    url = "https://login.salesforce.com/services/oauth2/token"

    bad_secret = session.post(url, data={
        "grant_type": "password", "client_id": sf_sandbox.client_id, "client_secret": "wrong",
        "username": sf_sandbox.username, "password": sf_sandbox.password})
    bad_password = session.post(url, data={
        "grant_type": "password", "client_id": sf_sandbox.client_id,
        "client_secret": sf_sandbox.client_secret, "username": sf_sandbox.username,
        "password": "nope"})
    good = session.post(url, data={"grant_type": "client_credentials"},
                        auth=(sf_sandbox.client_id, sf_sandbox.client_secret))

    assert (bad_secret.status_code, bad_secret.json()["error"]) == (400, "invalid_client")
    assert bad_password.json() == {"error": "invalid_grant",
                                   "error_description": "authentication failure"}
    assert good.json()["instance_url"] == sf_sandbox.url


def test_bad_credentials_raise_authentication_failed(sf_sandbox: SalesforceSandbox) -> None:
    session = requests_session(sf_sandbox)

    with pytest.raises(SalesforceAuthenticationFailed) as oauth:
        Salesforce(consumer_key=sf_sandbox.client_id, consumer_secret="wrong",
                   domain="acme.my", session=session)
    with pytest.raises(SalesforceAuthenticationFailed) as soap:
        Salesforce(username=sf_sandbox.username, password="wrong",
                   security_token=sf_sandbox.security_token, session=session)

    assert oauth.value.code == "invalid_client"
    assert soap.value.code == "INVALID_LOGIN"


def test_expired_session_surfaces_as_salesforce_expired_session(
    sf: Any, sf_sandbox: SalesforceSandbox
) -> None:
    sf_sandbox.expire_token_after(2)
    sf.query("SELECT Id FROM Account")
    sf.query("SELECT Id FROM Account")

    with pytest.raises(SalesforceExpiredSession) as info:
        sf.query("SELECT Id FROM Account")

    assert info.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert sf_sandbox.api_usage == 2


def test_login_client_refreshes_an_expired_session(sf_sandbox: SalesforceSandbox) -> None:
    client = salesforce_client(sf_sandbox, auth="client_credentials")
    sf_sandbox.expire_tokens()

    result = client.query("SELECT COUNT() FROM Account")

    assert result["totalSize"] == 0
    assert sf_sandbox.tokens.logins["client_credentials"] == 2


def test_daily_limit_refuses_with_request_limit_exceeded(
    sf: Any, sf_sandbox: SalesforceSandbox
) -> None:
    sf_sandbox.daily_limit = 3
    for _ in range(3):
        sf.query("SELECT Id FROM Account")

    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Account")

    assert info.value.content == [{"message": "TotalRequests Limit exceeded.",
                                   "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sf.api_usage["api-usage"].used == 3
    assert sf.api_usage["api-usage"].total == 3


def test_the_concurrent_long_request_limit_has_its_own_message_and_clears(
    sf: Any, sf_sandbox: SalesforceSandbox
) -> None:
    sf.query("SELECT Id FROM Account")
    sf_sandbox.faults.next(concurrent_limit=1)

    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Account")

    assert info.value.status == 403
    assert info.value.content == [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                                   "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sf_sandbox.api_usage == 1  # a refused call is not counted as used
    sf.query("SELECT Id FROM Account")  # the next one goes through
    assert sf_sandbox.api_usage == 2


def test_limits_resource_and_header_track_usage(sf: Any, sf_sandbox: SalesforceSandbox) -> None:
    sf_sandbox.api_usage = 1000

    limits = sf.limits()

    assert limits["DailyApiRequests"] == {"Max": 100_000, "Remaining": 98_999}
    assert sf.api_usage["api-usage"].used == 1001


def test_rate_limit_fault_is_a_403_and_not_counted(sf: Any, sf_sandbox: SalesforceSandbox) -> None:
    sf_sandbox.faults.configure(rate_limit=1.0)

    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM Account")

    assert sf_sandbox.api_usage == 0


def test_unavailable_and_dropped_connections(sf: Any, sf_sandbox: SalesforceSandbox) -> None:
    sf_sandbox.faults.configure(unavailable=1.0)
    with pytest.raises(SalesforceGeneralError) as info:
        sf.query("SELECT Id FROM Account")
    assert info.value.status == 503
    assert info.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"

    sf_sandbox.faults.clear()
    sf_sandbox.faults.configure(drop=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT Id FROM Account")

    sf_sandbox.faults.clear()
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    assert sf_sandbox.faults.fired["unavailable"] == 1
    assert sf_sandbox.faults.fired["drop"] >= 1


def test_versions_list_and_limit_header_on_every_api_response(
    sf_sandbox: SalesforceSandbox,
) -> None:
    session = requests_session(sf_sandbox)
    headers = {"Authorization": f"Bearer {sf_sandbox.access_token}"}

    versions = session.get(f"{sf_sandbox.url}/services/data/").json()
    missing = session.get(f"{sf_sandbox.url}/services/data/v59.0/sobjects/Nope/describe",
                          headers=headers)

    assert {"version": "59.0", "url": "/services/data/v59.0", "label": "Winter '24"} in versions
    assert missing.status_code == 404
    assert missing.headers["Sforce-Limit-Info"].startswith("api-usage=")
