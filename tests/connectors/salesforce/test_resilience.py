"""Auth flows, expired sessions, transient failures, rate limits and the API budget."""

from __future__ import annotations

import pytest
import responses
from sf_support import ConnectorFactory, Sleeps, land, later, load_accounts, rows, watermark
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.base import (
    RETRY_AFTER_CAP_S,
    AuthFailed,
    BudgetExhausted,
    FieldUpdate,
    RateLimited,
    TransientError,
)
from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceSandbox
from schema.models import Account
from schema.records import Stream
from sync.config import SalesforceConfig
from sync.ingest import live_count


@pytest.mark.parametrize("auth", ["password", "client_credentials", "jwt"])
def test_given_a_token_expiring_mid_run_then_the_pull_reauthenticates_and_completes(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine,
    auth: str,
) -> None:
    load_accounts(sandbox, 5000)
    connector = make_connector(auth)
    sandbox.expire_token_after(1)  # every token, current and future, lasts one call

    assert land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1))) \
        == 5000
    # describe + 3 composite pages, each on a fresh token after one refresh
    assert sum(sandbox.tokens.logins.values()) == 4
    assert connector.usage().by_endpoint["login"] == sum(sandbox.tokens.logins.values())


@pytest.mark.parametrize("oauth", [False, True], ids=["soap", "oauth-password"])
def test_given_password_auth_then_soap_or_oauth_login_works(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine,
    oauth: bool,
) -> None:
    load_accounts(sandbox, 3)
    extra = {"client_id": sandbox.client_id, "client_secret": sandbox.client_secret} \
        if oauth else {}
    connector = make_connector("password", **extra)
    assert land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1))) == 3
    assert sandbox.tokens.logins["password" if oauth else "soap"] == 1


def test_given_a_persistent_401_then_one_relogin_and_a_clear_auth_error(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory
) -> None:
    load_accounts(sandbox, 3)
    connector = make_connector("client_credentials")
    sandbox.expire_token_after(0)

    with pytest.raises(AuthFailed, match=r"crm\.salesforce\.client_id"):
        list(connector.pull(Stream.ACCOUNTS, None, later(1)))
    assert sandbox.tokens.logins["client_credentials"] == 2  # first login, one refresh


def test_given_an_expired_session_id_then_auth_failed_names_the_key(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    sandbox.expire_tokens()
    with pytest.raises(AuthFailed, match=r"crm\.salesforce\.session_id"):
        connector.count(Stream.ACCOUNTS)


def test_given_wrong_credentials_then_check_names_the_keys_to_fix(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory
) -> None:
    connector = make_connector("client_credentials", client_secret="wrong")
    problems = connector.check()
    assert len(problems) == 1
    assert "invalid_client" in problems[0] and "crm.salesforce.client_secret" in problems[0]


def test_given_a_503_storm_then_calls_are_retried_with_backoff(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine,
    sleeps: Sleeps,
) -> None:
    load_accounts(sandbox, 9000)
    sandbox.faults.configure(unavailable=0.5, drop=0.1)

    assert land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1))) \
        == 9000
    assert sandbox.faults.fired["unavailable"] > 0
    assert len(sleeps) >= sandbox.faults.fired["unavailable"]
    assert all(0 <= s <= 30 for s in sleeps)


def test_given_the_service_never_recovers_then_transient_error(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, sleeps: Sleeps
) -> None:
    sandbox.faults.configure(unavailable=1.0)
    with pytest.raises(TransientError, match="SERVER_UNAVAILABLE"):
        connector.count(Stream.ACCOUNTS)
    assert len(sleeps) == 5  # six attempts


def test_given_the_daily_limit_is_hit_then_the_run_stops_cleanly(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, sleeps: Sleeps
) -> None:
    sandbox.faults.configure(rate_limit=1.0)
    with pytest.raises(RateLimited) as err:
        connector.count(Stream.ACCOUNTS)
    assert err.value.retry_after_s == 3600 and "REQUEST_LIMIT_EXCEEDED" in str(err.value)
    assert not sleeps  # not retried


def test_given_a_budget_cap_then_the_run_stops_before_exceeding_it(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine
) -> None:
    sandbox.daily_limit = 1000
    sandbox.api_usage = 495
    load_accounts(sandbox, 8000)
    connector = make_connector(max_api_share=0.5)

    with pytest.raises(BudgetExhausted, match="max_api_share"):
        land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1)))

    assert sandbox.api_usage == 500  # exactly the cap, never beyond
    # What was pulled before the stop is committed with its watermark: the next run resumes.
    with Session(warehouse) as session:
        landed = live_count(session, connector.name, Stream.ACCOUNTS)
    assert landed > 0 and watermark(warehouse, connector.name, Stream.ACCOUNTS) is not None
    usage = connector.usage()
    assert (usage.daily_used, usage.daily_limit) == (500, 1000)
    assert usage.daily_cap == 500  # the engine reads ecosync's ceiling from the connector
    with pytest.raises(BudgetExhausted):
        connector.write(Stream.ACCOUNTS, [FieldUpdate(Stream.ACCOUNTS, next(iter(
            rows(warehouse, Account))), {"overlap_count": 1})])


