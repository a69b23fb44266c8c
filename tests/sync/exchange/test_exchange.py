"""`share export`, `share log` and `partners import` of exchange files (issue 19 items 2, 3):
what leaves follows our outbound policy, a partner's file is read natively, and a bad or
future file is refused whole."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from exchange_world import NOW, build_side, company, side_config
from sqlalchemy import Engine, func, select

from schema.db import transaction
from schema.models import PartnerAccount, PartnerPopulationCount, ShareExport
from sync.cli import cli
from sync.config import Config
from sync.errors import UserError
from sync.exchange.export import ExportFormat, ExportResult, export_for_partner
from sync.exchange.format import COLUMNS, SCHEMA_VERSION, ExchangeFileError
from sync.exchange.importer import import_partner_file
from sync.partners.registry import sync_partners_from_config
from sync.reports.overlaps import overlaps_report

POLICY = {"customer": "full", "open_opportunity": "names", "prospect": "counts"}
COMPANIES = [company(i, ("customer", "open_opportunity", "prospect")[i % 3]) for i in range(30)]


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def ours(warehouse: Engine) -> Engine:
    build_side(warehouse, COMPANIES)
    return warehouse


def _config(engine: Engine, **kw: Any) -> Config:
    kw.setdefault("outbound", POLICY)
    return side_config(_url(engine), organisation="Example Corp", partner_id="p-them",
                       partner_name="Them Inc", **kw)


def _export(engine: Engine, config: Config, out: Path,
            fmt: ExportFormat = ExportFormat.ECOSYNC) -> ExportResult:
    with transaction(engine) as session:
        return export_for_partner(session, config, "p-them", out, fmt=fmt, by="ops@example",
                                  now=NOW)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_an_export_carries_what_the_outbound_policy_allows(ours: Engine, tmp_path: Path) -> None:
    result = _export(ours, _config(ours), tmp_path / "out")
    assert result.manifest_path is not None
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert manifest["format"] == "ecosync-exchange"
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["organisation"] == "Example Corp"
    assert manifest["generated_at"] == "2026-03-01T12:00:00Z"
    assert manifest["policy"] == POLICY
    assert manifest["counts"] == {"customer": 10, "open_opportunity": 10, "prospect": 10}
    assert manifest["rows"]["count"] == 20 and manifest["rows"]["file"] == result.rows_path.name
    rows = _rows(result.rows_path)
    assert list(rows[0]) == list(COLUMNS)
    assert {r["population"] for r in rows} == {"customer", "open_opportunity"}
    full = [r for r in rows if r["population"] == "customer"]
    names = [r for r in rows if r["population"] == "open_opportunity"]
    assert all(r["stage"] == "Closed Won" and r["last_activity_date"] for r in full)
    assert all(not (r["stage"] or r["last_activity_date"] or r["owner_name"]
                    or r["owner_email"]) for r in names)
    assert rows[0]["domain"] == "company000.com" and rows[0]["duns"] == "100000000"
    # Prospects are shared as a count: none of them is anywhere in what we wrote.
    written = result.rows_path.read_bytes() + result.manifest_path.read_bytes()
    for c in COMPANIES:
        if c.population == "prospect":
            assert c.name.encode() not in written and c.domain.encode() not in written
    with transaction(ours) as session:
        (logged,) = session.scalars(select(ShareExport)).all()
        assert (logged.partner_id, logged.format, logged.rows) == ("p-them", "ecosync", 20)
        assert logged.exported_by == "ops@example" and logged.policy == POLICY
        assert logged.checksum == manifest["rows"]["sha256"] == result.checksum


def test_hidden_populations_have_neither_rows_nor_counts(ours: Engine, tmp_path: Path) -> None:
    config = _config(ours, outbound={"customer": "names"})
    result = _export(ours, config, tmp_path)
    assert result.manifest_path is not None
    manifest = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    assert manifest["policy"] == {"customer": "names", "open_opportunity": "hidden",
                                  "prospect": "hidden"}
    assert manifest["counts"] == {"customer": 10}
    assert {r["population"] for r in _rows(result.rows_path)} == {"customer"}


def test_an_export_without_a_policy_says_how_to_set_one(ours: Engine, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    with pytest.raises(UserError, match=r"no outbound policy.*outbound = \{ customer = "
                                        r"\"names\".*\[\[partners\]\] id = \"p-them\""):
        _export(ours, _config(ours, outbound={}), tmp_path)
    with pytest.raises(UserError, match="'p-nobody' is not in the config"), \
            transaction(ours) as session:
        export_for_partner(session, _config(ours), "p-nobody", tmp_path, by="x", now=NOW)
    config = side_config(_url(ours), organisation="", partner_id="p-them",
                         partner_name="Them Inc", outbound=POLICY)
    with pytest.raises(UserError, match=r"\[exchange\] organisation is not set"):
        _export(ours, config, tmp_path)
    assert not tmp_path.exists()  # nothing written


def test_the_plain_format_is_company_name_and_website(ours: Engine, tmp_path: Path) -> None:
    result = _export(ours, _config(ours), tmp_path, ExportFormat.PLAIN)
    assert result.manifest_path is None
    lines = result.rows_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Company Name,Website"
    assert lines[1] == "Company 000 Holdings,company000.com"
    assert len(lines) == 21  # customers and open opportunities; prospects are counts only
    with transaction(ours) as session:
        assert session.scalar(select(ShareExport.format)) == "plain"


def _partner_side(databases: Any, share: dict[str, str] | None = None) -> tuple[Engine, Config]:
    engine: Engine = databases.new()
    config = side_config(_url(engine), organisation="Them Inc", partner_id="p-us",
                         partner_name="Example Corp", outbound={"customer": "names"},
                         share=share)
    return engine, config


def test_partners_import_reads_an_exchange_file_with_no_mapping(
    ours: Engine, databases: Any, tmp_path: Path
) -> None:
    result = _export(ours, _config(ours), tmp_path)
    theirs, _ = _partner_side(databases)
    toml = tmp_path / "theirs.toml"
    toml.write_text(f'[warehouse]\nurl = "{_url(theirs)}"\n[[partners]]\nid = "p-us"\n'
                    f'name = "Example Corp"\n', encoding="utf-8")
    for given in (result.manifest_path, result.rows_path):
        run = CliRunner().invoke(cli, ["--config", str(toml), "partners", "import", "p-us",
                                       str(given), "--force"])
        assert run.exit_code == 0, run.output
        assert "exchange file from Example Corp (version 1" in run.output
        assert "counts only: prospect 10" in run.output
        assert "Check the partner" not in run.output  # from Example Corp, into it
    with transaction(theirs) as session:
        pops = dict(session.execute(select(PartnerAccount.population, func.count())
                                    .where(PartnerAccount.partner_id == "p-us")
                                    .group_by(PartnerAccount.population)).all())
        assert pops == {"customer": 10, "open_opportunity": 10}
        (count,) = session.scalars(select(PartnerPopulationCount)).all()
        assert (count.population, count.accounts, count.as_of) == ("prospect", 10, NOW)
        report = {r.partner: r for r in overlaps_report(session)}
    assert report["Example Corp"].counts_only == {"prospect": 10}
    # As the user reads it: the size in the words of the other columns, not a raw code;
    # in JSON, population to size.
    base = ["--config", str(toml), "report", "overlaps"]
    table = CliRunner().invoke(cli, [*base, "--format", "csv"])
    assert table.exit_code == 0, table.output
    (row,) = [r for r in csv.DictReader(table.output.splitlines())
              if r["partner"] == "Example Corp"]
    assert row["counts_only"] == "prospects 10"
    as_json = CliRunner().invoke(cli, [*base, "--format", "json"])
    (entry,) = [e for e in json.loads(as_json.output) if e["partner"] == "Example Corp"]
    assert entry["counts_only"] == {"prospect": 10}


def test_a_file_from_another_sender_says_to_check_the_partner(
    ours: Engine, databases: Any, tmp_path: Path
) -> None:
    result = _export(ours, _config(ours), tmp_path)
    theirs, _ = _partner_side(databases)
    toml = tmp_path / "theirs.toml"
    toml.write_text(f'[warehouse]\nurl = "{_url(theirs)}"\n[[partners]]\nid = "p-other"\n'
                    f'name = "Other Partner"\n', encoding="utf-8")
    run = CliRunner().invoke(cli, ["--config", str(toml), "partners", "import", "p-other",
                                   str(result.manifest_path)])
    assert run.exit_code == 0, run.output
    assert ("Check the partner: this file comes from 'Example Corp', and p-other is "
            "'Other Partner'; if it is another partner's file, import p-other's own file "
            "again") in run.output


@pytest.mark.parametrize(("share", "expected"), [
    ({"prospect": "counts"}, ("Partners sharing counts only", None)),
    ({"prospect": "hidden"}, None),
])
def test_counts_only_populations_follow_our_share_policy(
    ours: Engine, databases: Any, tmp_path: Path, share: dict[str, str],
    expected: tuple[str, None] | None,
) -> None:
    result = _export(ours, _config(ours), tmp_path)
    theirs, config = _partner_side(databases, share)
    assert result.manifest_path is not None
    with transaction(theirs) as session:
        sync_partners_from_config(session, config, now=NOW)
        import_partner_file(session, "p-us", result.manifest_path, now=NOW)
    with transaction(theirs) as session:
        shown = [(r.partner, r.partner_id) for r in overlaps_report(session) if r.counts_only]
    assert shown == ([expected] if expected else [])


def _tamper(result: ExportResult, **changes: Any) -> None:
    assert result.manifest_path is not None
    data = json.loads(result.manifest_path.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        target = data
        *path, last = dotted.split("__")
        for key in path:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    result.manifest_path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(("changes", "message"), [
    ({"schema_version": 2}, r"field 'schema_version' is 2, newer than this ecosync reads "
                            r"\(version 1\)"),
    ({"format": "other"}, r"field 'format' must be \"ecosync-exchange\""),
    ({"generated_at": "yesterday"}, r"field 'generated_at' must be an ISO 8601 time"),
    ({"policy__prospect": "secret"}, r"field 'policy.prospect' must be one of"),
    ({"counts__customer": KeyError}, r"field 'counts.customer' is missing"),
    ({"counts__customer": 9}, r"field 'rows.count' is 20, but counts"),
    ({"rows__sha256": "0" * 64}, r"sha256 is not the manifest's field 'rows.sha256'"),
    ({"rows__file": "../x.csv"}, r"field 'rows.file' must be the name of a .csv file"),
    ({"organisation": KeyError}, r"field 'organisation' must be the sender's name"),
])
def test_a_bad_or_future_manifest_is_refused_whole(
    ours: Engine, databases: Any, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    result = _export(ours, _config(ours), tmp_path)
    _tamper(result, **changes)
    theirs, config = _partner_side(databases)
    assert result.manifest_path is not None
    with transaction(theirs) as session:
        sync_partners_from_config(session, config, now=NOW)
    with pytest.raises(UserError, match=message), transaction(theirs) as session:
        import_partner_file(session, "p-us", result.manifest_path, now=NOW)
    with transaction(theirs) as session:
        assert session.scalar(select(func.count()).select_from(PartnerAccount)) == 0
        assert session.scalar(select(func.count()).select_from(PartnerPopulationCount)) == 0


def test_a_cut_short_manifest_is_refused_in_words(
    ours: Engine, databases: Any, tmp_path: Path
) -> None:
    result = _export(ours, _config(ours), tmp_path)
    assert result.manifest_path is not None
    result.manifest_path.write_bytes(result.manifest_path.read_bytes()[:40])
    theirs, config = _partner_side(databases)
    with transaction(theirs) as session:
        sync_partners_from_config(session, config, now=NOW)
    with pytest.raises(UserError) as refused, transaction(theirs) as session:
        import_partner_file(session, "p-us", result.manifest_path, now=NOW)
    text = str(refused.value)
    assert f"{result.manifest_path}: the manifest is not valid JSON (" in text
    assert "nothing was imported" in text and "(file)" not in text


def _rewrite_rows(result: ExportResult, edit: Any) -> None:
    """Edit the rows and re-seal the manifest, as a sender bypassing its policy would."""
    import hashlib

    rows = _rows(result.rows_path)
    edit(rows)
    with result.rows_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    _tamper(result, rows__sha256=hashlib.sha256(result.rows_path.read_bytes()).hexdigest())


def _owner_on_names_row(rows: list[dict[str, str]]) -> None:
    next(r for r in rows if r["population"] == "open_opportunity")["owner_email"] = "a@b.io"


def _prospect_row(rows: list[dict[str, str]]) -> None:
    rows[0]["population"] = "prospect"


@pytest.mark.parametrize(("edit", "message"), [
    (_owner_on_names_row, r"line \d+: field 'owner_email' is filled on a row of population "
                          r"open_opportunity, which the manifest shares at names"),
    (_prospect_row, r"line 2: is a row of population prospect, which the manifest shares at "
                    r"counts"),
])
def test_rows_beyond_the_senders_policy_are_refused_whole(
    ours: Engine, databases: Any, tmp_path: Path, edit: Any, message: str
) -> None:
    result = _export(ours, _config(ours), tmp_path)
    _rewrite_rows(result, edit)
    theirs, config = _partner_side(databases)
    assert result.manifest_path is not None
    with transaction(theirs) as session:
        sync_partners_from_config(session, config, now=NOW)
    with pytest.raises(ExchangeFileError, match=message), transaction(theirs) as session:
        import_partner_file(session, "p-us", result.manifest_path, now=NOW)


def test_the_rows_file_alone_is_refused(ours: Engine, databases: Any, tmp_path: Path) -> None:
    result = _export(ours, _config(ours), tmp_path)
    alone = tmp_path / "alone" / "rows.csv"
    alone.parent.mkdir()
    alone.write_bytes(result.rows_path.read_bytes())
    theirs, config = _partner_side(databases)
    with transaction(theirs) as session:
        sync_partners_from_config(session, config, now=NOW)
    with pytest.raises(UserError, match=r"manifest rows\.manifest\.json is not beside it"), \
            transaction(theirs) as session:
        import_partner_file(session, "p-us", alone, now=NOW)


def test_share_log_lists_every_export(ours: Engine, tmp_path: Path) -> None:
    toml = tmp_path / "ours.toml"
    toml.write_text(
        f'[warehouse]\nurl = "{_url(ours)}"\n[exchange]\norganisation = "Example Corp"\n'
        f'[[partners]]\nid = "p-them"\nname = "Them Inc"\n'
        f'outbound = {{ customer = "full", open_opportunity = "names", prospect = "counts" }}\n',
        encoding="utf-8")
    runner = CliRunner()
    base = ["--config", str(toml), "share"]
    first = runner.invoke(cli, [*base, "export", "p-them", "--out", str(tmp_path / "a"),
                                "--by", "jo"])
    assert first.exit_code == 0, first.output
    assert "20 rows" in first.output and "prospect 10 (count only)" in first.output
    # Not a terminal: the progress is one plain line on stderr.
    assert re.search(r"^export p-them: 20 rows in [\d.]+ s", first.stderr, re.M), first.stderr
    second = runner.invoke(cli, [*base, "export", "p-them", "--out", str(tmp_path / "b"),
                                 "--format", "plain", "--by", "jo"])
    assert second.exit_code == 0, second.output
    # The plain file is names and websites only: the summary and the log say no count left.
    assert "customer 10 rows (name and website)" in second.output
    assert "prospect not sent (counts only; the plain format carries no counts)" \
        in second.output
    assert "(full)" not in second.output and "(count only)" not in second.output
    logged = runner.invoke(cli, [*base, "log", "--format", "json"])
    entries = json.loads(logged.output)
    assert [e["format"] for e in entries] == ["plain", "ecosync"]
    assert all(e["exported_by"] == "jo" and e["policy"] == POLICY for e in entries)
    assert entries[1]["counts"] == {"customer": 10, "open_opportunity": 10, "prospect": 10}
    assert entries[0]["counts"] == {"customer": 10, "open_opportunity": 10}
    table = runner.invoke(cli, [*base, "log"])
    assert table.exit_code == 0 and "p-them" in table.output
    other = runner.invoke(cli, [*base, "log", "--partner", "p-other"])
    assert other.exit_code == 0
    assert other.output == ("no exports for p-other yet: make one with `ecosync share export "
                            "PARTNER --out DIR` (docs/exchange-format.md)\n")
    none = runner.invoke(cli, ["--config", str(toml), "share", "export", "p-zzz"])
    assert none.exit_code != 0 and "Traceback" not in none.output


def test_a_watched_exchange_manifest_is_imported_by_the_tick(
    ours: Engine, databases: Any, tmp_path: Path
) -> None:
    from sync.tick import run_tick

    result = _export(ours, _config(ours), tmp_path)
    theirs: Engine = databases.new()
    config = side_config(_url(theirs), organisation="Them Inc", partner_id="p-us",
                         partner_name="Example Corp", outbound={"customer": "names"},
                         extra={"path": str(result.manifest_path)})
    first = run_tick(theirs, config, [], now=NOW)
    assert first.status == "succeeded", first.errors
    assert first.counts.tick["partner_files_imported"] == 1
    with transaction(theirs) as session:
        assert session.scalar(select(func.count()).select_from(PartnerAccount)) == 20
        assert session.scalar(select(PartnerPopulationCount.accounts)) == 10
    again = run_tick(theirs, config, [], now=NOW)
    assert again.counts.tick["partner_files_imported"] == 0  # unchanged: not imported again
