"""The settings currencies API: dated exchange rates, paged, behind settings.currencies.read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

from sandbox.hubspot import HubSpotSandbox

PATH = "/settings/v3/currencies/exchange-rates"


def _get(sandbox: HubSpotSandbox, **params: str) -> requests.Response:
    return requests.get(sandbox.url + PATH, params=params, verify=str(sandbox.ca_file),
                        headers={"Authorization": f"Bearer {sandbox.access_token}"},
                        timeout=10)


def test_rates_are_listed_with_their_effective_dates_in_pages(sandbox: HubSpotSandbox) -> None:
    for month in range(1, 13):
        sandbox.add_exchange_rate("EUR", f"1.{month:02d}",
                                  datetime(2024, month, 1, tzinfo=UTC))
    sandbox.add_exchange_rate("GBP", "1.27", datetime(2024, 1, 1, tzinfo=UTC))

    first = _get(sandbox)
    assert first.status_code == 200
    body: dict[str, Any] = first.json()
    assert len(body["results"]) == 10  # the default page
    rate = body["results"][0]
    assert rate["fromCurrencyCode"] == "EUR" and rate["toCurrencyCode"] == "USD"
    assert rate["conversionRate"] == 1.01  # a JSON number
    assert rate["effectiveAt"] == "2024-01-01T00:00:00.000Z"
    assert set(rate) == {"id", "fromCurrencyCode", "toCurrencyCode", "conversionRate",
                         "effectiveAt", "createdAt", "updatedAt", "visibleInUI"}
    after = body["paging"]["next"]["after"]
    rest = _get(sandbox, after=after).json()
    assert len(rest["results"]) == 3 and "paging" not in rest
    only_gbp = _get(sandbox, fromCurrencyCode="GBP", limit="100").json()["results"]
    assert [r["conversionRate"] for r in only_gbp] == [1.27]
    assert _get(sandbox, limit="101").status_code == 400


def test_without_the_scope_the_call_is_refused_with_missing_scopes(
    sandbox: HubSpotSandbox,
) -> None:
    sandbox.revoke_scope("settings.currencies.read")

    refused = _get(sandbox)

    assert refused.status_code == 403
    body = refused.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == [
        "settings.currencies.read"]