def test_usage_counts_calls_by_endpoint(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    load_accounts(sandbox, 10)
    list(connector.pull(Stream.ACCOUNTS, None, later(1)))
    usage = connector.usage()
    assert usage.by_endpoint == {"describe": 1, "composite": 1}
    assert usage.calls == 2 and usage.daily_used == sandbox.api_usage


# ---------------------------------------------------------------- narrow cases via responses
BASE = "https://org.example.com/services/data/v59.0"


def _offline_connector(sleeps: Sleeps) -> SalesforceConnector:
    config = SalesforceConfig(enabled=True, auth="session", instance_url="https://org.example.com",
                              session_id="00D!token")
    return SalesforceConnector(config, sleep=sleeps)


@responses.activate
def test_retry_after_from_a_gateway_is_honoured(sleeps: Sleeps) -> None:
    url = f"{BASE}/query/"
    responses.get(url, status=503, headers={"Retry-After": "7"},
                  json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}])
    responses.get(url, status=200, json={"totalSize": 4, "done": True, "records": []},
                  headers={"Sforce-Limit-Info": "api-usage=10/15000"})

    assert _offline_connector(sleeps).count(Stream.ACCOUNTS) == 4
    assert len(sleeps) == 1 and sleeps[0] >= 7.0


@responses.activate
def test_an_absurd_retry_after_is_capped(sleeps: Sleeps) -> None:
    url = f"{BASE}/query/"
    responses.get(url, status=429, headers={"Retry-After": "86400"}, json=[])
    responses.get(url, status=200, json={"totalSize": 1, "done": True, "records": []})
    assert _offline_connector(sleeps).count(Stream.ACCOUNTS) == 1
    assert sleeps == [RETRY_AFTER_CAP_S]


@responses.activate
def test_lock_errors_on_a_whole_request_are_retried(sleeps: Sleeps) -> None:
    url = f"{BASE}/query/"
    responses.get(url, status=400, json=[{"errorCode": "UNABLE_TO_LOCK_ROW", "message": "x"}])
    responses.get(url, status=200, json={"totalSize": 2, "done": True, "records": []})
    assert _offline_connector(sleeps).count(Stream.ACCOUNTS) == 2
    assert len(sleeps) == 1


@responses.activate
def test_a_refused_request_is_not_retried_and_reads_clearly(sleeps: Sleeps) -> None:
    from connectors.salesforce.errors import SalesforceApiError

    responses.get(f"{BASE}/query/", status=403,
                  json=[{"errorCode": "API_DISABLED_FOR_ORG", "message": "API is not enabled"}])
    with pytest.raises(SalesforceApiError) as err:
        _offline_connector(sleeps).count(Stream.ACCOUNTS)
    assert str(err.value) == ("Salesforce refused the request (API_DISABLED_FOR_ORG: API is "
                              "not enabled)")
    assert err.value.status == 403 and not sleeps


@responses.activate
def test_a_failed_composite_subrequest_is_classified_like_a_direct_call(sleeps: Sleeps) -> None:
    from connectors.salesforce import queries
    from connectors.salesforce.errors import SalesforceApiError

    def reply(status: int, body: object) -> dict[str, object]:
        return {"compositeResponse": [{"referenceId": "n", "httpStatusCode": status,
                                       "body": body}]}

    url = f"{BASE}/composite"
    responses.post(url, json=reply(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}]))
    responses.post(url, json=reply(200, {"totalSize": 3, "done": True, "records": []}))
    responses.post(url, json=reply(400, [{"errorCode": "INVALID_FIELD", "message": "no"}]))
    api = _offline_connector(sleeps).api

    bodies = queries.composite(api, [("n", "SELECT COUNT() FROM Account")], deleted=True)
    assert bodies["n"]["totalSize"] == 3 and len(sleeps) == 1
    sent = responses.calls[0].request.body
    assert isinstance(sent, bytes) and b"/services/data/v59.0/queryAll/?q=SELECT+COUNT" in sent
    with pytest.raises(SalesforceApiError, match="INVALID_FIELD"):
        queries.composite(api, [("n", "SELECT Nope FROM Account")], deleted=True)
    assert len(sleeps) == 1


def test_ca_bundle_wins_over_requests_ca_bundle_and_proxies_honour_no_proxy(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    load_accounts(sandbox, 2)
    assert make_connector().count(Stream.ACCOUNTS) == 2

    monkeypatch.delenv("NO_PROXY")
    with pytest.raises(TransientError, match="unreachable"):
        make_connector().count(Stream.ACCOUNTS)


def test_given_an_untrusted_certificate_then_check_names_ca_bundle(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, sleeps: Sleeps
) -> None:
    problems = make_connector(ca_bundle="/etc/ssl/certs/ca-certificates.crt").check()
    assert len(problems) == 1 and "crm.salesforce.ca_bundle" in problems[0]
    assert not sleeps  # not retried


def test_given_an_unreachable_org_then_the_error_names_the_url_and_what_to_check(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, sleeps: Sleeps
) -> None:
    nowhere = "https://127.0.0.1:1"  # nothing listens there: connection refused

    with pytest.raises(TransientError) as err:
        make_connector(instance_url=nowhere).count(Stream.ACCOUNTS)

    message = str(err.value)
    assert f"Salesforce unreachable at {nowhere} after 6 attempts" in message
    assert "check crm.salesforce.instance_url" in message and "ecosync doctor" in message
    assert len(sleeps) == 5  # retried first: a network blip is not worth a failed run

    with pytest.raises(TransientError) as login:
        make_connector("password", login_url=nowhere).count(Stream.ACCOUNTS)
    assert f"login failed: Salesforce unreachable at {nowhere}" in str(login.value)
    assert "check crm.salesforce.login_url" in str(login.value)
