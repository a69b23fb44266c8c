"""`ecosync demo`, the README's first command, runs the whole loop with no configuration, and
honours every partner's sharing policy in everything it prints (issue 17.4)."""

from __future__ import annotations

import io
import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from sandbox.seed import generate
from sync import terminal
from sync.cli import cli
from sync.demo import DemoResult, run_demo
from sync.partners.csv_read import parse_population
from sync.sharing import NAMED, Level, share_level
from sync.stages.counts import TickCounts

SIZE = {"accounts": 160, "opportunities": 320, "partners": 4, "seed": 7}
TODAY = date.today()  # one day for the demo and the seed it is compared with


def _written(counts: TickCounts) -> int:
    return counts.totals().written


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, str]:
    out = io.StringIO()
    result = run_demo(tmp_path_factory.mktemp("demo"), **SIZE, today=TODAY,
                      console=terminal.console(out, width_=120))
    return result, out.getvalue()


def test_demo_matches_writes_reacts_to_changes_then_rests(
    demo: tuple[DemoResult, str],
) -> None:
    result, text = demo
    backfill, after_changes, quiet = result.reports
    assert all(r.status == "succeeded" for r in result.reports)
    assert _written(backfill.counts) > 0
    assert len(result.changes) == 2  # an opportunity closed, a website changed
    assert _written(after_changes.counts) > 0
    assert after_changes.counts.tick["stamped"] >= 1
    assert _written(quiet.counts) == 0
    # What it re-reads (the echo of the write-back, inside the lookback) is all unchanged,
    # and the summary says so.
    assert quiet.counts.totals().changed == 0
    assert re.search(r"tick 2 \(no changes\): pulled [\d,]+ \(none changed\), wrote 0 fields", text)
    assert "what matched" in text and "Ecosystem Partners" in text
    assert (result.directory / "ecosync.db").exists()


def _matched_row(text: str, partner: str) -> list[str]:
    line = next(x for x in text.splitlines() if re.match(rf"[│┃] {re.escape(partner)} +[│┃]", x))
    return [c.strip() for c in re.split("[│┃]", line)[1:-1]]


def test_demo_output_names_nothing_a_partner_does_not_share(
    demo: tuple[DemoResult, str],
) -> None:
    _, text = demo
    seed = generate(seed=SIZE["seed"], accounts=SIZE["accounts"],
                    opportunities=SIZE["opportunities"], partners=SIZE["partners"], today=TODAY)
    columns = {"customer": 2, "open_opportunity": 3, "prospect": 4}  # in "what matched"
    hidden_somewhere = 0
    # No line puts a partner's name beside a population it does not share by name (written
    # fields list `Partner (population)` items joined by "; ").
    leaks = [(p.name, pop, x) for p in seed.partners for pop in columns
             if share_level(p.share, pop) not in NAMED
             for line in text.splitlines() for x in line.split("; ")
             if p.name in x and pop in x]
    assert leaks == []
    for partner in seed.partners:
        row = _matched_row(text, partner.name)
        for population, column in columns.items():
            level = share_level(partner.share, population)
            if level not in NAMED:
                hidden_somewhere += 1
                assert row[column] == "0", (partner.name, population)
        for r in seed.partner_rows[partner.id]:
            population = parse_population(r["population"])
            assert population is not None
            if r["owner_email"] and share_level(partner.share, population.value) != Level.FULL:
                assert r["owner_email"] not in text, (partner.name, population)
    assert hidden_somewhere >= 4  # the seed's policies hide and pool several populations
    assert "Partners sharing counts only" in text


def test_demo_ends_with_commands_that_work_in_its_folder(
    demo: tuple[DemoResult, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, text = demo
    tail = text[text.index("try:"):]
    assert f"cd {result.directory}" in tail and "ecosync report accounts" in tail
    monkeypatch.chdir(result.directory)
    for command in re.findall(r"^  ecosync ((?:report|match|attribution|history|partners)"
                              r" [^#\n]*?)\s*$", tail, re.M):
        run = CliRunner().invoke(cli, command.split())
        assert run.exit_code == 0, (command, run.output)
        assert run.stdout.strip()
        if command == "report attribution":  # the default period (this quarter) has data
            assert "no closed deals" not in run.stdout and "Revenue by partner" in run.stdout
    assert Path("ecosync.toml").exists()
