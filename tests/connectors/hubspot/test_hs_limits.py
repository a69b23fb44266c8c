"""Rate limits, pacing, the daily budget, retries and auth, against the emulator's counters."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from hs_support import T0, companies, connector_for, deals, hubspot_config, virtual_time

from connectors.base import AuthFailed, BudgetExhausted, TransientError, Watermark
from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox, RateLimits
from schema.records import Stream

TOKEN = "POST /oauth/v1/token"


@dataclass
class Arrivals:
    """Every request the emulator's rate limiter saw: (its monotonic time, search?, refused)."""

    seen: list[tuple[float, bool, str | None]] = field(default_factory=list)

    def max_in_window(self, seconds: float, *, search: bool | None = None) -> int:
        times = [t for t, s, _ in self.seen if search is None or s == search]
        best, start = 0, 0
        for end, t in enumerate(times):
            while times[start] <= t - seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def refused(self) -> list[str]:
        return [r for _, _, r in self.seen if r]


@pytest.fixture
def arrivals(monkeypatch: pytest.MonkeyPatch) -> Arrivals:
    record = Arrivals()
    admit = RateLimits.admit

    def spy(self: RateLimits, *, search: bool, day: int, with_daily: bool) -> Any:
        decision = admit(self, search=search, day=day, with_daily=with_daily)
        record.seen.append((self.monotonic(), search, decision.refused))
        return decision

    monkeypatch.setattr(RateLimits, "admit", spy)
    return record


@pytest.fixture
def limited() -> Iterator[HubSpotSandbox]:
    """HubSpot's real Free-tier shape, compressed: 20 calls per rolling 1 s, search 5/s."""
    with HubSpotSandbox(burst_max=20, burst_interval_s=1.0, search_per_s=5) as sb:
        sb.clock.freeze(T0)
        yield sb


def test_given_other_apps_using_the_burst_when_pulling_then_429s_back_off_within_the_limit(
    limited: HubSpotSandbox, arrivals: Arrivals
) -> None:
    limited.load("companies", companies(2500))
    connector = connector_for(limited)
    # Another app of the portal has just spent 18 of the 20 calls of the window.
    for _ in range(18):
        limited.limits.admit(search=False, day=T0.toordinal(), with_daily=False)
    arrivals.seen.clear()

    pages = list(connector.pull(Stream.ACCOUNTS, None, T0, deleted=False))

    assert sum(len(p.records) for p in pages) == 2500
    refused = arrivals.refused()
    assert 1 <= len(refused) <= 2 and set(refused) == {"TEN_SECONDLY_ROLLING"}
    # Ours alone never exceed the burst limit, nor our half-share of it once learned.
    assert arrivals.max_in_window(1.0) <= 20
    assert arrivals.max_in_window(1.0, search=False) <= 10 + len(refused)
    assert connector.usage().by_endpoint["GET /crm/v3/objects/companies"] == 25 + len(refused)
    # The backoff waits out the whole learned window (1 s) before the next attempt.
    first = next(i for i, (_, _, r) in enumerate(arrivals.seen) if r)
    assert arrivals.seen[first + 1][0] - arrivals.seen[first][0] >= 1.0
    assert connector.client.budget.rate_limited["TEN_SECONDLY_ROLLING"] == len(refused)


def test_given_default_pacing_when_searching_then_no_429_and_at_most_4_searches_a_second(
    arrivals: Arrivals,
) -> None:
    # HubSpot's published limits: 100 / 10 s burst (Free tier), 5 searches a second.
    with HubSpotSandbox(burst_max=100, burst_interval_s=10.0, search_per_s=5) as sb:
        sb.clock.freeze(T0)
        changed = [{**d, "hs_lastmodifieddate": T0 + timedelta(seconds=i)}
                   for i, d in enumerate(deals(1800))]
        sb.load("deals", changed)
        connector = connector_for(sb)  # search_requests_per_second = 4, burst share 50%
        clock = virtual_time(sb)

        started = clock()
        pages = list(connector.pull(Stream.OPPORTUNITIES, Watermark(T0), T0 + timedelta(1),
                                    deleted=False))
        elapsed = clock() - started

    assert sum(len(p.records) for p in pages) == 1800
    assert arrivals.refused() == []
    # Sent at most 4 a second, and never to the limit.
    assert arrivals.max_in_window(0.9, search=True) <= 4
    assert arrivals.max_in_window(1.0, search=True) <= 5
    searches = math.ceil(1800 / 200)
    assert elapsed >= (searches - 1) / 4  # spaced, not bunched
    assert arrivals.max_in_window(10.0) <= 50


def test_given_a_server_sending_retry_after_when_rate_limited_then_urllib3_does_not_retry(
    limited: HubSpotSandbox, arrivals: Arrivals
) -> None:
    limited.limits.configure(retry_after_s=0.3)
    limited.load("companies", companies(10))
    connector = connector_for(limited)
    # Other apps of the portal spent the whole window half a second ago.
    for _ in range(20):
        limited.limits.admit(search=False, day=T0.toordinal(), with_daily=False)
    virtual_time(limited).sleep(0.5)
    arrivals.seen.clear()

    pages = list(connector.pull(Stream.ACCOUNTS, None, T0, deleted=False))

    assert sum(len(p.records) for p in pages) == 10
    # Every request the server saw was one of ours, counted by us: none sent behind our back.
    assert len(arrivals.seen) == connector.usage().calls == limited.traffic.total()
    assert len(arrivals.refused()) >= 1


