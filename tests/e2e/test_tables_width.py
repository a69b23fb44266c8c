"""Tables at 80 and 200 columns (issue 17.8): every report, `partners list`, `history` and
`fields ensure` fit the width, never cut an id, an API name or a timestamp (shown to the
second), and wrap rather than truncate (no ellipsis)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.cells import cell_len

from sandbox.world import running_world
from schema.owned_fields import OWNED_FIELDS
from sync import terminal
from sync.cli import cli
from sync.demo import DemoResult, run_demo

WIDTHS = (80, 200)
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?![.\d])")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    import io

    return run_demo(tmp_path_factory.mktemp("demo"), accounts=120, opportunities=240,
                    partners=3, console=terminal.console(io.StringIO(), width_=200))


def _run(directory: Path, width: int, *args: str) -> str:
    result = CliRunner(env={"COLUMNS": str(width)}).invoke(
        cli, ["--config", str(directory / "ecosync.toml"), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


# A table row's left border and the right border it must end with: a terminal cuts a row
# drawn wider than itself, so a cut row is one that lost its right edge.
BORDERS = {"┏": "┓", "┃": "┃", "┡": "┩", "│": "│", "└": "┘", "┌": "┐", "├": "┤"}


def _fits(text: str, width: int) -> None:
    too_wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert too_wide == [], f"{len(too_wide)} lines wider than {width}"
    assert "…" not in text  # wrapped, never truncated
    cut = [line for line in text.splitlines()
           if line[:1] in BORDERS and not line.rstrip().endswith(BORDERS[line[0]])]
    assert cut == [], f"rows cut at the right edge: {cut[:3]}"


def _whole(text: str, values: list[str]) -> None:
    missing = [v for v in values if v and v not in text]
    assert missing == [], f"cut or missing: {missing[:5]}"


REPORTS = [("report", "overlaps"), ("report", "accounts"), ("report", "attribution"),
           ("report", "working-set"), ("partners", "list"), ("status",)]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", REPORTS, ids=[" ".join(c) for c in REPORTS])
def test_reports_fit_and_keep_ids_whole(demo: DemoResult, command: tuple[str, ...],
                                        width: int) -> None:
    text = _run(demo.directory, width, *command)
    _fits(text, width)
    if command == ("report", "accounts"):
        rows = json.loads(_run(demo.directory, width, *command, "--format", "json"))
        assert rows
        _whole(text, [r["external_id"] for r in rows] + [r["open_pipeline"] for r in rows]
               + [r["domain"] for r in rows if r["domain"]])
    if command == ("status",):
        assert STAMP.search(text) and "+00:00" not in text  # runs and watermarks to the second
    if command == ("partners", "list"):
        _whole(text, ["p-acme-cloud", "p-northbeam-consulting", "p-vantage-resellers"])
        assert STAMP.search(text)


@pytest.mark.parametrize("width", WIDTHS)
def test_history_fits_with_ids_field_names_and_timestamps_to_the_second(
    demo: DemoResult, width: int,
) -> None:
    account = demo.changes and re.search(r"account (\w+) website", demo.changes[1])
    assert account
    text = _run(demo.directory, width, "history", account.group(1))
    _fits(text, width)
    _whole(text, [account.group(1), "Ecosystem_Partners__c"])
    assert STAMP.search(text) and "+00:00" not in text


@pytest.fixture
def fields_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with running_world(tmp_path / "world", seed=2, accounts=20, opportunities=20,
                       partners=1) as world:
        for name, value in world.env().items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "ecosync.toml"
        path.write_text(world.config_toml(f"sqlite:///{tmp_path / 'wh.db'}"), encoding="utf-8")
        yield path


def test_fields_ensure_fits_with_api_names_whole(fields_config: Path) -> None:
    for width in WIDTHS:
        result = CliRunner(env={"COLUMNS": str(width)}).invoke(
            cli, ["--config", str(fields_config), "fields", "ensure"])
        assert result.exit_code == 0, result.output
        _fits(result.stdout, width)
        _whole(result.stdout, [f.salesforce for f in OWNED_FIELDS]
               + [f.hubspot for f in OWNED_FIELDS])
