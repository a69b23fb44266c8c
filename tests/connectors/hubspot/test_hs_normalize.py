"""Pure functions: raw HubSpot JSON → records, value formats, the classifier, the pacer."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import urllib3

from connectors.base import Action, BudgetExhausted, backoff_s
from connectors.hubspot.errors import classify
from connectors.hubspot.limits import Budget, Pacer
from connectors.hubspot.normalize import (
    StageInfo,
    company_record,
    deal_record,
    deal_status,
    parse_date,
    parse_time,
    primary_company,
    stage_map,
)
from connectors.hubspot.properties import (
    read_value,
    stored_value,
    stream_properties,
    wire_value,
)
from connectors.hubspot.write import validation_problems
from schema.owned_fields import FieldKind
from schema.records import OpportunityStatus, Stream
from sync.config import HubSpotConfig

CONFIG = HubSpotConfig(referring_partner_property="referring_partner",
                       duns_property="duns_number")
COMPANIES = stream_properties(CONFIG, Stream.ACCOUNTS)
DEALS = stream_properties(CONFIG, Stream.OPPORTUNITIES)
STAGES = {"closedwon": StageInfo(True, True), "closedlost": StageInfo(True, False),
          "qualifiedtobuy": StageInfo(False, False)}


@pytest.mark.parametrize(("raw", "expected"), [
    ("2024-01-01T12:00:00.123Z", datetime(2024, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)),
    ("2024-01-01T12:00:00Z", datetime(2024, 1, 1, 12, tzinfo=UTC)),
    ("2024-01-01T14:00:00+02:00", datetime(2024, 1, 1, 12, tzinfo=UTC)),
    ("1704110400000", datetime(2024, 1, 1, 12, tzinfo=UTC)),  # epoch ms (v1 APIs, webhooks)
    ("2024-01-01T12:00:00", datetime(2024, 1, 1, 12, tzinfo=UTC)),  # naive means UTC
    ("", None), (None, None), ("yesterday", None),
])
def test_parse_time(raw: str | None, expected: datetime | None) -> None:
    assert parse_time(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("2024-06-30T00:00:00.000Z", date(2024, 6, 30)),
    ("2024-06-30T23:30:00.000Z", date(2024, 6, 30)),  # the UTC day, whatever the portal zone
    ("2024-06-30", date(2024, 6, 30)),
    ("1719705600000", date(2024, 6, 30)),
    (None, None), ("", None),
])
def test_parse_date(raw: str | None, expected: date | None) -> None:
    assert parse_date(raw) == expected


def _company(**props: Any) -> dict[str, Any]:
    base = {"createdate": "2023-05-01T08:00:00.000Z",
            "hs_lastmodifieddate": "2024-01-01T12:00:00.000Z", "hs_object_id": "512"}
    return {"id": "512", "properties": {**base, **props}, "createdAt": "2023-05-01T08:00:00Z",
            "updatedAt": "2024-01-01T12:00:00.000Z", "archived": False}


@pytest.mark.parametrize(("props", "field", "expected"), [
    ({"domain": "acme.com", "website": "https://www.other.com"}, "website", "acme.com"),
    ({"domain": None, "website": "https://www.acme.com/"}, "website", "https://www.acme.com/"),
    ({"domain": "  ", "website": None}, "website", None),
    ({"name": "  Acme Inc  "}, "name", "Acme Inc"),
    ({"lifecyclestage": "customer"}, "account_type", "customer"),
    ({"hubspot_owner_id": "77"}, "owner_id", "77"),
    ({"duns_number": "15-048-3782"}, "duns", "15-048-3782"),
    ({"ecosystem_overlap_count": "2.0"}, "owned", {
        "overlap_count": "2", "overlap_partners": None, "overlap_contacts": None,
        "overlap_changed_at": None}),
])
def test_company_record(props: dict[str, Any], field: str, expected: object) -> None:
    record = company_record(_company(**props), source="hs", names=COMPANIES)
    value = getattr(record, field)
    assert (dict(value) if field == "owned" else value) == expected
    assert (record.source, record.external_id) == ("hs", "512")
    assert record.modified_at == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert record.created_at == datetime(2023, 5, 1, 8, tzinfo=UTC)


def test_archived_company_is_deleted_as_of_its_archive_time() -> None:
    raw = {**_company(), "archived": True, "archivedAt": "2024-02-01T00:00:00.000Z"}
    record = company_record(raw, source="hs", names=COMPANIES)
    assert record.is_deleted
    assert record.modified_at == datetime(2024, 2, 1, tzinfo=UTC)


def _deal(**props: Any) -> dict[str, Any]:
    base = {"dealname": "Big deal", "dealstage": "qualifiedtobuy", "pipeline": "default",
            "amount": "1500.00", "deal_currency_code": "eur",
            "closedate": "2024-06-30T00:00:00.000Z", "hs_is_closed": "false",
            "hs_is_closed_won": "false", "hs_lastmodifieddate": "2024-01-01T12:00:00.000Z",
            "createdate": "2023-12-01T00:00:00.000Z"}
    return {"id": "9", "properties": {**base, **props}, "archived": False}


@pytest.mark.parametrize(("props", "field", "expected"), [
    ({}, "amount", Decimal("1500.00")),
    ({"amount": "1,500.5"}, "amount", Decimal("1500.5")),
    ({"amount": ""}, "amount", None),
    ({"amount": "n/a"}, "amount", None),
    ({}, "currency", "EUR"),
    ({}, "close_date", date(2024, 6, 30)),
    ({"closedate": None}, "close_date", None),
    ({}, "stage", "qualifiedtobuy"),
    ({"referring_partner": "Acme Partners"}, "referring_partner", "Acme Partners"),
    ({"partner_influenced": "true", "partner_attribution_stamped_at": "1704110400000"},
     "owned", {"partner_influenced": "true", "influencing_partners": None,
               "sourcing_partner": None, "attribution_stamped_at": "2024-01-01T12:00:00Z"}),
])
def test_deal_record(props: dict[str, Any], field: str, expected: object) -> None:
    record = deal_record(_deal(**props), source="hs", names=DEALS, stages=STAGES,
                         company_id="512")
    value = getattr(record, field)
    assert (dict(value) if field == "owned" else value) == expected
    assert record.account_external_id == "512"


@pytest.mark.parametrize(("props", "expected"), [
    ({"dealstage": "closedwon"}, OpportunityStatus.WON),
    ({"dealstage": "closedlost"}, OpportunityStatus.LOST),
    ({"dealstage": "qualifiedtobuy", "hs_is_closed": "true"}, OpportunityStatus.OPEN),
    # A stage the pipelines API does not know: HubSpot's calculated flags decide.
    ({"dealstage": "123456", "hs_is_closed": "true", "hs_is_closed_won": "true"},
     OpportunityStatus.WON),
    ({"dealstage": "123456", "hs_is_closed": "true", "hs_is_closed_won": "false"},
     OpportunityStatus.LOST),
    ({"dealstage": "123456"}, OpportunityStatus.OPEN),
])
def test_deal_status(props: dict[str, Any], expected: OpportunityStatus) -> None:
    assert deal_status(props, STAGES) == expected


def test_stage_map_reads_string_metadata_of_every_pipeline() -> None:
    pipelines = [
        {"id": "default", "stages": [
            {"id": "closedwon", "metadata": {"isClosed": "true", "probability": "1.0"}},
            {"id": "closedlost", "metadata": {"isClosed": "true", "probability": "0.0"}},
            {"id": "appointmentscheduled",
             "metadata": {"isClosed": "false", "probability": "0.2"}}]},
        {"id": "777", "stages": [{"id": "888", "metadata": {"isClosed": "true",
                                                             "probability": "1"}}]},
    ]
    assert stage_map(pipelines) == {"closedwon": StageInfo(True, True),
                                    "closedlost": StageInfo(True, False),
                                    "appointmentscheduled": StageInfo(False, False),
                                    "888": StageInfo(True, True)}


def _target(company: int, *type_ids: int) -> dict[str, Any]:
    return {"toObjectId": company, "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": t, "label": "Primary" if t == 5 else None}
        for t in type_ids]}


@pytest.mark.parametrize(("targets", "expected"), [
    ([_target(30, 341), _target(20, 5, 341)], "20"),
    ([_target(30, 341), _target(20, 341)], "20"),
    ([_target(30, 341)], "30"),
    ([], None),
])
def test_primary_company(targets: list[dict[str, Any]], expected: str | None) -> None:
    assert primary_company(targets) == expected


@pytest.mark.parametrize(("kind", "value", "wire", "stored"), [
    (FieldKind.NUMBER, 3, "3", "3"),
    (FieldKind.NUMBER, Decimal("2.50"), "2.5", "2.5"),
    (FieldKind.NUMBER, 2.0, "2", "2"),
    (FieldKind.BOOLEAN, True, "true", "true"),
    (FieldKind.BOOLEAN, False, "false", "false"),
    (FieldKind.DATETIME, datetime(2024, 3, 1, 12, 0, 5, 250000, tzinfo=UTC),
     "2024-03-01T12:00:05.250Z", "2024-03-01T12:00:05Z"),
    (FieldKind.DATETIME, date(2024, 3, 1), "2024-03-01T00:00:00.000Z", "2024-03-01T00:00:00Z"),
    (FieldKind.TEXT, "Acme (customer)", "Acme (customer)", "Acme (customer)"),
    (FieldKind.LONG_TEXT, None, "", None),
    (FieldKind.TEXT, "", "", None),
])
def test_wire_and_stored_values(kind: FieldKind, value: object, wire: str,
                                stored: str | None) -> None:
    assert wire_value(kind, value) == wire
    assert stored_value(kind, value) == stored
    assert read_value(kind, wire) == stored  # what we predict is what a read gives back


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        wire_value(FieldKind.DATETIME, datetime(2024, 3, 1))


@pytest.mark.parametrize(("body", "expected"), [
    ({"errors": [{"code": "INVALID_INTEGER", "message": "bad",
                  "context": {"propertyName": ["x"]}}]}, [("INVALID_INTEGER", "x")]),
    ({"message": 'Property values were not valid: [{"isValid":false,"message":"m",'
                 '"error":"PROPERTY_DOESNT_EXIST","name":"y"}]'},
     [("PROPERTY_DOESNT_EXIST", "y")]),
    ({"message": "something else"}, []),
])
def test_validation_problems(body: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert [(p["code"], p["name"]) for p in validation_problems(body)] == expected


class FakeApiException(Exception):
    """Shaped like any hubspot sub-package's ApiException (status, reason, body, headers)."""

    def __init__(self, status: int, body: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None, reason: str = "") -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason
        self.body = json.dumps(body) if body is not None else None
        self.headers = headers or {}


