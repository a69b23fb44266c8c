"""Two installs run private matching both ways and end with exactly the known intersection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from psi_world import (
    BOTH_CUSTOMERS,
    BOTH_OPEN,
    BOTH_PROSPECTS,
    DUNS_A,
    run_both_ways,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import PartnerPopulationCount, PsiContactTag, PsiRun
from sync.matching.keys import registrable_domain
from sync.partners.csv_import import import_partner_csv
from sync.psi.log import counted_populations, log_rows
from sync.reports.overlaps import overlaps_report

PAIRS = [pytest.param("sqlite", "sqlite", id="sqlite-sqlite"),
         pytest.param("sqlite", "postgres", id="sqlite-postgres")]


def _domains(sites: list[str]) -> set[str]:
    return {d for d in (registrable_domain(s) for s in sites) if d}


EXPECTED = ({("customer", d, None) for d in _domains(BOTH_CUSTOMERS)}
            | {("prospect", d, None) for d in _domains(BOTH_PROSPECTS)}
            | {("customer", None, "123456789")})


@pytest.mark.parametrize(("kind_a", "kind_b"), PAIRS)
def test_both_sides_end_with_exactly_the_intersection(make_pair: Any, tmp_path: Path,
                                                      kind_a: str, kind_b: str) -> None:
    acme, globex = make_pair(kind_a, kind_b)
    files = run_both_ways(acme, globex, tmp_path)

    assert acme.partner_rows() == EXPECTED
    assert globex.partner_rows() == EXPECTED
    # Counts only: the exact number of keys in common, and no member landed anywhere.
    for side, tag in ((acme, "a"), (globex, "g")):
        done = files[f"{tag}-finish"]
        assert done.shared == {"customer": "full", "open_opportunity": "counts",
                               "prospect": "names"}
        assert done.found["open_opportunity"] == {"domain": len(BOTH_OPEN), "duns": 0}
        assert not any(pop == "open_opportunity" for pop, _, _ in side.partner_rows())
        with Session(side.engine) as s:
            assert counted_populations(s) == [(side.peer_id, "open_opportunity",
                                               len(BOTH_OPEN))]

    # Matching, unchanged, turns the landed rows into overlaps of the right accounts, and
    # the overlaps report shows them named, with the counts-only figure in the unnamed pool.
    for side in (acme, globex):
        side.match()
        found = side.overlaps()
        methods = {m for _, m, _ in found}
        assert methods == {"domain", "duns"}
        assert len(found) == len(BOTH_CUSTOMERS) + len(BOTH_PROSPECTS) + 1
        assert {p for _, _, p in found} == {"customer", "prospect"}
        with Session(side.engine) as s:
            report = overlaps_report(s)
        named, pooled = report
        assert (named.partner_id, named.by_population) == (
            side.peer_id, {"customer": 6, "open_opportunity": 0, "prospect": 3})
        assert pooled.partner_id is None
        assert pooled.by_population == {"customer": 0, "open_opportunity": len(BOTH_OPEN),
                                        "prospect": 0}


def test_full_sharing_sends_owners_of_intersecting_accounts_only(make_pair: Any,
                                                                 tmp_path: Path) -> None:
    acme, globex = make_pair()
    files = run_both_ways(acme, globex, tmp_path)
    owners = acme.owners()
    customers = _domains(BOTH_CUSTOMERS) | {"123456789"}
    # Globex shares customers in full: each intersecting customer row got its owner.
    assert {k for k, v in owners.items() if v} == customers
    contacts = acme.contacts()
    for key in customers:  # the owner's name and e-mail, never the CRM's owner id
        name, email = contacts[key]
        assert name and name.startswith("Rep ") and email == (
            f"rep{name.removeprefix('Rep ')}@globex.example")
    sent = b"".join(Path(f).read_bytes() for f in files["a"])
    assert b"@globex.example" in sent and b"005OWNER" not in sent
    # Prospects are shared by name only: no owner.
    assert all(owners[d] is None for d in _domains(BOTH_PROSPECTS))
    # The responder's one-use tags are gone once answered; both runs are complete.
    for side in (acme, globex):
        with Session(side.engine) as s:
            assert s.scalars(select(PsiContactTag)).all() == []
            statuses = {(r.role, r.status) for r in s.scalars(select(PsiRun))}
        assert statuses == {("requester", "contacts_received"),
                            ("responder", "contacts_sent")}
    assert len(files["a"]) == 4


def test_psi_log_lists_every_run_on_both_sides(make_pair: Any, tmp_path: Path) -> None:
    acme, globex = make_pair()
    run_both_ways(acme, globex, tmp_path)
    with Session(acme.engine) as s:
        rows = log_rows(s)
    assert [(r["role"], r["partner_id"]) for r in rows] == [("responder", "globex"),
                                                             ("requester", "globex")]
    mine = rows[1]
    assert mine["result"]["open_opportunity"] == {"level": "counts", "domain": 4, "duns": 0}
    assert mine["sizes"]["ours"]["domain"] > 0
    assert [m["kind"] for m in mine["messages"]] == ["request", "response",
                                                      "contacts_request", "contacts"]
    assert all(len(m["sha256"]) == 64 for m in mine["messages"])
    assert DUNS_A[0] not in str(rows)


def test_a_population_we_hide_shows_no_figure(make_pair: Any, tmp_path: Path) -> None:
    acme, globex = make_pair()
    acme.share = {"customer": "full", "open_opportunity": "hidden", "prospect": "full"}
    req, resp = tmp_path / "req.psi", tmp_path / "resp.psi"
    acme.request(req)
    globex.respond(req, resp)
    acme.finish(resp)
    with Session(acme.engine) as s:
        [row] = log_rows(s)
        assert set(row["result"]) == {"customer", "prospect"}
        assert "open_opportunity" not in row["found_text"]
        assert counted_populations(s) == []
        pooled = [r for r in overlaps_report(s) if r.partner_id is None]
    assert pooled == []


def test_the_web_view_shows_a_private_matching_partner_unchanged(make_pair: Any,
                                                                 tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from sync.web.app import create_app

    acme, globex = make_pair()
    run_both_ways(acme, globex, tmp_path)
    acme.match()
    with TestClient(create_app(acme.engine, acme.config)) as client:
        matrix = client.get("/api/v1/matrix", params={"partner": "globex"})
        assert matrix.status_code == 200, matrix.text
        accounts = client.get("/api/v1/accounts", params={"partner": "globex"})
        assert accounts.status_code == 200, accounts.text
        page = client.get("/accounts")
        assert page.status_code == 200
    listed = accounts.json()["tables"][0]["rows"]
    assert len(listed) == len(BOTH_CUSTOMERS) + len(BOTH_PROSPECTS) + 1
    # The counts-only population shows as a number, its accounts nowhere.
    text_ = matrix.text + accounts.text
    assert all(d not in text_ for d in _domains(BOTH_OPEN))


def test_a_private_result_replaces_the_counts_of_an_earlier_exchange_file(
        make_pair: Any, tmp_path: Path) -> None:
    # The partner once sent an exchange file with its open opportunities as a count; then
    # the two ran private matching. The list is now the private result: the overlaps report
    # must not go on showing the old file's size of the partner's list beside it.
    acme, globex = make_pair()
    req, resp = tmp_path / "req.psi", tmp_path / "resp.psi"
    acme.request(req)
    with Session(acme.engine) as s, s.begin():
        s.add(PartnerPopulationCount(partner_id=acme.peer_id, population="open_opportunity",
                                     accounts=143, as_of=acme.now, imported_at=acme.now))
    with Session(acme.engine) as s:
        assert [r.counts_only for r in overlaps_report(s) if r.counts_only] == [
            {"open_opportunity": 143}]
    globex.respond(req, resp)
    acme.finish(resp)
    acme.match()
    with Session(acme.engine) as s:
        report = overlaps_report(s)
    assert [r.counts_only for r in report] == [{} for _ in report]


def test_a_file_import_replaces_a_private_results_counts(make_pair: Any,
                                                         tmp_path: Path) -> None:
    # The partner's list came from private matching, counts-only figure included; then a
    # plain file of theirs was imported. Its rows are the list now: the old run's figure
    # must leave the overlaps report's unnamed pool.
    acme, globex = make_pair()
    req, resp = tmp_path / "req.psi", tmp_path / "resp.psi"
    acme.request(req)
    globex.respond(req, resp)
    acme.finish(resp)
    with Session(acme.engine) as s:
        assert counted_populations(s) == [(acme.peer_id, "open_opportunity", len(BOTH_OPEN))]
    listing = tmp_path / "globex.csv"
    listing.write_text("name,domain,population\nSome Co,some-co.com,customer\n",
                       encoding="utf-8")
    with Session(acme.engine) as s, s.begin():
        import_partner_csv(s, acme.peer_id, listing, now=acme.tick())
    acme.match()
    with Session(acme.engine) as s:
        assert counted_populations(s) == []
        assert [r for r in overlaps_report(s) if r.partner_id is None] == []
