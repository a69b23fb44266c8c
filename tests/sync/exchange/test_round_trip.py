"""The round trip of issue 19: two warehouses, ours and a partner's, each exports its accounts
for the other under its own outbound policy and imports the other's file.

- Where both sides share a population by name (`names` or `full`), both compute the same
  overlap count for each pair of populations, and it is the true one.
- Where one side shares a population as `counts`, the other sees the count and no member.
- No exported byte carries more than the exporting side's policy allows.
"""

from __future__ import annotations

import csv
import json
from itertools import product
from pathlib import Path
from typing import Any

from exchange_world import (
    NOW,
    POPULATIONS,
    Company,
    build_side,
    match,
    overlap_matrix,
    side_config,
)
from sqlalchemy import Engine, func, select

from schema.db import transaction
from schema.models import PartnerAccount, PartnerPopulationCount
from sync.config import Config
from sync.exchange.export import ExportFormat, ExportResult, export_for_partner
from sync.exchange.importer import import_partner_file
from sync.partners.registry import sync_partners_from_config
from sync.reports.overlaps import overlaps_report

SHOWN_BY_NAME = ("names", "full")

# Companies 0-39 are ours, 20-59 theirs: 20-39 are on both lists. Each side's CRM makes a
# company its customer, open opportunity or prospect by its own rule, so the pairs differ.
OURS = {i: POPULATIONS[i % 3] for i in range(0, 40)}
THEIRS = {i: POPULATIONS[(i // 2) % 3] for i in range(20, 60)}
OUR_POLICY = {"customer": "full", "open_opportunity": "names", "prospect": "counts"}
THEIR_POLICY = {"customer": "full", "open_opportunity": "counts", "prospect": "names"}


def _company(i: int, population: str) -> Company:
    return Company(f"Roundtrip {i:03d} Industries", f"roundtrip{i:03d}.com", population,
                   f"{200_000_000 + i:09d}" if i % 4 == 0 else None)


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _side(engine: Engine, companies: dict[int, str], *, source: str, organisation: str,
          partner_id: str, partner_name: str, outbound: dict[str, str]) -> Config:
    build_side(engine, [_company(i, p) for i, p in companies.items()], source=source)
    config = side_config(_url(engine), organisation=organisation, partner_id=partner_id,
                         partner_name=partner_name, outbound=outbound)
    with transaction(engine) as session:
        sync_partners_from_config(session, config, now=NOW)
    return config


def _export(engine: Engine, config: Config, partner_id: str, out: Path) -> ExportResult:
    with transaction(engine) as session:
        return export_for_partner(session, config, partner_id, out, fmt=ExportFormat.ECOSYNC,
                                  by="revops@example", now=NOW)


def _import(engine: Engine, partner_id: str, result: ExportResult) -> None:
    assert result.manifest_path is not None
    with transaction(engine) as session:
        import_partner_file(session, partner_id, result.manifest_path, now=NOW)


def _true_pairs(mine: dict[int, str], other: dict[int, str]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for i in mine.keys() & other.keys():
        out[(mine[i], other[i])] = out.get((mine[i], other[i]), 0) + 1
    return out


def _scan(result: ExportResult, companies: dict[int, str], policy: dict[str, str]) -> None:
    """Every byte written for the partner: a company of a population not shared by name is
    nowhere in it (name, domain, DUNS); a row shared by name carries no full-level detail."""
    assert result.manifest_path is not None
    written = result.manifest_path.read_bytes() + result.rows_path.read_bytes()
    for i, population in companies.items():
        c = _company(i, population)
        if policy.get(population, "hidden") not in SHOWN_BY_NAME:
            for value in (c.name, c.domain, c.duns):
                assert value is None or value.encode() not in written, (i, population, value)
    with result.rows_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["population"] for r in rows} == {p for p, level in policy.items()
                                              if level in SHOWN_BY_NAME}
    for row in rows:
        if policy[row["population"]] == "names":
            assert not (row["stage"] or row["last_activity_date"] or row["owner_name"]
                        or row["owner_email"]), row
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    expected_counts = {p: sum(1 for q in companies.values() if q == p)
                       for p, level in policy.items() if level != "hidden"}
    assert manifest["counts"] == expected_counts


def _counts_only_seen(engine: Engine, partner_id: str) -> dict[str, int]:
    with transaction(engine) as session:
        return {c.population: c.accounts for c in session.scalars(
            select(PartnerPopulationCount).where(PartnerPopulationCount.partner_id == partner_id))}


def _members(engine: Engine, partner_id: str) -> dict[str, int]:
    with transaction(engine) as session:
        return dict(session.execute(
            select(PartnerAccount.population, func.count())
            .where(PartnerAccount.partner_id == partner_id)
            .group_by(PartnerAccount.population)).all())


def test_two_warehouses_exchange_both_ways_and_agree(databases: Any, tmp_path: Path) -> None:
    ours_db, theirs_db = databases.new(), databases.new()
    ours = _side(ours_db, OURS, source="salesforce", organisation="Example Corp",
                 partner_id="p-them", partner_name="Them Inc", outbound=OUR_POLICY)
    theirs = _side(theirs_db, THEIRS, source="hubspot", organisation="Them Inc",
                   partner_id="p-us", partner_name="Example Corp", outbound=THEIR_POLICY)

    ours_out = _export(ours_db, ours, "p-them", tmp_path / "from-us")
    theirs_out = _export(theirs_db, theirs, "p-us", tmp_path / "from-them")
    _scan(ours_out, OURS, OUR_POLICY)
    _scan(theirs_out, THEIRS, THEIR_POLICY)

    _import(ours_db, "p-them", theirs_out)
    _import(theirs_db, "p-us", ours_out)
    match(ours_db, ours)
    match(theirs_db, theirs)

    # Both shared by name: the same count on both sides, and the true one.
    seen_by_us = overlap_matrix(ours_db, "p-them")
    seen_by_them = overlap_matrix(theirs_db, "p-us")
    truth = _true_pairs(OURS, THEIRS)
    compared = 0
    for mine, other in product(POPULATIONS, POPULATIONS):
        if OUR_POLICY[mine] in SHOWN_BY_NAME and THEIR_POLICY[other] in SHOWN_BY_NAME:
            assert seen_by_us.get((mine, other), 0) == seen_by_them.get((other, mine), 0) \
                == truth.get((mine, other), 0), (mine, other)
            compared += truth.get((mine, other), 0)
    assert compared > 0

    # Shared as counts: the other side has the count, and not one member.
    assert _counts_only_seen(ours_db, "p-them") == {
        "open_opportunity": sum(1 for p in THEIRS.values() if p == "open_opportunity")}
    assert set(_members(ours_db, "p-them")) == {"customer", "prospect"}
    assert _counts_only_seen(theirs_db, "p-us") == {
        "prospect": sum(1 for p in OURS.values() if p == "prospect")}
    assert set(_members(theirs_db, "p-us")) == {"customer", "open_opportunity"}
    with transaction(ours_db) as session:
        report = {r.partner: r for r in overlaps_report(session)}
    assert report["Them Inc"].counts_only == _counts_only_seen(ours_db, "p-them")