RATE = {"X-HubSpot-RateLimit-Interval-Milliseconds": "2000"}


@pytest.mark.parametrize(("exc", "can_refresh", "action", "wait"), [
    (FakeApiException(429, {"policyName": "TEN_SECONDLY_ROLLING"}, RATE), False,
     Action.THROTTLE, 2.0),
    (FakeApiException(429, {"policyName": "TEN_SECONDLY_ROLLING"}), False,
     Action.THROTTLE, 10.0),
    (FakeApiException(429, {"policyName": "SECONDLY"}), False, Action.THROTTLE, 1.0),
    (FakeApiException(429, {"policyName": "SECONDLY"}, {"Retry-After": "3"}), False,
     Action.THROTTLE, 3.0),
    (FakeApiException(429, {"policyName": "DAILY"}), False, Action.RATE_LIMITED, None),
    (FakeApiException(401, {"category": "EXPIRED_AUTHENTICATION"}), True,
     Action.REAUTH, None),
    (FakeApiException(401, {"category": "INVALID_AUTHENTICATION"}), False,
     Action.AUTH_FAILED, None),
    (FakeApiException(403, {"category": "MISSING_SCOPES"}), True, Action.AUTH_FAILED, None),
    (FakeApiException(502), False, Action.RETRY, None),
    (FakeApiException(503, {}, {"Retry-After": "4"}), False, Action.RETRY, 4.0),
    (FakeApiException(400, {"category": "VALIDATION_ERROR"}), False, Action.FAIL, None),
    (FakeApiException(409), False, Action.FAIL, None),
    (FakeApiException(0, reason="SSLError(CERTIFICATE_VERIFY_FAILED)"), False,
     Action.MISCONFIGURED, None),
    (FakeApiException(0, reason="SSLError(EOF occurred in violation of protocol)"), False,
     Action.RETRY, None),
    (urllib3.exceptions.ProtocolError("Connection aborted."), False, Action.RETRY, None),
    (urllib3.exceptions.ReadTimeoutError(None, "/", "timed out"),  # type: ignore[arg-type]
     False, Action.RETRY, None),
    (ValueError("bug"), False, Action.FAIL, None),
])
def test_classify(exc: BaseException, can_refresh: bool, action: Action,
                  wait: float | None) -> None:
    verdict = classify(exc, can_refresh=can_refresh)
    assert verdict.action is action
    assert verdict.retry_after_s == wait


