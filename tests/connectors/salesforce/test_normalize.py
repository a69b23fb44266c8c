"""Pure normalizers and query text: raw REST JSON and Bulk CSV rows → records, no HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from connectors.base import Watermark
from connectors.salesforce import normalize, soql
from connectors.salesforce.fields import FieldInfo
from connectors.salesforce.normalize import FieldNames
from connectors.salesforce.pull import window_start
from connectors.salesforce.session import endpoint_key, login_target
from connectors.salesforce.write import stored_value, wire_value
from schema.records import OpportunityStatus
from sync.config import SalesforceConfig

ACCOUNT_NAMES = FieldNames(owned={
    "overlap_count": "Ecosystem_Overlap_Count__c", "overlap_partners": "Ecosystem_Partners__c",
    "overlap_contacts": "Ecosystem_Partner_Contacts__c",
    "overlap_changed_at": "Ecosystem_Overlap_Changed_At__c"}, duns="DUNS__c")
OPP_NAMES = FieldNames(owned={
    "partner_influenced": "Partner_Influenced__c", "sourcing_partner": "Sourcing_Partner__c"},
    referring_partner="Referrer__c", currency=True)

REST_ACCOUNT: dict[str, Any] = {
    "attributes": {"type": "Account"}, "Id": "001000000000001AAA", "Name": "Acme",
    "Website": "https://acme.com", "OwnerId": "005000000000001AAA", "Type": "Customer - Direct",
    "CreatedDate": "2024-01-02T03:04:05.000+0000", "SystemModstamp": "2024-03-01T12:00:00.000+0000",
    "IsDeleted": False, "DUNS__c": "12-345-6789", "Ecosystem_Overlap_Count__c": Decimal("2.0"),
    "Ecosystem_Partners__c": "Beta (customer)", "Ecosystem_Partner_Contacts__c": None,
    "Ecosystem_Overlap_Changed_At__c": "2024-02-01T00:00:00.000+0000",
}
CSV_ACCOUNT: dict[str, Any] = {
    "Id": "001000000000001AAA", "Name": "Acme", "Website": "https://acme.com",
    "OwnerId": "005000000000001AAA", "Type": "Customer - Direct",
    "CreatedDate": "2024-01-02T03:04:05.000Z", "SystemModstamp": "2024-03-01T12:00:00.000Z",
    "IsDeleted": "false", "DUNS__c": "12-345-6789", "Ecosystem_Overlap_Count__c": "2",
    "Ecosystem_Partners__c": "Beta (customer)", "Ecosystem_Partner_Contacts__c": "",
    "Ecosystem_Overlap_Changed_At__c": "2024-02-01T00:00:00.000Z",
}


@pytest.mark.parametrize("raw", [REST_ACCOUNT, CSV_ACCOUNT], ids=["rest", "bulk-csv"])
def test_account_rows_from_rest_and_bulk_normalize_identically(raw: dict[str, Any]) -> None:
    rec = normalize.account(raw, "sf", ACCOUNT_NAMES)
    assert rec.external_id == "001000000000001AAA" and rec.source == "sf"
    assert rec.modified_at == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert rec.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (rec.name, rec.website, rec.account_type, rec.duns) == (
        "Acme", "https://acme.com", "Customer - Direct", "12-345-6789")
    assert rec.is_deleted is False
    assert dict(rec.owned) == {"overlap_count": "2", "overlap_partners": "Beta (customer)",
                               "overlap_contacts": None,
                               "overlap_changed_at": "2024-02-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("is_closed", "is_won", "status"),
    [(False, False, OpportunityStatus.OPEN), (True, True, OpportunityStatus.WON),
     (True, False, OpportunityStatus.LOST), ("true", "true", OpportunityStatus.WON),
     ("false", "", OpportunityStatus.OPEN), ("true", "false", OpportunityStatus.LOST)],
)
def test_opportunity_status_from_is_closed_and_is_won(
    is_closed: object, is_won: object, status: OpportunityStatus
) -> None:
    assert normalize.opportunity_status(is_closed, is_won) is status


@pytest.mark.parametrize(
    ("amount", "influenced", "expected_amount", "expected_flag"),
    [(Decimal("1234.50"), True, Decimal("1234.50"), "true"),
     ("1234.5", "true", Decimal("1234.5"), "true"),
     (None, False, None, "false"), ("", "", None, "false")],
    ids=["rest", "csv", "rest-null", "csv-empty"],
)
def test_opportunity_values(amount: object, influenced: object, expected_amount: Any,
                            expected_flag: str) -> None:
    raw = {"Id": "006000000000001AAA", "AccountId": "001000000000001AAA", "Name": "Deal",
           "StageName": "Closed Won", "Amount": amount, "CloseDate": "2024-06-30",
           "IsClosed": True, "IsWon": True, "LeadSource": "Partner Referral",
           "CurrencyIsoCode": "EUR", "Referrer__c": "Gamma",
           "SystemModstamp": "2024-03-01T12:00:00.000+0000", "IsDeleted": False,
           "Partner_Influenced__c": influenced, "Sourcing_Partner__c": None}
    rec = normalize.opportunity(raw, "sf", OPP_NAMES)
    assert rec.amount == expected_amount and rec.close_date == date(2024, 6, 30)
    assert rec.currency == "EUR" and rec.referring_partner == "Gamma"
    assert rec.account_external_id == "001000000000001AAA" and rec.stage == "Closed Won"
    assert rec.owned == {"partner_influenced": expected_flag, "sourcing_partner": None}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2024-03-01T12:00:00.000+0000", datetime(2024, 3, 1, 12, tzinfo=UTC)),
     ("2024-03-01T12:00:00.000Z", datetime(2024, 3, 1, 12, tzinfo=UTC)),
     ("2024-03-01T14:00:00+02:00", datetime(2024, 3, 1, 12, tzinfo=UTC)),
     ("2024-03-01T12:00:00.250-0000", datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)),
     ("", None), (None, None)],
)
def test_datetimes_in_every_wire_form(raw: object, expected: datetime | None) -> None:
    assert normalize.parse_datetime(raw) == expected


def test_tie_safe_cursor_and_window_text() -> None:
    moment = datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert soql.after(moment, "001000000000001AAA") == (
        "SystemModstamp >= 2024-03-01T12:00:00Z AND (SystemModstamp > 2024-03-01T12:00:00Z OR "
        "(SystemModstamp = 2024-03-01T12:00:00Z AND Id > '001000000000001AAA'))")
    assert soql.after(moment) == "SystemModstamp >= 2024-03-01T12:00:00Z"
    text = soql.select(["Id", "Name"], "Account", [soql.before(moment)])
    assert text == ("SELECT Id, Name FROM Account WHERE SystemModstamp < 2024-03-01T12:00:00Z "
                    "ORDER BY SystemModstamp ASC, Id ASC")
    with pytest.raises(ValueError, match="not a Salesforce id"):
        soql.after(moment, "x' OR Name != '")


@pytest.mark.parametrize(
    ("lookback", "mark", "start"),
    [(10, Watermark(datetime(2024, 3, 1, 12, tzinfo=UTC), "001A"),
      (datetime(2024, 3, 1, 11, 50, tzinfo=UTC), "")),
     (0, Watermark(datetime(2024, 3, 1, 12, tzinfo=UTC), "001A"),
      (datetime(2024, 3, 1, 12, tzinfo=UTC), "001A")),
     (0, Watermark(datetime(2024, 3, 1, 12, 0, 0, 500, tzinfo=UTC), "001A"),
      (datetime(2024, 3, 1, 12, tzinfo=UTC), ""))],
)
def test_window_start_moves_back_by_the_lookback(
    lookback: int, mark: Watermark, start: tuple[datetime, str]
) -> None:
    assert window_start(mark, timedelta(minutes=lookback)) == start
    assert window_start(None, timedelta(minutes=lookback)) is None


NUMBER = FieldInfo("N__c", "double", 0, 0, True)
TEXT = FieldInfo("T__c", "string", 10, 0, True)
CHECK = FieldInfo("B__c", "boolean", 0, 0, True)
WHEN = FieldInfo("D__c", "datetime", 0, 0, True)


@pytest.mark.parametrize(
    ("value", "info", "wire", "stored"),
    [(3, NUMBER, 3, "3"), (2.5, NUMBER, 3, "3"), (Decimal("4.0"), NUMBER, 4, "4"),
     (None, NUMBER, None, None),
     ("short", TEXT, "short", "short"), ("much too long", TEXT, "much too …", "much too …"),
     ("", TEXT, None, None), (True, CHECK, True, "true"), (None, CHECK, False, "false"),
     (datetime(2024, 1, 1, 13, 0, 0, 999, tzinfo=UTC), WHEN, "2024-01-01T13:00:00.000Z",
      "2024-01-01T13:00:00Z"),
     ("2024-01-01T14:00:00+01:00", WHEN, "2024-01-01T13:00:00.000Z", "2024-01-01T13:00:00Z")],
)
def test_values_are_shaped_per_field_type(value: object, info: FieldInfo, wire: object,
                                          stored: str | None) -> None:
    assert wire_value(value, info) == wire
    assert stored_value(value, info) == stored


@pytest.mark.parametrize(
    ("url", "key"),
    [("https://x/services/data/v59.0/query/?q=1", "query"),
     ("https://x/services/data/v59.0/queryAll/?q=1", "queryAll"),
     ("https://x/services/data/v59.0/query/01gABC-2000", "queryMore"),
     ("https://x/services/data/v59.0/sobjects/Account/describe", "describe"),
     ("https://x/services/data/v59.0/composite", "composite"),
     ("https://x/services/data/v59.0/jobs/query/750x/results", "bulk2.query"),
     ("https://x/services/oauth2/token", "login"),
     ("https://x/services/Soap/m/59.0/", "metadata"),
     ("https://x/services/data/v59.0/limits/", "limits")],
)
def test_endpoint_keys(url: str, key: str) -> None:
    assert endpoint_key(url) == key


@pytest.mark.parametrize(
    ("auth", "login_url", "instance_url", "domain", "rewrite"),
    [("password", "https://login.salesforce.com", "", "login", None),
     ("jwt", "https://test.salesforce.com/", "", "test", None),
     ("client_credentials", "", "https://acme.my.salesforce.com", "acme.my", None),
     ("password", "https://127.0.0.1:8443", "", "login",
      ("https://login.salesforce.com", "https://127.0.0.1:8443")),
     ("client_credentials", "", "https://sso.proxy.corp", "ecosync-login.my",
      ("https://ecosync-login.my.salesforce.com", "https://sso.proxy.corp"))],
)
def test_login_target_rewrites_only_non_salesforce_hosts(
    auth: Any, login_url: str, instance_url: str, domain: str, rewrite: Any
) -> None:
    config = SalesforceConfig(auth=auth, login_url=login_url, instance_url=instance_url)
    assert login_target(config) == (domain, rewrite)


@pytest.mark.parametrize(("raw", "expected"), [
    (Decimal("123456789.0"), "123456789"), (123456789, "123456789"), ("12-345-6789", "12-345-6789"),
    ("", None), (None, None)])
def test_duns_kept_as_text_whatever_the_field_type(raw: object, expected: str | None) -> None:
    assert normalize.identifier(raw) == expected


@pytest.mark.parametrize(
    ("login_url", "token_host", "audience"),
    [("https://acme.my.salesforce.com", "https://acme.my.salesforce.com",
      "https://login.salesforce.com"),
     ("https://acme--uat.sandbox.my.salesforce.com",
      "https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
     ("https://test.salesforce.com", "https://test.salesforce.com",
      "https://test.salesforce.com")],
)
def test_jwt_audience_is_login_or_test_whatever_the_token_host(
    login_url: str, token_host: str, audience: str, tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import jwt as pyjwt
    import requests

    from connectors.base import TransientError
    from connectors.salesforce.session import Api
    from sandbox.salesforce.client import _private_key_pem

    key = tmp_path / "k.pem"
    key.write_text(_private_key_pem())
    seen: dict[str, str] = {}

    def fake_post(self: requests.Session, url: str, data: Any = None, **_: Any) -> Any:
        seen["url"] = url
        seen["aud"] = pyjwt.decode(data["assertion"], options={"verify_signature": False})["aud"]
        raise requests.ConnectionError("stop here")

    monkeypatch.setattr(requests.Session, "post", fake_post)
    config = SalesforceConfig(auth="jwt", login_url=login_url, client_id="ck",
                              username="u@x.example", private_key_file=str(key))
    with pytest.raises(TransientError, match="login failed"):
        _ = Api(config, requests.Session(), lambda _s: None).sf
    assert seen["url"] == f"{token_host}/services/oauth2/token"
    assert seen["aud"] == audience