def test_given_503s_and_dropped_connections_when_pulling_then_the_policy_retries_them(
    sandbox: HubSpotSandbox,
) -> None:
    sandbox.load("companies", companies(1200))
    sandbox.faults.configure(seed=3, unavailable=0.1, drop=0.05)
    connector = connector_for(sandbox)

    pages = list(connector.pull(Stream.ACCOUNTS, None, T0, deleted=False))

    ids = [r.external_id for p in pages for r in p.records]
    assert len(ids) == len(set(ids)) == 1200
    assert sum(sandbox.faults.fired.values()) >= 2
    assert connector.usage().calls == 12 + sum(sandbox.faults.fired.values())


def test_given_the_daily_share_is_used_when_calling_then_budget_exhausted_stops_first(
) -> None:
    with HubSpotSandbox(daily_max=100) as sb:
        sb.clock.freeze(T0)
        sb.load("companies", companies(2000))
        for _ in range(40):  # other apps of the portal used 40 of today's 100 calls
            sb.limits.admit(search=False, day=sb.clock.now_ms() // 86_400_000, with_daily=True)
        connector = connector_for(sb, max_api_share=0.5)

        with pytest.raises(BudgetExhausted, match="max_api_share"):
            for _ in connector.pull(Stream.ACCOUNTS, None, T0, deleted=False):
                pass

        assert sb.limits.daily_used == 50  # stopped at 50% of the daily limit, not past it
        usage = connector.usage()
        assert (usage.daily_used, usage.daily_limit) == (50, 100)
        assert usage.daily_cap == 50  # the engine reads ecosync's ceiling from the connector
        assert usage.by_endpoint == {"GET /crm/v3/objects/companies": 10}


def test_given_a_bad_private_app_token_when_checking_then_the_message_names_the_key(
    sandbox: HubSpotSandbox,
) -> None:
    connector = connector_for(sandbox, access_token="pat-na1-wrong")
    problems = connector.check()
    assert len(problems) == 1
    assert "401" in problems[0] and "crm.hubspot.access_token" in problems[0]
    with pytest.raises(AuthFailed, match=r"crm\.hubspot\.access_token"):
        list(connector.pull(Stream.ACCOUNTS, None, T0))
    assert sandbox.traffic.calls["GET /crm/v3/properties/companies"] == 1  # no retry of a 401


def _oauth(sandbox: HubSpotSandbox, **overrides: Any) -> Any:
    settings: dict[str, Any] = {"auth": "oauth", "access_token": "",
                                "client_id": sandbox.client_id,
                                "client_secret": sandbox.client_secret,
                                "refresh_token": sandbox.refresh_token}
    return connector_for(sandbox, **{**settings, **overrides})


def test_given_oauth_when_the_token_nears_expiry_then_it_is_refreshed_before_the_call(
    sandbox: HubSpotSandbox,
) -> None:
    sandbox.load("companies", companies(150))
    connector = _oauth(sandbox)

    list(connector.pull(Stream.ACCOUNTS, None, T0))
    assert sandbox.traffic.calls[TOKEN] == 1
    sandbox.clock.advance(1800 - 60)  # within the refresh margin of the 30-minute token
    list(connector.pull(Stream.ACCOUNTS, None, sandbox.clock.now()))

    assert sandbox.traffic.calls[TOKEN] == 2
    assert sandbox.traffic.calls["GET /crm/v3/objects/companies"] == 6  # no 401 in between


def test_given_oauth_when_hubspot_answers_401_then_it_refreshes_once_and_carries_on(
    sandbox: HubSpotSandbox,
) -> None:
    sandbox.load("companies", companies(500))
    sandbox.faults.expire_token_after(2)  # every access token dies after two calls
    connector = _oauth(sandbox)

    pages = list(connector.pull(Stream.ACCOUNTS, None, T0, deleted=False))

    assert sum(len(p.records) for p in pages) == 500
    # 5 pages at 2 calls per token: the first token plus one refresh per 401.
    assert sandbox.traffic.calls[TOKEN] == 3
    assert sandbox.traffic.calls["GET /crm/v3/objects/companies"] == 5 + 2


def test_given_a_revoked_refresh_token_when_checking_then_the_oauth_keys_are_named(
    sandbox: HubSpotSandbox,
) -> None:
    connector = _oauth(sandbox, refresh_token="na1-revoked")
    problems = connector.check()
    assert len(problems) == 1
    assert "crm.hubspot.refresh_token" in problems[0] and "BAD_REFRESH_TOKEN" in problems[0]


def test_given_an_untrusted_certificate_when_checking_then_ca_bundle_is_named_at_once(
    sandbox: HubSpotSandbox,
) -> None:
    connector = connector_for(sandbox, ca_bundle="")  # the sandbox CA is not in the system store

    problems = connector.check()

    assert len(problems) == 1 and "crm.hubspot.ca_bundle" in problems[0]
    assert connector.usage().calls == 1  # a certificate does not get better with retries


def test_given_an_unreachable_portal_then_the_error_names_the_url_and_what_to_check(
    sandbox: HubSpotSandbox,
) -> None:
    slept: list[float] = []
    config = replace(hubspot_config(sandbox), base_url="https://127.0.0.1:1")
    connector = HubSpotConnector(config, now=sandbox.clock.now, sleep=slept.append)

    with pytest.raises(TransientError) as err:
        connector.count(Stream.ACCOUNTS)

    message = str(err.value)
    assert "HubSpot unreachable at https://127.0.0.1:1 after 6 attempts" in message
    assert "check crm.hubspot.base_url" in message and "ecosync doctor" in message
    assert connector.usage().by_endpoint == {"POST /crm/v3/objects/companies/search": 6}
    assert sum(slept) > 15  # backed off between the attempts (0.5 s doubling)
    (problem,) = connector.check()
    assert "unreachable at https://127.0.0.1:1" in problem