def test_backoff_grows_and_honours_the_rate_limit_interval() -> None:
    retry = classify(FakeApiException(503), can_refresh=False)
    waits = [backoff_s(retry, n) for n in (1, 2, 3, 4)]
    assert waits == sorted(waits) and 0.5 <= waits[0] < 0.7 and waits[3] >= 4
    limited = classify(FakeApiException(429, {"policyName": "TEN_SECONDLY_ROLLING"}, RATE),
                       can_refresh=False)
    assert 2.0 <= backoff_s(limited, 1) <= 2.5  # the whole window, plus jitter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_keeps_to_its_share_of_the_burst_window() -> None:
    clock = FakeClock()
    pacer = Pacer(burst_share=0.5, search_per_s=0, clock=clock, sleep=clock.sleep)
    pacer.observe({"x-hubspot-ratelimit-max": "20",
                   "x-hubspot-ratelimit-interval-milliseconds": "1000"})
    sent = []
    for _ in range(25):
        pacer.before(search=False)
        sent.append(clock.now)
    # At most 10 (50% of 20) in any rolling second.
    assert all(sum(1 for t in sent if s - 1.0 < t <= s) <= 10 for s in sent)
    assert sent[10] == pytest.approx(1.0) and sent[20] == pytest.approx(2.0)


