"""Importing a partner CSV: all or nothing, --skip-invalid, snapshot diffs, fingerprints."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from partner_support import NOW, write_csv
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from schema.db import transaction
from schema.models import Account, Overlap, Partner, PartnerAccount
from sync import dirty
from sync.dirty import Kind, Queue
from sync.errors import UserError
from sync.partners import ImportResult, PartnerImportError, import_partner_csv

GOOD = [
    ["A-1", "Acme Inc", "acme.com", "customer", "Ann Lee", "ann@partner.io"],
    ["A-2", "Beta GmbH", "https://www.beta.de/about", "Open Opportunity", "", ""],
    ["A-3", "Gamma Ltd", "", "prospect", "", ""],
]


def _import(engine: Engine, path: Path, **kwargs: Any) -> ImportResult:
    kwargs.setdefault("now", NOW)
    with transaction(engine) as session:
        return import_partner_csv(session, "p-acme", path, **kwargs)


def _rows(engine: Engine) -> dict[str, PartnerAccount]:
    with transaction(engine) as session:
        rows = session.scalars(select(PartnerAccount).where(PartnerAccount.partner_id == "p-acme"))
        return {r.row_key: r for r in rows}


def _partner(engine: Engine) -> Partner:
    with transaction(engine) as session:
        partner = session.get(Partner, "p-acme")
        assert partner is not None
        return partner


def _queued(engine: Engine, kind: Kind, record_id: int) -> bool:
    with Session(engine) as session:
        return dirty.holds(session, Queue.MATCH, kind, record_id)


def test_a_good_file_becomes_the_snapshot(engine: Engine, tmp_path: Path) -> None:
    result = _import(engine, write_csv(tmp_path / "p.csv", GOOD))
    assert (result.added, result.changed, result.removed, result.unchanged) == (3, 0, 0, 0)
    rows = _rows(engine)
    assert set(rows) == {"x:A-1", "x:A-2", "x:A-3"}
    acme = rows["x:A-1"]
    assert (acme.domain_key, acme.name_key, acme.population) == ("acme.com", "acme", "customer")
    assert (acme.owner_name, acme.owner_email) == ("Ann Lee", "ann@partner.io")
    assert rows["x:A-2"].domain_key == "beta.de"
    assert rows["x:A-2"].population == "open_opportunity"
    assert rows["x:A-3"].domain_key is None
    assert all(_queued(engine, Kind.PARTNER_ACCOUNT, r.id) for r in rows.values())
    partner = _partner(engine)
    assert partner.snapshot_version == 1
    assert partner.last_import_at == NOW
    assert partner.source_fingerprint == result.fingerprint


def test_a_bad_row_imports_nothing_and_names_every_line(engine: Engine, tmp_path: Path) -> None:
    _import(engine, write_csv(tmp_path / "v1.csv", GOOD))
    bad = [*GOOD[:2], ["A-9", "", "", "customer", "", ""],
           ["A-10", "Delta", "delta.com", "gold", "", ""]]
    with pytest.raises(PartnerImportError) as caught:
        _import(engine, write_csv(tmp_path / "v2.csv", bad), now=NOW + timedelta(days=1))
    message = caught.value.message
    assert "v2.csv: 2 invalid rows; nothing was imported" in message
    assert "v2.csv: line 4: has neither a company name nor a usable domain" in message
    assert "line 5, column 'population': unknown population;" in message
    assert "gold" not in message and "Delta" not in message  # the line, never the cells
    assert "--skip-invalid" in message
    assert [p.line for p in caught.value.problems] == [4, 5]
    assert set(_rows(engine)) == {"x:A-1", "x:A-2", "x:A-3"}  # the old snapshot stands
    assert _partner(engine).snapshot_version == 1


def test_skip_invalid_imports_the_good_rows_and_reports_the_rest(engine: Engine,
                                                                  tmp_path: Path) -> None:
    bad = [*GOOD, ["A-9", "", "", "customer", "", ""], ["A-4", "Eps", "eps.io", "lead", "", ""]]
    result = _import(engine, write_csv(tmp_path / "p.csv", bad), skip_invalid=True)
    assert result.added == 4
    assert [p.line for p in result.skipped] == [5]
    assert set(_rows(engine)) == {"x:A-1", "x:A-2", "x:A-3", "x:A-4"}
    assert "1 invalid rows skipped" in result.summary()


def test_reimport_reports_added_changed_removed_unchanged(engine: Engine,
                                                         tmp_path: Path) -> None:
    _import(engine, write_csv(tmp_path / "v1.csv", GOOD))
    with transaction(engine) as session:  # the matcher has seen the first snapshot
        dirty.clear(session, Queue.MATCH, Kind.PARTNER_ACCOUNT,
                    dirty.queued(Queue.MATCH, Kind.PARTNER_ACCOUNT))
    v2 = [
        GOOD[0],  # unchanged
        ["A-2", "Beta GmbH", "beta.de", "customer", "", ""],  # changed population and domain
        ["A-4", "Delta", "delta.io", "prospect", "", ""],  # new
    ]  # A-3 removed
    result = _import(engine, write_csv(tmp_path / "v2.csv", v2), now=NOW + timedelta(days=1))
    assert (result.added, result.changed, result.removed, result.unchanged) == (1, 1, 1, 1)
    rows = _rows(engine)
    assert set(rows) == {"x:A-1", "x:A-2", "x:A-4"}
    assert not _queued(engine, Kind.PARTNER_ACCOUNT, rows["x:A-1"].id)
    assert rows["x:A-1"].updated_at == NOW
    assert _queued(engine, Kind.PARTNER_ACCOUNT, rows["x:A-2"].id)
    assert rows["x:A-2"].population == "customer"
    assert rows["x:A-2"].imported_at == NOW  # first seen, kept across changes
    assert rows["x:A-2"].updated_at == NOW + timedelta(days=1)
    assert _queued(engine, Kind.PARTNER_ACCOUNT, rows["x:A-4"].id)
    assert _partner(engine).snapshot_version == 2


def test_accounts_overlapping_changed_or_removed_rows_are_marked_for_rematch(
    engine: Engine, tmp_path: Path
) -> None:
    _import(engine, write_csv(tmp_path / "v1.csv", GOOD))
    rows = _rows(engine)
    with transaction(engine) as session:
        for n, row_key in enumerate(("x:A-1", "x:A-2", "x:A-3")):
            account = Account(source="salesforce", external_id=f"001{n}", name="x",
                              modified_at=NOW, ingested_at=NOW)
            session.add(account)
            session.flush()
            session.add(Overlap(account_id=account.id, partner_id="p-acme",
                                partner_account_id=rows[row_key].id, method="domain",
                                population=rows[row_key].population, first_seen_at=NOW,
                                last_seen_at=NOW))
    v2 = [GOOD[0], ["A-2", "Beta GmbH", "beta.de", "customer", "", ""]]  # A-3 removed
    _import(engine, write_csv(tmp_path / "v2.csv", v2), now=NOW + timedelta(days=1))
    with transaction(engine) as session:
        ids = dict(session.execute(select(Account.external_id, Account.id)).all())
        orphaned = session.scalars(select(Overlap).where(Overlap.partner_account_id.is_(None)))
        assert len(list(orphaned)) == 1  # the removed row's overlap awaits the matcher
    queued = {ext: _queued(engine, Kind.ACCOUNT, i) for ext, i in ids.items()}
    assert queued == {"0010": False, "0011": True, "0012": True}


def test_an_unchanged_file_is_skipped_unless_forced(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", GOOD)
    first = _import(engine, path)
    again = _import(engine, path, now=NOW + timedelta(hours=1))
    assert again.file_unchanged
    assert again.snapshot_version == first.snapshot_version == 1
    assert "unchanged since the last import" in again.summary()
    forced = _import(engine, path, force=True)
    assert not forced.file_unchanged
    assert (forced.unchanged, forced.snapshot_version) == (3, 2)
    # Another encoding or mapping of the same bytes is not "unchanged".
    assert not _import(engine, path, encoding="utf-8").file_unchanged


def test_row_keys_fall_back_to_domain_then_name_and_number_repeats(engine: Engine,
                                                                   tmp_path: Path) -> None:
    rows = [["Acme", "acme.com", "customer"], ["Acme EMEA", "https://eu.acme.com", "prospect"],
            ["Gamma Ltd", "", "prospect"], ["Gamma Ltd.", "gmail.com", "customer"]]
    _import(engine, write_csv(tmp_path / "p.csv", rows, header=["name", "domain", "population"]))
    assert set(_rows(engine)) == {"d:acme.com", "d:acme.com#2", "n:gamma", "n:gamma#2"}


def test_unknown_partner_is_a_user_error(engine: Engine, tmp_path: Path) -> None:
    with transaction(engine) as session, pytest.raises(UserError, match="unknown partner 'p-x'"):
        import_partner_csv(session, "p-x", write_csv(tmp_path / "p.csv", GOOD), now=NOW)


def test_formula_cells_are_stored_as_plain_text(engine: Engine, tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example","x")'
    _import(engine, write_csv(tmp_path / "p.csv", [["A-1", formula, "acme.com", "customer",
                                                     "+cmd|' /C calc'!A0", ""]]))
    row = _rows(engine)["x:A-1"]
    assert row.name == formula
    assert row.owner_name == "+cmd|' /C calc'!A0"


def test_the_shipped_example_imports_cleanly(engine: Engine) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "partners" / "acme-cloud.csv"
    result = _import(engine, example)
    assert result.skipped == []
    assert result.added == 10
    rows = _rows(engine)
    assert rows["x:AC-0002"].duns == "150483782"
    assert rows["x:AC-0004"].domain_key == "xn--caf-lumire-66ag.fr"
    assert rows["x:AC-0005"].domain_key == "cobaltwave.com.au"
    assert rows["x:AC-0007"].domain_key == "granitesforge.github.io"
    assert rows["x:AC-0010"].domain_key is None  # free mail: matched by name only


def test_values_at_the_column_limits_import_or_fail_cleanly(engine: Engine,
                                                            tmp_path: Path) -> None:
    long_id = "I" * 255
    rows = [[long_id, "N" * 255, "n.com", "customer", "O" * 255, ""],
            ["", "Long " * 40 + "Name", "", "prospect", "", ""]]
    result = _import(engine, write_csv(tmp_path / "ok.csv", rows))
    assert result.added == 2
    keys = set(_rows(engine))
    assert all(len(k) <= 255 for k in keys)
    assert any(k.startswith("x:sha256:") for k in keys)
    expanding = [["1", "&a" * 120, "", "customer", "", ""]]
    with pytest.raises(PartnerImportError, match="too long to compare"):
        _import(engine, write_csv(tmp_path / "bad.csv", expanding))
