"""Streamed imports (issue 15.9): the rules that need the whole file hold across staging
chunks, a file that changes while read imports nothing, and no stage outlives an import."""

from __future__ import annotations

from pathlib import Path

import pytest
from partner_support import NOW, write_csv
from sqlalchemy import Engine, select, text

from schema.db import transaction
from schema.models import PartnerAccount
from schema.records import Population
from sync.errors import UserError
from sync.partners import (
    ParsedRow,
    PartnerImportError,
    csv_import,
    import_partner_csv,
    replace_snapshot,
)
from sync.partners.staging import CHUNK, check_partner_file


def _keys(engine: Engine) -> dict[str, str | None]:
    with transaction(engine) as session:
        return {key: name for key, name in session.execute(
            select(PartnerAccount.row_key, PartnerAccount.name)
            .where(PartnerAccount.partner_id == "p-acme"))}


def test_repeated_ids_and_keys_are_found_across_chunks(engine: Engine, tmp_path: Path) -> None:
    n = 2 * CHUNK + 10
    rows = [[f"A-{i}", f"Company {i}", f"c{i}.com", "customer", "", ""] for i in range(n)]
    rows[CHUNK + 3][0] = "A-1"  # repeats line 3, a chunk later
    no_id = [["", "Twin", "twin.com", "prospect", "", ""] for _ in range(3)]
    rows = [*rows[:10], no_id[0], *rows[10:CHUNK * 2], no_id[1], *rows[CHUNK * 2:], no_id[2]]
    path = write_csv(tmp_path / "big.csv", rows)
    with pytest.raises(PartnerImportError) as caught, transaction(engine) as session:
        import_partner_csv(session, "p-acme", path, now=NOW)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (CHUNK + 6, "external_id")
    assert "repeats line 3" in problem.message
    assert _keys(engine) == {}
    with transaction(engine) as session:
        result = import_partner_csv(session, "p-acme", path, now=NOW, skip_invalid=True)
    assert (result.rows, result.skipped_rows) == (n + 2, 1)
    keys = _keys(engine)
    assert keys["x:A-1"] == "Company 1"  # the first line of a repeated id wins
    assert {k for k in keys if k.startswith("d:twin.com")} == {
        "d:twin.com", "d:twin.com#2", "d:twin.com#3"}


def test_a_file_replaced_while_it_is_read_imports_nothing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "p.csv", [["A-1", "Acme", "acme.com", "customer", "", ""]])
    real_hash = csv_import.file_sha256

    def hash_then_replace(target: Path) -> str:
        digest = real_hash(target)  # a writer replaces the file right after the first look
        write_csv(target, [["B-1", "Beta", "beta.com", "customer", "", ""]])
        return digest

    monkeypatch.setattr(csv_import, "file_sha256", hash_then_replace)
    with (pytest.raises(UserError, match="changed while it was being read; nothing"),
          transaction(engine) as session):
        import_partner_csv(session, "p-acme", path, now=NOW)
    assert _keys(engine) == {}


def test_an_unchanged_file_is_recognised_without_parsing(engine: Engine, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    path = write_csv(tmp_path / "p.csv", [["A-1", "Acme", "acme.com", "customer", "", ""]])
    with transaction(engine) as session:
        import_partner_csv(session, "p-acme", path, now=NOW)

    def no_parse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an unchanged file must not be parsed again")

    monkeypatch.setattr(csv_import, "stage_file", no_parse)
    with transaction(engine) as session:
        assert import_partner_csv(session, "p-acme", path, now=NOW).file_unchanged


def test_replace_snapshot_takes_any_stream_of_rows(engine: Engine) -> None:
    def rows(n: int) -> object:
        for i in range(n):
            yield ParsedRow(i + 2, None, f"Co {i}", f"co{i}.com", None, Population.PROSPECT,
                            None, None, None, f"co{i}.com", f"co {i}")

    with transaction(engine) as session:
        assert replace_snapshot(session, "p-acme", rows(3), now=NOW) == (3, 0, 0, 0)  # type: ignore[arg-type]
    with transaction(engine) as session:
        assert replace_snapshot(session, "p-acme", rows(2), now=NOW) == (0, 0, 1, 2)  # type: ignore[arg-type]
    assert set(_keys(engine)) == {"d:co0.com", "d:co1.com"}


def test_the_stage_is_gone_after_an_import_good_or_bad(engine: Engine, tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", [["A-1", "Acme", "acme.com", "customer", "", ""]])
    bad = write_csv(tmp_path / "bad.csv", [["A-1", "Acme", "acme.com", "gold", "", ""]])
    with transaction(engine) as session:
        import_partner_csv(session, "p-acme", good, now=NOW)
        with pytest.raises(PartnerImportError):
            import_partner_csv(session, "p-acme", bad, now=NOW)
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            left = conn.exec_driver_sql(
                "SELECT name FROM sqlite_temp_master WHERE type = 'table'").all()
        else:
            left = conn.execute(text(
                "SELECT relname FROM pg_class WHERE relpersistence = 't' "
                "AND relkind = 'r' AND relname LIKE 'ecosync_stage%'")).all()
        assert left == []


def test_checking_a_file_applies_every_import_rule(tmp_path: Path) -> None:
    rows = [["A-1", "Acme", "acme.com", "customer", "", ""],
            ["A-1", "Acme again", "acme2.com", "customer", "", ""],
            ["A-3", "Gamma", "gamma.com", "friends", "", "secret@partner.io"]]
    check = check_partner_file(write_csv(tmp_path / "p.csv", rows), keep=5)
    assert (check.rows, check.invalid_rows) == (1, 2)
    assert [(p.line, p.column) for p in check.problems] == [(3, "external_id"),
                                                           (4, "population")]
    assert all("friends" not in p.describe() for p in check.problems)
