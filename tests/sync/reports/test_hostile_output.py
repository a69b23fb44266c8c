"""Names that CRM users and partners control (issue 15.7-8): Rich markup, OSC 8 hyperlinks, CSI
and C1 sequences, bidirectional overrides and formulas, through every report table, CSV and
JSON, `attribution explain`, `partners list`, `history`, `deadletter list` and `match
explain`: rendered as plain text, no control character reaching the terminal raw."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from matching_world import World
from sqlalchemy.orm import Session

from schema.db import make_engine
from schema.models import ChangeLog, WritebackError
from sync import terminal
from sync.attribution.stamp import stamp_closed
from sync.cli import cli
from sync.config import AttributionConfig
from sync.reports.formats import Column, render

MARKUP = "[/bold]Acme"
LINK = "[link=http://evil.example]Globex[/link]"
OSC8 = "\x1b]8;;http://evil.example\x1b\\Click me\x1b]8;;\x1b\\"
CSI = "\x1b[2J\x1b[31mWiped\x07"
C1 = "\x9b31mC1 Corp\x85"
RTL = "Bidi \u202eroc.evil"
FORMULA = "=cmd|' /C calc'!A0"
HOSTILE = (MARKUP, LINK, OSC8, CSI, C1, RTL, FORMULA)
# Nothing of these may reach a terminal raw (ESC, BEL, C1 CSI/NEL, RTL override, NUL).
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]")

CONFIG = """
[warehouse]
url = "sqlite:///{db}"

[[partners]]
id = "p-evil"
name = "[bold]Evil\\u001b]8;;http://x.example\\u001b\\\\Partner"

[[partners]]
id = "p-counts"
name = "Counts Co"
share = {{ customer = "counts", open_opportunity = "counts", prospect = "counts" }}
"""


@pytest.fixture
def config(tmp_path: Path, migrated_sqlite: Callable[[Path], Path]) -> Path:
    db = migrated_sqlite(tmp_path / "wh.db")
    path = tmp_path / "ecosync.toml"
    path.write_text(CONFIG.format(db=db), encoding="utf-8")
    engine = make_engine(f"sqlite:///{db}")
    world = World(engine)
    world.partner("p-evil", "[bold]Evil\x1b]8;;http://x.example\x1b\\Partner")
    world.partner("p-counts", "Counts Co")
    for n, name in enumerate(HOSTILE):
        ext = f"001H{n}"
        world.account(ext, name, f"https://hostile{n}.example")
        world.partner_account("p-evil", name, f"hostile{n}.example", "customer",
                              owner_name=HOSTILE[-1 - n], owner_email=f"{CSI}@x.example")
        world.partner_account("p-counts", name, f"hostile{n}.example", "customer")
        world.opportunity(f"006H{n}", ext, amount="100")
    world.opportunity("006WON", "001H0", status="won", amount="250")
    world.match()
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        stamp_closed(s, AttributionConfig(), now=now)
        s.add(ChangeLog(source="salesforce", stream="accounts", external_id="001H0",
                        field="overlap_contacts", old_value=OSC8, new_value=CSI,
                        crm_value=LINK, manual_edit=True, written_at=now))
        s.add(WritebackError(source="salesforce", stream="accounts", external_id="001H1",
                             payload={}, error_code="BAD", message=f"{MARKUP} {C1}",
                             status="pending", first_failed_at=now, last_failed_at=now,
                             next_retry_at=now))
    engine.dispose()
    return path


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def _no_raw_controls(text: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in RAW.findall(text)})
    assert not found, f"control characters reached the output: {found}"


COMMANDS = [
    ("report", "overlaps"), ("report", "accounts"),
    ("report", "attribution", "--section", "partners"), ("report", "working-set"),
    ("partners", "list"), ("history", "001H0"), ("deadletter", "list"),
    ("attribution", "explain", "006WON"), ("match", "explain", "001H1"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_every_table_shows_hostile_values_as_plain_text(config: Path,
                                                        command: tuple[str, ...]) -> None:
    out = _run(config, *command)
    _no_raw_controls(out)
    # Escaped, visibly: nobody can forge or hide output, and the value is still readable.
    flat = re.sub(r"[│┃|\s]+", " ", out)
    if command[:2] in {("report", "accounts"), ("match", "explain")}:
        assert LINK in flat  # markup printed as text, never parsed
    if command[:2] == ("report", "accounts"):
        assert MARKUP in flat
    if command[:2] == ("report", "accounts"):
        assert "\\x1b[2J\\x1b[31mWiped\\x07" in out and "\\u202eroc.evil" in out


@pytest.mark.parametrize("command", [c for c in COMMANDS if c[0] == "report"],
                         ids=[" ".join(c[:2]) for c in COMMANDS if c[0] == "report"])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_json_carries_no_raw_control_and_csv_no_formula(config: Path,
                                                        command: tuple[str, ...],
                                                        fmt: str) -> None:
    out = _run(config, *command, "--format", fmt)
    if fmt == "json":
        _no_raw_controls(out.replace("\n", " "))  # (JSON escapes C0; C1 and bidi too)
    else:  # piped to a file: the data is kept, but no cell is a formula
        cells = [c for row in csv.reader(io.StringIO(out)) for c in row]
        assert not any(c.startswith(("=", "+", "@")) for c in cells)
        assert any(c.startswith("'=cmd") for c in cells) or command[1] != "accounts"


def test_csv_written_to_a_terminal_escapes_controls_and_a_file_keeps_the_data() -> None:
    rows = [{"name": v} for v in HOSTILE]
    on_tty = render(rows, [Column("name", "Name")], "csv", to_terminal=True)
    _no_raw_controls(on_tty)
    assert "'=cmd" in on_tty and "\\x1b]8;;http://evil.example" in on_tty
    to_file = render(rows, [Column("name", "Name")], "csv", to_terminal=False)
    assert OSC8 in to_file and "'=cmd" in to_file


def test_a_real_terminal_gets_only_rich_own_styles_never_a_value_hyperlink() -> None:
    buf = io.StringIO()
    table = terminal.table("value", title="hostile")
    for v in HOSTILE:
        terminal.add_row(table, [v])
    terminal.console(buf, width_=200, force_terminal=True).print(table)
    out = buf.getvalue()
    assert "\x1b]8" not in out  # no OSC 8 hyperlink, neither from markup nor raw
    escapes = re.findall(r"\x1b(.)", out)
    assert set(escapes) <= {"["}  # only CSI ...
    assert all(m.endswith("m") for m in re.findall(r"\x1b\[[0-9;]*[A-Za-z]", out))  # SGR
    assert "[/bold]Acme" in out and "[link=http://evil.example]" in out


def test_crm_text_strips_controls_and_formula_starts() -> None:
    assert terminal.crm_text("=HYPERLINK(\"x\")") == "HYPERLINK(\"x\")"
    assert terminal.crm_text("+-@ Jane\x1b[31m\u202e Roe\x00") == "Jane[31m Roe"
    assert terminal.crm_text("\x1b=") is None
    assert terminal.crm_text("Jane-Marie O'Neil") == "Jane-Marie O'Neil"
