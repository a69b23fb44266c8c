"""Associations, OAuth, rate limits and fault injection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.companies import ApiException as CompanyApiException
from hubspot.oauth import ApiException as OAuthApiException
from hubspot_support import companies, error_body

from sandbox.hubspot import HubSpotSandbox
from sandbox.hubspot.client import hubspot_client


@pytest.fixture
def linked(sandbox: HubSpotSandbox) -> tuple[list[str], list[str]]:
    cids = sandbox.load("companies", companies(3))
    dids = sandbox.load("deals", [{"dealname": f"Deal {i}"} for i in range(3)])
    sandbox.associate(dids[0], cids[0])
    sandbox.associate(dids[0], cids[1], primary=False)
    sandbox.associate(dids[1], cids[2])
    return cids, dids


def test_v4_batch_read_gives_targets_with_primary_and_unlabeled_types(
    sandbox: HubSpotSandbox, client: HubSpot, linked: tuple[list[str], list[str]]
) -> None:
    cids, dids = linked
    request = BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[{"id": d} for d in dids])
    result = client.crm.associations.v4.batch_api.get_page("deals", "companies", request)
    by_deal = {r._from.id: r.to for r in result.results}
    assert set(by_deal) == {dids[0], dids[1]}
    first = {t.to_object_id: sorted(a.type_id for a in t.association_types)
             for t in by_deal[dids[0]]}
    assert first == {cids[0]: [5, 341], cids[1]: [341]}
    primary = by_deal[dids[0]][0].association_types[0]
    assert (primary.category, primary.label) == ("HUBSPOT_DEFINED", "Primary")
    # The deal without companies is reported as an error of a 207.
    assert result.num_errors == 1
    assert result.errors[0].context["fromObjectId"] == [dids[2]]


def test_v4_per_object_and_reverse_direction(
    client: HubSpot, linked: tuple[list[str], list[str]]
) -> None:
    cids, dids = linked
    page = client.crm.associations.v4.basic_api.get_page("deals", dids[0], "companies",
                                                         limit=500)
    assert [r.to_object_id for r in page.results] == [cids[0], cids[1]]
    back = client.crm.associations.v4.basic_api.get_page("companies", cids[2], "deals")
    assert [(r.to_object_id, [a.type_id for a in r.association_types])
            for r in back.results] == [(dids[1], [6, 342])]


def test_v3_inline_associations_list_each_link_twice(
    client: HubSpot, linked: tuple[list[str], list[str]]
) -> None:
    cids, dids = linked
    deal = client.crm.deals.basic_api.get_by_id(dids[0], associations=["companies"])
    links = [(a.id, a.type) for a in deal.associations["companies"].results]
    assert links == [(cids[0], "deal_to_company"), (cids[0], "deal_to_company_unlabeled"),
                     (cids[1], "deal_to_company_unlabeled")]


def test_oauth_refresh_then_expiry_after_n_calls(sandbox: HubSpotSandbox) -> None:
    sandbox.load("companies", companies(2))
    tokens = hubspot_client(sandbox).oauth.tokens_api.create(
        grant_type="refresh_token", client_id=sandbox.client_id,
        client_secret=sandbox.client_secret, refresh_token=sandbox.refresh_token)
    assert tokens.expires_in == 1800
    assert tokens.token_type == "bearer"
    sandbox.faults.expire_token_after(2)
    api = hubspot_client(sandbox, token=tokens.access_token).crm.companies.basic_api
    assert len(api.get_page(limit=10).results) == 2
    _, _, headers = api.get_page_with_http_info(limit=10)
    # OAuth-authenticated calls carry the burst headers but no daily-limit headers.
    assert "X-HubSpot-RateLimit-Max" in headers
    assert "X-HubSpot-RateLimit-Daily" not in headers
    with pytest.raises(CompanyApiException) as caught:
        api.get_page(limit=10)
    assert caught.value.status == 401
    assert error_body(caught.value)["category"] == "EXPIRED_AUTHENTICATION"
    fresh = hubspot_client(sandbox).oauth.tokens_api.create(
        grant_type="refresh_token", client_id=sandbox.client_id,
        client_secret=sandbox.client_secret, refresh_token=sandbox.refresh_token)
    assert fresh.access_token != tokens.access_token
    again = hubspot_client(sandbox, token=fresh.access_token).crm.companies.basic_api
    assert len(again.get_page(limit=10).results) == 2


def test_oauth_tokens_expire_after_expires_in(sandbox: HubSpotSandbox) -> None:
    api = hubspot_client(sandbox, token=sandbox.issue_oauth_token()).crm.companies.basic_api
    api.get_page()
    sandbox.clock.advance(1800)
    with pytest.raises(CompanyApiException) as caught:
        api.get_page()
    assert caught.value.status == 401


def test_bad_refresh_token_is_rejected(sandbox: HubSpotSandbox) -> None:
    with pytest.raises(OAuthApiException) as caught:
        hubspot_client(sandbox).oauth.tokens_api.create(
            grant_type="refresh_token", client_id=sandbox.client_id,
            client_secret=sandbox.client_secret, refresh_token="na1-nope")
    assert caught.value.status == 400
    assert error_body(caught.value)["status"] == "BAD_REFRESH_TOKEN"


class Elapsed:
    """A manual monotonic clock for the rate-limit windows: time passes only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def elapsed() -> Elapsed:
    return Elapsed()


@pytest.fixture
def limited(elapsed: Elapsed) -> Iterator[HubSpotSandbox]:
    with HubSpotSandbox(burst_max=5, search_per_s=2, daily_max=1000) as sb:
        sb.limits.configure(monotonic=elapsed)
        yield sb


