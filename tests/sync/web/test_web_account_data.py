"""The Accounts page filters by our accounts' country (issue 18): page, API and CSV agree."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from web_world import Built, client_for

from sync.attribution import explain as attribution_explain


def _api(client: TestClient, query: str) -> list[dict[str, object]]:
    doc = client.get(f"/api/v1/accounts{query}").json()
    return next(t["rows"] for t in doc["tables"] if t["name"] == "accounts")


def test_country_filter_on_the_page_its_api_twin_and_the_csv(client: TestClient) -> None:
    everyone = _api(client, "")
    assert {r["name"]: r["country"] for r in everyone}["Acme Corp"] == "United States"
    assert {r["name"]: r["country"] for r in everyone}["Bravo Ltd"] is None
    us = _api(client, "?country=United%20States")
    assert {r["name"] for r in us} == {"Acme Corp", "Cobalt Inc"}
    assert {r["country"] for r in us} == {"United States"}
    # Filters combine: an owner's accounts in one country.
    assert [r["name"] for r in _api(client, "?country=France&owner=005-cyd")] == ["Echo SA"]
    assert _api(client, "?country=Atlantis") == []

    body = client.get("/api/v1/accounts?country=Germany&format=csv&table=accounts").text
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["name"], r["country"]) for r in rows] == [("Delta GmbH", "Germany")]

    page = client.get("/accounts?country=Sweden").text
    select = re.search(r'<select name="country">(.*?)</select>', page, re.S)
    assert select is not None
    # Every country our accounts are in, once, sorted; the chosen one selected.
    assert re.findall(r'<option value="([^"]*)"', select.group(1)) == [
        "", "France", "Germany", "Sweden", "United Kingdom", "United States"]
    assert '<option value="Sweden" selected>' in select.group(1)
    table = page.split('<table', 1)[1]
    assert "Foxtrot AB" in table and "Acme Corp" not in table


def test_account_page_shows_the_country(client: TestClient) -> None:
    doc = client.get("/api/v1/accounts/salesforce/001E").json()
    assert doc["facts"]["country"] == "France"
    assert "<dt>Country</dt><dd>France</dd>" in client.get("/accounts/salesforce/001E").text


def test_owner_filter_lists_names_and_the_lists_show_names(client: TestClient) -> None:
    page = client.get("/accounts?owner=005-ann").text
    select = re.search(r'<select name="owner">(.*?)</select>', page, re.S)
    assert select is not None
    # Owners by name; the value stays the CRM id (what the filter matches on).
    assert re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)<', select.group(1)) == [
        ("", "Anyone"), ("005-ann", "Ann Archer"), ("005-bob", "Bob Baker")]
    assert '<option value="005-ann" selected>' in select.group(1)
    rows = _api(client, "?owner=005-ann")
    assert {r["owner"] for r in rows} == {"Ann Archer"}
    assert {"Acme Corp", "Cobalt Inc"} <= {r["name"] for r in rows}
    # An owner the CRM never described shows as its id, and can still be filtered on.
    cyd = _api(client, "?owner=005-cyd")
    assert {r["owner"] for r in cyd} == {"005-cyd"} and cyd
    assert '<option value="005-cyd" selected>005-cyd</option>' in client.get(
        "/accounts?owner=005-cyd").text
    body = client.get("/api/v1/accounts?owner=005-bob&format=csv&table=accounts").text
    assert {r["owner"] for r in csv.DictReader(io.StringIO(body))} == {"Bob Baker"}
    assert "bob.baker@ourco.example" not in body  # the list names owners, no addresses
    cell = client.get("/api/v1/matrix/cell?ours=customer&theirs=customer").json()
    assert {r["owner"] for r in cell["tables"][0]["rows"]} >= {"Ann Archer"}


def test_account_page_names_our_owner(client: TestClient) -> None:
    doc = client.get("/api/v1/accounts/salesforce/001A").json()
    assert (doc["facts"]["owner_name"], doc["facts"]["owner_email"]) == (
        "Ann Archer", "ann.archer@ourco.example")
    page = client.get("/accounts/salesforce/001A").text
    assert "<dt>Owner</dt><dd>Ann Archer &lt;ann.archer@ourco.example&gt;</dd>" in page


def test_account_page_credits_are_attribution_explains_in_one_read_of_the_ledger(
        world: tuple[Engine, Built]) -> None:
    """The credits table holds each listed opportunity's active stamp as `attribution
    explain` shows it, and the page reads the stamp ledger once, not once per opportunity."""
    engine = world[0]
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM attribution_stamps" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with client_for(engine) as client:
            doc = client.get("/api/v1/accounts/salesforce/001A").json()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    tables = {t["name"]: t["rows"] for t in doc["tables"]}
    assert [o["external_id"] for o in tables["opportunities"]] == ["006A1", "006A2"]
    assert len(seen) == 1
    with Session(engine) as s:
        expected = []
        for ext in ("006A1", "006A2"):
            active = attribution_explain.explain(s, f"salesforce:{ext}").active
            if active is not None:
                expected += [(ext, active.version, active.outcome, c.partner, c.kind,
                              c.population, str(c.corporate_amount)) for c in active.credits]
    assert expected  # the won deal is stamped, with credits
    assert [(r["opportunity"], r["version"], r["outcome"], r["partner"], r["kind"],
             r["population"], r["corporate_amount"]) for r in tables["credits"]] == expected
