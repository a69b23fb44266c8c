"""`ecosync match …` and `ecosync report …` end to end through the click root group."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from matching_world import World

from schema.db import make_engine
from sync.cli import cli

CONFIG = """
[warehouse]
url = "sqlite:///{db}"

[[partners]]
id = "p-full"
name = "Full Co"

[[partners]]
id = "p-counts"
name = "=Counts Co"
share = {{ customer = "counts", open_opportunity = "counts", prospect = "counts" }}

[[partners]]
id = "p-hidden"
name = "Hidden Co"
share = {{ customer = "hidden", open_opportunity = "hidden", prospect = "hidden" }}
"""


@pytest.fixture
def cli_world(tmp_path: Path, migrated_sqlite: Callable[[Path], Path]) -> tuple[World, Path]:
    db = migrated_sqlite(tmp_path / "wh.db")
    config = tmp_path / "ecosync.toml"
    config.write_text(CONFIG.format(db=db), encoding="utf-8")
    engine = make_engine(f"sqlite:///{db}")
    world = World(engine)
    for pid in ("p-full", "p-counts", "p-hidden"):
        world.partner(pid)
    world.account("001A", "Acme Inc", "https://www.acme.com")
    world.account("001B", "=Globex", "globex.com")
    world.opportunity("006A", "001A", amount="1200")
    for pid in ("p-full", "p-counts", "p-hidden"):
        world.partner_account(pid, "Acme", "acme.com", "customer", row_key="acme",
                              owner_name="Pat Lee", owner_email="pat@partner.example")
    world.partner_account("p-full", "Globex", "globex.com", "prospect", row_key="globex")
    return world, config


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_match_run_then_reports_honour_sharing(cli_world: tuple[World, Path]) -> None:
    world, config = cli_world
    out = _run(config, "match", "run")
    assert "2 new" not in out  # 4 overlaps: acme x3, globex x1
    assert world.overlaps()[("001A", "p-hidden")] == ("customer", "domain")

    report = json.loads(_run(config, "report", "accounts", "--format", "json"))
    assert [(r["external_id"], r["overlap_density"], r["partners"]) for r in report] == [
        ("001A", 2, "Full Co (customer)"), ("001B", 1, "Full Co (prospect)")]
    assert (report[0]["open_pipeline"], report[0]["original"]) == ("1200.00", "1200.00 USD")

    overlaps = list(csv.DictReader(io.StringIO(_run(config, "report", "overlaps",
                                                    "--format", "csv"))))
    assert [(r["partner"], r["total"]) for r in overlaps] == [
        ("Full Co", "2"), ("Partners sharing counts only", "1")]

    everything = "".join(
        _run(config, "report", kind, "--format", fmt)
        for kind in ("overlaps", "accounts") for fmt in ("table", "csv", "json"))
    everything += _run(config, "match", "run", "--full")
    assert "Hidden Co" not in everything
    assert "Counts Co" not in everything


def test_accounts_csv_neutralises_formulas(cli_world: tuple[World, Path]) -> None:
    _, config = cli_world
    _run(config, "match", "run")
    rows = list(csv.DictReader(io.StringIO(_run(config, "report", "accounts", "--format",
                                                "csv"))))
    assert {r["name"] for r in rows} == {"Acme Inc", "'=Globex"}


def test_pin_block_revoke_and_explain(cli_world: tuple[World, Path]) -> None:
    world, config = cli_world
    _run(config, "match", "run")
    out = _run(config, "match", "block", "001A", "p-full", "--reason", "wrong Acme",
               "--by", "ana")
    assert "blocked salesforce/001A" in out
    assert "no overlap" in out
    assert ("001A", "p-full") not in world.overlaps()

    explained = json.loads(_run(config, "match", "explain", "acme.com", "--format", "json"))
    # Counts-only and hidden partners are named by no output (issue 15.5).
    assert [e["partner_id"] for e in explained] == ["p-full"]
    full = next(e for e in explained if e["partner_id"] == "p-full")
    assert full["matched"] is False
    assert "by ana" in full["override"]

    override_id = full["override"].rsplit("#", 1)[1].rstrip(")")
    _run(config, "match", "revoke", override_id, "--by", "bob")
    assert world.overlaps()[("001A", "p-full")] == ("customer", "domain")

    out = _run(config, "match", "pin", "001B", "p-counts", "--population", "prospect",
               "--reason", "partner confirmed by e-mail", "--by", "ana")
    assert "pinned salesforce/001B" in out
    # The pin holds, but a counts-only partner's overlap is shown nowhere, here neither.
    assert world.overlaps()[("001B", "p-counts")][0] == "prospect"
    assert "now: not shown (p-counts shares no population by name)" in out
    for fmt in ("table", "csv", "json"):
        shown = _run(config, "match", "explain", "001B", "--format", fmt)
        assert "p-counts" not in shown and "Counts Co" not in shown
        assert "p-hidden" not in shown and "Hidden Co" not in shown
    out = _run(config, "match", "pin", "001B", "p-full", "--reason", "confirmed", "--by", "ana")
    assert "now: overlap, prospect" in out
    table = _run(config, "match", "explain", "001B")
    assert "pin" in table


def test_user_errors_are_one_line(cli_world: tuple[World, Path]) -> None:
    _, config = cli_world
    result = CliRunner().invoke(cli, ["--config", str(config), "match", "pin", "nope",
                                      "p-full", "--reason", "x"])
    assert result.exit_code == 1
    assert "no account 'nope'" in result.output
    assert "Traceback" not in result.output