def test_given_burst_of_5_when_6th_call_then_429_with_hubspots_headers_and_body(
    limited: HubSpotSandbox, elapsed: Elapsed,
) -> None:
    api = hubspot_client(limited).crm.companies.basic_api
    remaining = []
    for _ in range(5):
        _, status, headers = api.get_page_with_http_info(limit=1)
        assert status == 200
        remaining.append(int(headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    assert headers["X-HubSpot-RateLimit-Max"] == "5"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert headers["X-HubSpot-RateLimit-Daily"] == "1000"
    assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "995"
    with pytest.raises(CompanyApiException) as caught:
        api.get_page(limit=1)
    assert caught.value.status == 429
    assert caught.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in caught.value.headers
    body = error_body(caught.value)
    assert body["status"] == "error"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["correlationId"]
    # Refused calls do not use up the window; it frees up once the oldest call is 10 s old.
    elapsed.advance(9.9)
    with pytest.raises(CompanyApiException):
        api.get_page(limit=1)
    elapsed.advance(0.2)
    assert api.get_page(limit=1).results == []


def test_search_has_its_own_secondly_limit(limited: HubSpotSandbox) -> None:
    api = hubspot_client(limited).crm.companies.search_api
    api.do_search(public_object_search_request={"limit": 1})
    api.do_search(public_object_search_request={"limit": 1})
    with pytest.raises(CompanyApiException) as caught:
        api.do_search(public_object_search_request={"limit": 1})
    assert caught.value.status == 429
    assert error_body(caught.value)["policyName"] == "SECONDLY"


def test_daily_limit_resets_at_midnight(limited: HubSpotSandbox) -> None:
    limited.limits.configure(daily_max=2, burst_max=100)
    limited.clock.freeze()
    api = hubspot_client(limited).crm.companies.basic_api
    api.get_page()
    api.get_page()
    with pytest.raises(CompanyApiException) as caught:
        api.get_page()
    assert error_body(caught.value)["policyName"] == "DAILY"
    limited.clock.advance(86_400)
    api.get_page()


def test_retry_after_knob_lets_urllib3_retry_gets(limited: HubSpotSandbox) -> None:
    limited.limits.configure(retry_after_s=0.0)
    api = hubspot_client(limited, retry=urllib3.Retry(total=2)).crm.companies.basic_api
    for _ in range(5):
        api.get_page(limit=1)
    # urllib3 re-sends the GET twice (honouring Retry-After), then hands back the last 429.
    with pytest.raises(CompanyApiException) as caught:
        api.get_page(limit=1)
    assert caught.value.status == 429
    assert limited.traffic.calls["GET /crm/v3/objects/companies"] == 8


def test_injected_faults(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    api = client.crm.companies.basic_api
    sandbox.faults.configure(unavailable=1.0)
    with pytest.raises(CompanyApiException) as caught:
        api.get_page()
    assert caught.value.status == 503
    sandbox.faults.clear()
    sandbox.faults.configure(rate_limit=1.0)
    with pytest.raises(CompanyApiException) as caught:
        api.get_page()
    assert caught.value.status == 429
    assert "X-HubSpot-RateLimit-Remaining" in caught.value.headers
    sandbox.faults.clear()
    sandbox.faults.configure(drop=1.0)
    with pytest.raises(urllib3.exceptions.HTTPError):
        api.get_page()
    sandbox.faults.clear()
    assert api.get_page().results == []
    assert sandbox.faults.fired == {"unavailable": 1, "rate_limit": 1, "drop": 1}


def test_latency_knob(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    sandbox.latency_s = 0.15
    api = client.crm.companies.basic_api
    started = time.perf_counter()
    api.get_page()
    assert time.perf_counter() - started >= 0.15


def test_tls_is_real_a_client_without_the_ca_is_refused(sandbox: HubSpotSandbox) -> None:
    untrusting = HubSpot(access_token=sandbox.access_token, host=sandbox.url, retry=False)
    # hubspot-api-client 12 wraps the SSLError in ApiException(status=0), then fails to decode
    # that exception's empty body: what surfaces is an AttributeError. Connectors beware.
    with pytest.raises(AttributeError, match="decode"):
        untrusting.crm.companies.basic_api.get_page()
    assert sandbox.traffic.total() == 0


def test_concurrent_writers_and_searchers_stay_consistent(sandbox: HubSpotSandbox) -> None:
    ids = sandbox.load("companies", companies(400))
    client = hubspot_client(sandbox)

    def write(chunk: list[str]) -> int:
        api = client.crm.companies.batch_api
        result = api.update({"inputs": [{"id": i, "properties": {"website": f"https://{i}.io"}}
                                        for i in chunk]})
        return len(result.results)

    def search(_: int) -> int:
        page = client.crm.companies.search_api.do_search(
            public_object_search_request={"limit": 200, "filterGroups": [{"filters": [
                {"propertyName": "website", "operator": "CONTAINS_TOKEN", "value": ".io"}]}]})
        return int(page.total)

    with ThreadPoolExecutor(max_workers=8) as pool:
        written = list(pool.map(write, [ids[i : i + 50] for i in range(0, 400, 50)]))
        totals = list(pool.map(search, range(16)))
    assert sum(written) == 400
    assert all(0 <= t <= 400 for t in totals)
    assert search(0) == 400
    assert len(sandbox.write_log) == 400
    assert sandbox.traffic.calls["POST /crm/v3/objects/companies/batch/update"] == 8
