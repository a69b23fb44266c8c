"""`ecosync partners add|list|import` through the real click group."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from partner_support import write_csv

from sync.cli import cli


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ecosync.toml"
    path.write_text(
        f'[warehouse]\nurl = "sqlite:///{tmp_path / "wh.db"}"\n\n'
        '[[partners]]\nid = "p-helios"\nname = "Helios Data"\nkind = "services"\n'
        'encoding = "cp1252"\n[partners.columns]\nname = "Company"\n'
        '[partners.share]\nprospect = "hidden"\n',
        encoding="utf-8",
    )
    assert _run(path, "db", "upgrade").exit_code == 0
    return path


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json", *args])


def test_add_then_list(config: Path) -> None:
    added = _run(config, "partners", "add", "p-kite", "--name", "Kite Channel", "--kind",
                 "channel", "--share", "prospect=hidden", "--share", "customer=counts")
    assert added.exit_code == 0, added.output
    assert "added partner p-kite" in added.output
    listed = _run(config, "partners", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert [p["id"] for p in data] == ["p-helios", "p-kite"]
    assert data[1]["share"] == {"customer": "counts", "open_opportunity": "full",
                                "prospect": "hidden"}
    table = _run(config, "partners", "list")
    assert "Kite Channel" in table.output
    assert "Helios Data" in table.output


def test_add_errors_are_one_line_without_traceback(config: Path) -> None:
    result = _run(config, "partners", "add", "p-helios", "--name", "Again")
    assert result.exit_code == 1
    assert "error: partner 'p-helios' already exists" in result.output
    assert "Traceback" not in result.output
    bad = _run(config, "partners", "add", "p-x", "--name", "X", "--share", "prospect")
    assert bad.exit_code == 1
    assert "POPULATION=LEVEL" in bad.output


def test_import_uses_the_partners_config_and_reports_the_diff(config: Path,
                                                             tmp_path: Path) -> None:
    path = write_csv(tmp_path / "helios.csv",
                     [["Café Lumière", "cafe-lumiere.fr", "Customer"],
                      ["Beta", "beta.io", "prospect"]],
                     header=["Company", "Website", "Status"], encoding="cp1252")
    result = _run(config, "partners", "import", "p-helios", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 2 rows" in result.stdout
    assert "2 added" in result.stdout
    again = _run(config, "partners", "import", "p-helios", str(path))
    assert "unchanged since the last import" in again.stdout
    forced = _run(config, "partners", "import", "p-helios", str(path), "--force")
    assert "2 unchanged" in forced.stdout
    # Helios hides its prospects: the list counts neither them nor their rows in the total.
    (helios,) = json.loads(_run(config, "partners", "list", "--format", "json").stdout)
    assert helios["by_population"] == {"customer": 1, "open_opportunity": 0, "prospect": None}
    assert helios["rows"] == 1
    table = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["--config", str(config), "partners", "list"]).output
    row = next(line for line in table.splitlines() if "p-helios" in line)
    assert re.search(r"│\s+1 │\s+1 │\s+0 │\s+hidden │", row), row


def test_a_bad_file_fails_with_every_line_and_skip_invalid_imports_the_rest(
    config: Path, tmp_path: Path
) -> None:
    _run(config, "partners", "add", "p-kite", "--name", "Kite")
    path = write_csv(tmp_path / "kite.csv",
                     [["A", "a.com", "customer"], ["", "", "customer"], ["C", "c.com", "vip"]],
                     header=["name", "domain", "population"])
    failed = _run(config, "partners", "import", "p-kite", str(path))
    assert failed.exit_code == 1
    assert "nothing was imported" in failed.output
    assert "line 3:" in failed.output
    assert "line 4, column 'population'" in failed.output
    assert "Traceback" not in failed.output
    listed = json.loads(_run(config, "partners", "list", "--format", "json").stdout)
    assert next(p for p in listed if p["id"] == "p-kite")["rows"] == 0
    skipped = _run(config, "partners", "import", "p-kite", str(path), "--skip-invalid")
    assert skipped.exit_code == 0, skipped.output
    assert "1 added" in skipped.stdout
    assert "2 invalid rows, skipped" in skipped.stderr


def test_import_with_an_explicit_encoding_and_an_unknown_partner(config: Path,
                                                                tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [["Müller", "mueller.de", "customer"]],
                     header=["name", "domain", "population"], encoding="latin-1")
    _run(config, "partners", "add", "p-m", "--name", "M")
    wrong = _run(config, "partners", "import", "p-m", str(path))
    assert wrong.exit_code == 1
    assert "line 2 is not valid utf-8" in wrong.output
    right = _run(config, "partners", "import", "p-m", str(path), "--encoding", "latin-1")
    assert right.exit_code == 0, right.output
    unknown = _run(config, "partners", "import", "p-nope", str(path))
    assert unknown.exit_code == 1
    assert "unknown partner 'p-nope'" in unknown.output
