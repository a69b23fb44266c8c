"""Every page, API answer and CSV download, walked on a world with partners at every sharing
level: nothing a partner does not share appears anywhere.

Two warehouses are built: one with a partner hidden in every population (and the hidden
population of a mixed partner), one without that data. Every URL must answer byte for byte
the same on both: a hidden partner is as if it did not exist, its counts included. On top,
no page names a counts-only partner or shows an owner the partner does not share in full.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from web_world import SECRET_STRINGS, Built, build, client_for

from sync.sharing import POOLED_KEY
from sync.web.queries.common import POPULATIONS

SKIP = {"/login", "/", "/favicon.ico", "/static/{name}", "/static/plotly-{version}.min.js"}


def _values(name: str, built: Built) -> list[str]:
    partners = ["", POOLED_KEY, *built.partners, "p-nope"]
    return {
        "partner": partners, "partner_id": [p for p in partners if p] ,
        "ours": list(POPULATIONS), "theirs": list(POPULATIONS),
        "population": ["", *POPULATIONS], "our_population": ["", *POPULATIONS],
        "owner": ["", "005-ann", "005-nobody"], "country": ["", "DE"],
        "source": ["salesforce"], "external_id": [*built.accounts, "nope"],
        "page": ["1", "2"],
    }.get(name, [""])


def urls(client: TestClient, built: Built) -> Iterator[str]:
    """Each API path of the OpenAPI document and its page twin, over the world's values."""
    pages = {r.path for r in client.app.routes  # type: ignore[attr-defined]
             if isinstance(r, APIRoute) and "GET" in r.methods and r.path not in SKIP
             and not r.path.startswith("/api/")}
    spec = client.get("/api/v1/openapi.json").json()
    assert pages == {p.removeprefix("/api/v1") for p in spec["paths"]}, "a page lacks its API"
    for path, ops in spec["paths"].items():
        params = [p for p in ops["get"].get("parameters", [])
                  if p["name"] not in ("format", "table")]
        path_names = [p["name"] for p in params if p["in"] == "path"]
        required = [p["name"] for p in params if p["in"] == "query" and p.get("required")]
        optional = [p["name"] for p in params if p["in"] == "query" and not p.get("required")]
        for path_values in itertools.product(*(_values(n, built) for n in path_names)):
            filled = path
            for n, v in zip(path_names, path_values, strict=True):
                filled = filled.replace("{" + n + "}", v)
            for req in itertools.product(*(_values(n, built) for n in required)):
                base = [f"{n}={v}" for n, v in zip(required, req, strict=True)]
                queries = ["&".join(base)] + ["&".join([*base, f"{opt}={v}"])
                                              for opt in optional
                                              for v in _values(opt, built) if v]
                for q in queries:
                    yield f"{filled}?{q}"
                    yield f"{filled.removeprefix('/api/v1')}?{q}"


def _walk(client: TestClient, built: Built) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for url in urls(client, built):
        r = client.get(url)
        out[url] = (r.status_code, r.text)
        if url.startswith("/api/") and r.status_code == 200:
            for table in r.json()["tables"]:
                csv_url = f"{url}&format=csv&table={table['name']}"
                c = client.get(csv_url)
                out[csv_url] = (c.status_code, c.text)
    return out


def test_nothing_unshared_appears_in_any_page_api_answer_or_csv(new_database) -> None:
    with_unshared, without = new_database(), new_database()
    built = build(with_unshared, unshared=True)
    build(without, unshared=False)
    with client_for(with_unshared) as a, client_for(without) as b:
        seen_a, seen_b = _walk(a, built), _walk(b, built)
    assert seen_a.keys() == seen_b.keys()
    assert len(seen_a) > 100
    statuses = {s for s, _ in seen_a.values()}
    assert statuses <= {200, 404}, statuses
    for url, (status, body) in seen_a.items():
        assert (status, body) == seen_b[url], f"{url} differs with hidden data present"
        for secret in [*SECRET_STRINGS, *built.owners_unshared]:
            assert secret not in body, f"{secret!r} appears in {url}"
    everything = "\n".join(body for _, body in seen_a.values())
    # The walk reaches what IS shared, so the assertions above can fail.
    for shared in ["Fullmark", "Namewise", "Mixo", *built.owners_shared[:2]]:
        assert shared in everything, f"{shared!r} is shared but never shown"
