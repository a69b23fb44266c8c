"""Progress as shown: rich bars on a terminal (counts against totals, rate, time left; log
lines above them), one plain line per stage otherwise (issue 17.7). Clocks are injected."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from rich.cells import cell_len
from rich.console import Console
from sqlalchemy import Engine

from sync.cli import cli
from sync.logs import MASKER, MaskingStream, configure_logging
from sync.progress import Lines
from sync.progress_bars import Bars


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _terminal(width: int) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=width, color_system=None)


def _frame(bars: Bars, width: int) -> list[str]:
    """The live display's current frame, as a terminal of `width` cells shows it."""
    screen = _terminal(width)
    screen.print(bars)
    out = screen.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in out.splitlines()]


def test_plain_lines_say_what_how_many_and_how_long_one_per_stage() -> None:
    clock, lines = Clock(), []
    progress = Lines(lines.append, clock)
    progress.start("pull")
    progress.start("pull", "salesforce/accounts", total=1000)
    progress.advance("pull", "salesforce/accounts", 600)
    progress.advance("pull", "salesforce/accounts", 400)
    clock.now += 2.0
    progress.done("pull", "salesforce/accounts")
    progress.start("pull", "hubspot/accounts")
    progress.done("pull", "hubspot/accounts")
    progress.done("pull")  # told item by item: no line of its own
    progress.start("match")
    clock.now += 0.5
    progress.done("match")
    assert lines == ["pull salesforce/accounts: 1,000 records in 2.0 s, 500/s",
                     "pull hubspot/accounts: done in 0.0 s",
                     "match: done in 0.5 s"]


@pytest.mark.parametrize("width", [80, 200])
def test_bars_show_count_of_total_rate_and_time_left_then_the_elapsed_time(width: int) -> None:
    clock = Clock()
    bars = Bars(_terminal(width), clock)
    bars.start("pull")
    bars.start("pull", "salesforce/opportunities", total=1000)
    bars.start("match")  # not started yet in a real tick; here: a row with nothing counted
    clock.now += 2.0
    bars.advance("pull", "salesforce/opportunities", 500)
    frame = _frame(bars, width)
    row = next(line for line in frame if "pull salesforce/opportunities" in line)
    assert row.split()[-4:] == ["500/1,000", "250/s", "eta", "0:00:02"], row
    assert not any(line.startswith("pull ") and "pull salesforce" not in line
                   for line in frame)  # the stage's own row gives way to its items
    clock.now += 2.0
    bars.advance("pull", "salesforce/opportunities", 500)
    bars.done("pull", "salesforce/opportunities")
    clock.now += 1.0
    bars.done("match")
    frame = _frame(bars, width)
    row = next(line for line in frame if "pull salesforce/opportunities" in line)
    assert row.split()[-3:] == ["1,000", "250/s", "0:00:04"]
    assert next(line for line in frame if line.startswith("match")).split()[-2:] == [
        "done", "0:00:05"]
    assert all(cell_len(line) <= width for line in frame), frame
    bar = row.split()[2]
    assert set(bar) <= set("━╸╺") and len(bar) <= 40  # full, and no wider than 40 cells


def test_log_lines_print_above_the_bars_and_stay_masked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.StringIO()  # stderr as the CLI leaves it: a masking stream over the real one
    monkeypatch.setattr(sys, "stderr", MaskingStream(raw))  # type: ignore[arg-type]
    configure_logging("console", "info")
    try:
        _logs_above_bars(raw)
    finally:
        monkeypatch.undo()
        configure_logging("console", "warning")


def _logs_above_bars(raw: io.StringIO) -> None:
    MASKER.add(["s3cr3t-token-for-the-bars"])
    log = structlog.get_logger("ecosync.test")
    console = _terminal(80)
    with Bars(console) as bars:
        bars.start("pull", "salesforce/accounts", total=10)
        log.warning("partner file rejected", detail="token s3cr3t-token-for-the-bars")
        print("a stray print", file=sys.stderr)
        bars.advance("pull", "salesforce/accounts", 10)
        bars.done("pull", "salesforce/accounts")
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    # Printed through the bars' console (above the live display), not under it.
    assert "partner file rejected" in shown and "a stray print" in shown
    assert "partner file rejected" not in raw.getvalue()
    assert "s3cr3t-token-for-the-bars" not in shown
    assert "token ***" in shown
    # Once the bars are gone, logs go where they went before.
    log.warning("after the bars")
    assert "after the bars" in raw.getvalue()
    assert "after the bars" not in console.file.getvalue()  # type: ignore[attr-defined]


def test_a_partner_import_in_a_pipe_prints_a_line_per_stage(warehouse: Engine,
                                                            tmp_path: Path) -> None:
    url = warehouse.url.render_as_string(hide_password=False)
    config = tmp_path / "ecosync.toml"
    config.write_text(f'[warehouse]\nurl = "{url}"\n[[partners]]\nid = "p-kite"\n'
                      f'name = "Kite"\n', encoding="utf-8")
    rows = tmp_path / "kite.csv"
    rows.write_text("Company Name,Website,Status\n" + "".join(
        f"Company {i},company{i}.example.com,customer\n" for i in range(2500)),
        encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json",
                                      "partners", "import", "p-kite", str(rows)])
    assert result.exit_code == 0, result.output
    plain = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert re.fullmatch(r"read kite\.csv: 2,500 records in [\d.]+ s(, [\d,]+/s)?", plain[0])
    assert re.fullmatch(r"merge: done in [\d.]+ s", plain[1]) and len(plain) == 2, plain
    quiet = CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json",
                                     "partners", "import", "p-kite", str(rows), "--force",
                                     "--no-progress"])
    assert [line for line in quiet.stderr.splitlines() if not line.startswith("{")] == []
