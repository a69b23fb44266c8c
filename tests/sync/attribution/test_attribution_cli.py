"""`ecosync attribution restamp|explain` and `ecosync report attribution|working-set`."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from attribution_world import World
from click.testing import CliRunner, Result

from schema.db import make_engine
from sync.cli import cli

NOW = datetime(2026, 3, 31, 12, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Iterator[tuple[Path, World]]:
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    path = tmp_path / "ecosync.toml"
    path.write_text(f'[warehouse]\nurl = "{url}"\n', encoding="utf-8")
    assert _run(path, "db", "upgrade").exit_code == 0
    engine = make_engine(url)
    world = World(engine)
    world.partner("evil", "=HYPERLINK(\"x\")")  # a partner-supplied name that looks like a formula
    world.partner("quiet", "Quiet Co", share=dict.fromkeys(
        ("customer", "open_opportunity", "prospect"), "hidden"))
    acc = world.account("A1", account_type="SMB")
    world.overlap(acc, "evil", first=datetime(2025, 1, 1, tzinfo=UTC))
    world.overlap(acc, "quiet", first=datetime(2025, 1, 1, tzinfo=UTC))
    world.opportunity("006A", "A1", amount="1200.00", created=datetime(2026, 1, 2, tzinfo=UTC),
                      close=date(2026, 2, 1))
    world.opportunity("006B", "A1", status="open", created=datetime(2026, 1, 3, tzinfo=UTC))
    world.stamp(now=NOW)
    yield path, world
    engine.dispose()


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json", *args])


def test_report_attribution_csv_neutralises_formulas_and_hides_hidden(
    config: tuple[Path, World],
) -> None:
    path, _ = config
    result = _run(path, "report", "attribution", "--quarter", "2026Q1", "--format", "csv",
                  "--section", "partners")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["partner"] for r in rows} == {"'=HYPERLINK(\"x\")"}
    assert {r["attributed_revenue"] for r in rows} == {"600.00"}  # quiet's half is not shown
    assert "Quiet" not in result.stdout


def test_report_attribution_json_and_table(config: tuple[Path, World]) -> None:
    path, _ = config
    result = _run(path, "report", "attribution", "--quarter", "2026q1", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"revenue", "partners", "comparison", "cohorts", "impact", "health"}
    q1 = next(r for r in data["revenue"] if r["period"] == "2026Q1")
    assert q1["ecosystem_influenced_revenue"] == "1200.00"
    table = _run(path, "report", "attribution", "--quarter", "2026Q1")
    assert table.exit_code == 0 and "Ecosystem-influenced revenue" in table.output
    bad = _run(path, "report", "attribution", "--quarter", "Q3")
    assert bad.exit_code == 1 and "write it like 2026Q3" in bad.output


def test_report_working_set_json(config: tuple[Path, World]) -> None:
    path, _ = config
    result = _run(path, "report", "working-set", "--quarter", "2026Q1", "--format", "json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["joint_accounts"], row["classification"], row["passes"]) == (
        1, "rolodex", False)


def test_restamp_and_explain(config: tuple[Path, World]) -> None:
    path, world = config
    result = _run(path, "attribution", "restamp", "006A", "--reason", "overlap fixed")
    assert result.exit_code == 0, result.output
    assert "version 2" in result.output
    explained = _run(path, "attribution", "explain", "salesforce:006A")
    assert explained.exit_code == 0, explained.output
    assert "reason: overlap fixed" in explained.output and "Quiet" not in explained.output
    # Moments to the second in UTC, as every table shows them; lines fit 80 columns (but
    # for the names a CRM or a partner chose, which can be of any length).
    assert re.search(r"stamped \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", explained.output)
    assert "+00:00" not in explained.output
    assert [x for x in explained.output.splitlines()
            if len(x) > 80 and "HYPERLINK" not in x and not x.startswith("opportunity ")] == []
    as_json = json.loads(_run(path, "attribution", "explain", "006A", "--format",
                              "json").stdout)
    assert as_json["active"]["version"] == 2 and len(as_json["history"]) == 1
    missing = _run(path, "attribution", "restamp", "nope", "--reason", "x")
    assert missing.exit_code == 1 and "no opportunity 'nope'" in missing.output
    assert len(world.stamps("006A")) == 2


def test_report_attribution_says_where_the_closed_deals_are_instead_of_empty_tables(
    config: tuple[Path, World],
) -> None:
    path, _ = config
    empty_year = _run(path, "report", "attribution", "--quarter", "2027Q4")
    assert empty_year.exit_code == 0, empty_year.output
    assert empty_year.stdout == ("no closed deals in 2027Q1..2027Q4; the latest close is "
                                 "2026-02-01\n")
    empty_quarter = _run(path, "report", "attribution", "--quarter", "2026Q4")
    assert empty_quarter.stdout.startswith(
        "no closed deals in 2026Q4; the latest close is 2026-02-01; the trailing quarters:")
    assert "Ecosystem-influenced revenue" in empty_quarter.stdout
    full = _run(path, "report", "attribution", "--quarter", "2026Q1")
    assert "no closed deals" not in full.stdout


def test_report_attribution_csv_is_one_table(config: tuple[Path, World]) -> None:
    path, _ = config
    result = _run(path, "report", "attribution", "--quarter", "2026Q1", "--format", "csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "" not in lines  # no blank line between blocks: one CSV, one header
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["section"] for r in rows} == {"revenue", "partners", "comparison", "cohorts",
                                             "impact", "health"}
    assert all(set(r) == set(rows[0]) for r in rows)
    [figure] = [r for r in rows if r["section"] == "revenue" and r["period"] == "2026Q1"
                and r["metric"] == "ecosystem_influenced_revenue"]
    assert figure["value"] == "1200.00"
    partner = [r for r in rows if r["section"] == "partners" and r["period"] == "2026Q1"
               and r["metric"] == "attributed_revenue"]
    assert [(r["partner"], r["value"]) for r in partner] == [("'=HYPERLINK(\"x\")", "600.00")]