def test_pacer_spaces_searches_and_holds_after_a_429() -> None:
    clock = FakeClock()
    pacer = Pacer(search_per_s=4, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        pacer.before(search=True)
    assert clock.now == pytest.approx(2 * 1.1 / 4)
    pacer.hold(5.0)
    pacer.before(search=False)
    assert clock.now == pytest.approx(2 * 1.1 / 4 + 5.0)


def test_pacer_lets_the_window_roll_when_other_apps_left_little() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.observe({"x-hubspot-ratelimit-max": "100", "x-hubspot-ratelimit-remaining": "3",
                   "x-hubspot-ratelimit-interval-milliseconds": "10000"})
    pacer.before(search=False)
    assert clock.sleeps == [1.0]


def test_budget_stops_at_the_share_of_the_daily_limit() -> None:
    budget = Budget(max_share=0.5)
    budget.check("hs")  # unknown yet: no limit applied
    budget.observe({"x-hubspot-ratelimit-daily": "1000",
                    "x-hubspot-ratelimit-daily-remaining": "501"})
    budget.check("hs")  # 499 used: one more call keeps us at 500
    budget.count("GET /crm/v3/objects/companies")
    with pytest.raises(BudgetExhausted, match=r"500 of 1000"):
        budget.check("hs")
    usage = budget.usage()
    assert (usage.calls, usage.daily_used, usage.daily_limit, usage.daily_cap) == (
        1, 500, 1000, 500)


def test_classify_unwraps_the_attribute_error_the_client_raises_on_tls_failures() -> None:
    # hubspot-api-client's ApiClient runs `e.body.decode()` on the body-less status-0
    # ApiException of a TLS failure; the AttributeError carries the real error as context.
    failure = FakeApiException(0, reason="SSLError(certificate verify failed)")
    try:
        try:
            raise failure
        except FakeApiException as exc:
            exc.body.decode()  # type: ignore[union-attr]
    except AttributeError as exc:
        verdict = classify(exc, can_refresh=False)
    assert verdict.action is Action.MISCONFIGURED
