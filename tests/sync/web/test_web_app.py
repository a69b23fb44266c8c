"""What the pages and the API show, who may see them, and what the browser is allowed to do."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from web_world import Built

from sync.config import WebConfig
from sync.errors import ConfigError
from sync.logs import configure_logging
from sync.web.app import plotly_js
from sync.web.auth import check_bind
from sync.web.queries.common import POPULATIONS
from sync.web.render import CSP, PLOTLY_STYLE_HASH


def _rows(client: TestClient, url: str, table: str) -> list[dict[str, object]]:
    doc = client.get(url).json()
    return next(t["rows"] for t in doc["tables"] if t["name"] == table)


def test_cosell_cell_counts_our_open_opportunities_among_their_customers(
        client: TestClient) -> None:
    grid = {r["ours"]: r for r in _rows(client, "/api/v1/matrix", "grid")}
    # Foxtrot is our open opportunity and a customer of Namewise (named) and Countly (counts);
    # Bravo is one too, but only Hiddenite (hidden) still lists it as a customer.
    assert grid["open_opportunity"]["customer"] == 1
    assert grid["customer"]["customer"] == 3  # Acme, Cobalt (Mixo, counts), Echo (Countly)
    page = client.get("/matrix").text
    cosell = re.search(r'<td class="num cell cosell" id="cosell-cell">(.*?)</td>', page, re.S)
    assert cosell is not None and ">1</a>" in cosell.group(1) and "co-sell" in cosell.group(1)
    cell = _rows(client, "/api/v1/matrix/cell?ours=open_opportunity&theirs=customer", "accounts")
    assert [(r["name"], r["partners_in_cell"]) for r in cell] == [("Foxtrot AB", "Namewise")]
    namewise = {r["ours"]: r for r in _rows(client, "/api/v1/matrix?partner=p-names", "grid")}
    assert namewise["open_opportunity"]["customer"] == 1
    mixo = {r["ours"]: r for r in _rows(client, "/api/v1/matrix?partner=p-mixed", "grid")}
    assert mixo["customer"]["customer"] is None  # shared as counts only: not under its name


def test_counts_only_cells_are_counted_but_never_listed(client: TestClient) -> None:
    pool = {r["ours"]: r for r in
            _rows(client, "/api/v1/matrix?partner=~counts-only", "grid")}
    assert pool["customer"]["customer"] == 2  # Cobalt (Mixo), Echo (Countly)
    doc = client.get("/api/v1/matrix/cell?ours=customer&theirs=customer&partner=~counts-only")
    table = doc.json()["tables"][0]
    assert table["rows"] == [] and "not named" in table["note"]


def test_accounts_ranked_by_density_then_open_pipeline_with_filters(client: TestClient) -> None:
    rows = _rows(client, "/api/v1/accounts", "accounts")
    assert [(r["name"], r["overlap_density"], r["open_pipeline"]) for r in rows[:3]] == [
        ("Acme Corp", 3, "50000.00"), ("Foxtrot AB", 3, "7000.00"), ("Cobalt Inc", 2, "0.00")]
    owned = _rows(client, "/api/v1/accounts?owner=005-cyd", "accounts")
    assert {r["name"] for r in owned} == {"Foxtrot AB", "Echo SA"}
    theirs = _rows(client, "/api/v1/accounts?partner=p-full&population=customer", "accounts")
    assert [r["name"] for r in theirs] == ["Acme Corp"]
    ours = _rows(client, "/api/v1/accounts?our_population=open_opportunity", "accounts")
    assert {r["name"] for r in ours} == {"Foxtrot AB", "Bravo Ltd"}


def test_account_page_answers_who_to_call_and_why_it_matched(client: TestClient) -> None:
    doc = client.get("/api/v1/accounts/salesforce/001A").json()
    tables = {t["name"]: t for t in doc["tables"]}
    assert [r["partner"] for r in tables["partners"]["rows"]] == ["Fullmark", "Namewise"]
    assert tables["partners"]["note"].startswith("Plus 1 partner sharing counts only")
    # The page says populations in words; the JSON (and CSV) keep the codes.
    foxtrot = {t["name"]: t for t in client.get("/api/v1/accounts/salesforce/001F").json()[
        "tables"]}
    assert "open_opportunity" in {r["population"] for r in foxtrot["history"]["rows"]}
    page = client.get("/accounts/salesforce/001F").text
    assert "open_opportunity" not in page and "<td>open opportunity</td>" in page
    assert [r["owner_name"] for r in tables["contacts"]["rows"]] == ["Full Owner 0"]
    why = {r["partner"]: r for r in tables["matches"]["rows"]}
    assert why["Fullmark"]["matched"] and why["Fullmark"]["reason"] == "same domain acme.com"
    credits = {r["partner"] for r in tables["credits"]["rows"]}
    assert credits == {"Fullmark", "Namewise", "a partner sharing counts only"}
    assert client.get("/accounts/salesforce/nope").status_code == 404


def test_partner_page_says_the_working_set_verdict_and_draws_its_history(
        client: TestClient) -> None:
    doc = client.get("/api/v1/partners/p-full").json()
    assert doc["facts"]["verdict"] == "rolodex"
    assert doc["facts"]["summary"][0].startswith("In 2026Q2, Fullmark and we pursued 4 named")
    history = doc["tables"][0]["rows"]
    assert history[-1]["customer"] == 1 and history[-3]["customer"] == 2  # Bravo left in May
    chart = doc["charts"][0]["figure"]["data"]
    assert {t["name"] for t in chart} == {"customer", "open opportunity", "prospect"}


def test_network_counts_each_won_deal_once(client: TestClient) -> None:
    rows = _rows(client, "/api/v1/network", "revenue")
    q2 = next(r for r in rows if r["period"] == "2026Q2")
    # Acme's deal has three partners and counts once; Hotel's only partner is hidden.
    assert (q2["won_deals"], q2["influenced_deals"]) == (4, 3)
    assert q2["ecosystem_influenced_revenue"] == "55000.00"


def test_csv_cells_cannot_run_as_formulas_and_pages_escape_crm_values(
        client: TestClient) -> None:
    body = client.get("/api/v1/accounts?format=csv&table=accounts")
    assert body.headers["content-type"].startswith("text/csv")
    assert "attachment" in body.headers["content-disposition"]
    names = [r["name"] for r in csv.DictReader(io.StringIO(body.text))]
    assert "'=HYPERLINK(\"http://evil\") <script>x</script>" in names
    page = client.get("/accounts").text
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_every_answer_carries_a_strict_csp_and_pages_load_nothing_from_elsewhere(
        client: TestClient) -> None:
    for url in ("/matrix", "/partners/p-full", "/network", "/api/v1/matrix", "/login"):
        r = client.get(url)
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        if url.startswith("/api"):
            continue
        assert not re.search(r"<script(?![^>]*\ssrc=\"/static/)", r.text), "inline script"
        assert not re.search(r"(src|href)=\"(https?:)?//", r.text), "a remote resource"
        assert not re.search(r"\s(style|on[a-z]+)=", r.text), "inline style or handler"
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self' " + PLOTLY_STYLE_HASH
    assert "unsafe-eval" not in CSP and directives["default-src"] == "'none'"
    js = client.get(client.get("/partners/p-full").text.split('<script src="')[1].split('"')[0])
    assert js.content == Path(plotly_js()).read_bytes()


def test_no_write_actions(client: TestClient) -> None:
    for method in ("post", "put", "patch", "delete"):
        for url in ("/api/v1/matrix", "/api/v1/accounts", "/matrix", "/operations"):
            assert getattr(client, method)(url).status_code == 405
    spec = client.get("/api/v1/openapi.json").json()
    assert {m for ops in spec["paths"].values() for m in ops} == {"get"}
    assert len(spec["paths"]) == 8


def test_token_gate_refuses_and_logs_without_the_token(
        token_client: Callable[..., TestClient]) -> None:
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    with token_client("tok-3f9a1c77e2") as c:
        bare = c.get("/api/v1/matrix")
        assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
        wrong = c.get("/api/v1/matrix", headers={"Authorization": "Bearer tok-WRONG-77aa"})
        assert wrong.status_code == 401 and "Fullmark" not in wrong.text
        assert c.get("/matrix", headers={"Accept": "text/html"}).status_code == 401
        ok = c.get("/api/v1/matrix", headers={"Authorization": "Bearer tok-3f9a1c77e2"})
        assert ok.status_code == 200
        login = c.post("/login", data={"token": "nope-nope", "next": "/matrix"},
                       follow_redirects=False)
        assert login.status_code == 401
        login = c.post("/login", data={"token": "tok-3f9a1c77e2", "next": "/matrix"},
                       follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/matrix"
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert "tok-3f9a1c77e2" not in cookie
        assert c.get("/matrix").status_code == 200  # the client kept the cookie
        evil = c.post("/login", data={"token": "tok-3f9a1c77e2", "next": "//evil.test/"},
                      follow_redirects=False)
        assert evil.headers["location"] == "/"
    logged = out.getvalue()
    assert "web request refused" in logged and "wrong bearer token" in logged
    assert "web login refused" in logged
    for secret in ("tok-3f9a1c77e2", "tok-WRONG-77aa", "nope-nope"):
        assert secret not in logged


def test_trusted_proxy_header(token_client: Callable[..., TestClient]) -> None:
    with token_client(token="", header="X-Forwarded-Email") as c:
        assert c.get("/api/v1/network").status_code == 401
        r = c.get("/api/v1/network", headers={"X-Forwarded-Email": "lead@example.com"})
        assert r.status_code == 200


def test_binding_beyond_loopback_needs_a_token_or_a_proxy() -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        check_bind(host, WebConfig())
    with pytest.raises(ConfigError, match=r"\[web\] token"):
        check_bind("0.0.0.0", WebConfig())  # noqa: S104 - the address refused
    check_bind("0.0.0.0", WebConfig(token="x" * 20))  # noqa: S104
    check_bind("10.1.2.3", WebConfig(trusted_proxy_header="X-Forwarded-Email"))


def test_world_is_as_described(world: tuple[Engine, Built]) -> None:
    assert "Full Owner 0" in world[1].owners_shared


def test_figures_shared_without_names_show_as_counts_under_sharing(client: TestClient) -> None:
    """Private-matching intersections and exchange-file sizes: under the partner where we
    name it, pooled where it is counts only, absent where hidden; never a link or a name."""
    doc = client.get("/api/v1/matrix").json()
    rows = next(t for t in doc["tables"] if t["name"] == "counts_only")["rows"]
    got = {(r["partner"], r["what"].split(",")[0]): {p: r[p] for p in POPULATIONS if r[p]}
           for r in rows}
    assert got == {
        ("Fullmark", "in common with our accounts"): {"customer": 3},
        ("Namewise", "their accounts"): {"prospect": 120},
        ("Partners sharing counts only", "in common with our accounts"):
            {"open_opportunity": 2},
        ("Partners sharing counts only", "their accounts"): {"customer": 40},
    }
    mine = client.get("/api/v1/matrix?partner=p-full").json()
    assert [(r["partner"], r["customer"]) for r in
            next(t for t in mine["tables"] if t["name"] == "counts_only")["rows"]] == [
        ("Fullmark", 3)]
    pool = client.get("/api/v1/matrix?partner=~counts-only").json()
    assert {r["partner"] for r in next(t for t in pool["tables"]
                                        if t["name"] == "counts_only")["rows"]} == {
        "Partners sharing counts only"}
    # The grid still counts our accounts only: the figures are beside it, not in it.
    grid = {r["ours"]: r for r in doc["tables"][0]["rows"]}
    assert sum(r["customer"] for r in grid.values()) < 40
    page = client.get("/matrix").text
    assert "Shared as counts only" in page and "120" in page
