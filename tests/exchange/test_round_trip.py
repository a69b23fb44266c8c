"""Round trip (issue 19 item 4): two warehouses, ours and the partner's, each exports for the
other under its own outbound policy and imports what it receives.

- Where both sides share a population by name (`names` or `full`), both compute the same
  overlap counts per population pair.
- Where one side shares a population at `counts`, the other sees the count and no member.
- No exported byte exceeds what the exporting side's policy allows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from exchange_world import (
    NOW,
    POPULATIONS,
    Company,
    build_side,
    company,
    match,
    overlap_matrix,
    side_config,
)
from sqlalchemy import Engine, func, select

from schema.db import transaction
from schema.models import PartnerAccount, PartnerPopulationCount
from sync.config import Config
from sync.exchange.export import ExportResult, export_for_partner
from sync.exchange.format import COLUMNS, FULL_ONLY
from sync.exchange.importer import import_partner_file
from sync.partners.registry import sync_partners_from_config
from sync.reports.overlaps import overlaps_report

# Our side: accounts 0-59; the partner's: 30-89. The 30 in common sit in different
# populations on each side, so every population pair gets members.
OURS = [company(i, POPULATIONS[i % 3]) for i in range(60)]
THEIRS = [company(i, POPULATIONS[(i // 3) % 3]) for i in range(30, 90)]
OUR_POLICY = {"customer": "full", "open_opportunity": "names", "prospect": "counts"}
THEIR_POLICY = {"customer": "names", "open_opportunity": "full", "prospect": "hidden"}


def _named(policy: Mapping[str, str]) -> set[str]:
    return {p for p, level in policy.items() if level in ("names", "full")}


def _side(engine: Engine, companies: Sequence[Company], *, organisation: str,
          partner_id: str, partner_name: str, outbound: Mapping[str, str]) -> Config:
    build_side(engine, companies)
    config = side_config(engine.url.render_as_string(hide_password=False),
                         organisation=organisation, partner_id=partner_id,
                         partner_name=partner_name, outbound=outbound)
    with transaction(engine) as session:
        sync_partners_from_config(session, config, now=NOW)
    return config


def _export(engine: Engine, config: Config, partner_id: str, out: Path) -> ExportResult:
    with transaction(engine) as session:
        return export_for_partner(session, config, partner_id, out, by="round-trip", now=NOW)


def _import(engine: Engine, partner_id: str, result: ExportResult) -> None:
    assert result.manifest_path is not None
    with transaction(engine) as session:
        import_partner_file(session, partner_id, result.manifest_path, now=NOW)


def _assert_within_policy(result: ExportResult, companies: Sequence[Company],
                          policy: Mapping[str, str]) -> None:
    """Every byte the exporting side wrote, against its own policy."""
    assert result.manifest_path is not None
    rows_bytes = result.rows_path.read_bytes()
    manifest_bytes = result.manifest_path.read_bytes()
    manifest = json.loads(manifest_bytes)
    assert set(manifest["counts"]) == {p for p, lvl in policy.items() if lvl != "hidden"}
    reader = csv.reader(io.StringIO(rows_bytes.decode("utf-8")))
    assert next(reader) == list(COLUMNS)
    named = _named(policy)
    for cells in reader:
        row = dict(zip(COLUMNS, cells, strict=True))
        assert row["population"] in named, row
        if policy[row["population"]] != "full":
            assert not any(row[c] for c in FULL_ONLY), row
    everything = rows_bytes + manifest_bytes
    for c in companies:
        if c.population in named:
            assert c.domain.encode() in rows_bytes  # shared by name: it is there
        else:  # counts or hidden: no trace of the account, by name, domain or DUNS
            assert c.name.encode() not in everything, c
            assert c.domain.encode() not in everything, c
            if c.duns:
                assert c.duns.encode() not in everything, c


ENGINE_PAIRS = [pytest.param(("default", "default"), id="same-engine"),
                pytest.param(("sqlite", "postgres"), id="sqlite-and-postgres")]


@pytest.mark.parametrize("kinds", ENGINE_PAIRS)
def test_two_warehouses_exchange_and_agree(databases: Any, tmp_path: Path,
                                           kinds: tuple[str, str]) -> None:
    ours_db, theirs_db = databases.new(kinds[0]), databases.new(kinds[1])
    ours = _side(ours_db, OURS, organisation="Example Corp", partner_id="p-them",
                 partner_name="Them Inc", outbound=OUR_POLICY)
    theirs = _side(theirs_db, THEIRS, organisation="Them Inc", partner_id="p-us",
                   partner_name="Example Corp", outbound=THEIR_POLICY)

    to_them = _export(ours_db, ours, "p-them", tmp_path / "to-them")
    to_us = _export(theirs_db, theirs, "p-us", tmp_path / "to-us")
    _assert_within_policy(to_them, OURS, OUR_POLICY)
    _assert_within_policy(to_us, THEIRS, THEIR_POLICY)

    _import(theirs_db, "p-us", to_them)
    _import(ours_db, "p-them", to_us)
    match(ours_db, ours)
    match(theirs_db, theirs)

    # Both sides name customers and open opportunities: the same overlap, seen from each.
    mine = overlap_matrix(ours_db, "p-them")
    their = overlap_matrix(theirs_db, "p-us")
    both = _named(OUR_POLICY) & _named(THEIR_POLICY)
    pairs = [(a, b) for a in both for b in both]
    assert {(a, b): mine.get((a, b), 0) for a, b in pairs} == \
        {(a, b): their.get((b, a), 0) for a, b in pairs}
    assert all(mine.get(pair, 0) > 0 for pair in pairs), mine  # every pair has members
    # Our prospects are counts only: the partner sees how many, and none of them.
    our_prospects = sum(1 for c in OURS if c.population == "prospect")
    with transaction(theirs_db) as session:
        counts = {(c.population, c.accounts) for c in
                  session.scalars(select(PartnerPopulationCount))}
        assert counts == {("prospect", our_prospects)}
        assert session.scalar(select(func.count()).select_from(PartnerAccount)
                              .where(PartnerAccount.population == "prospect")) == 0
        shown = {r.partner: r.counts_only for r in overlaps_report(session)}
    assert shown["Example Corp"] == {"prospect": our_prospects}
    assert all(b != "prospect" for _, b in their)  # no overlap with a member never sent
    # Their prospects are hidden: neither a count nor a row reached us.
    with transaction(ours_db) as session:
        assert session.scalar(select(func.count()).select_from(PartnerPopulationCount)) == 0
        assert session.scalar(select(func.count()).select_from(PartnerAccount)
                              .where(PartnerAccount.population == "prospect")) == 0
        assert all(not r.counts_only for r in overlaps_report(session))
