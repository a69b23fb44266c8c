"""A partner file refused for bad rows names the line and the column, never a cell's value:
the row may belong to a population the partner hides, and the message reaches the import's
error line, the daemon's log and `ecosync doctor`."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner
from reliability_support import captured_logs
from sqlalchemy import Engine

from sync.cli import cli
from sync.config import parse_config
from sync.tick import run_tick

HEADER = ["external_id", "name", "domain", "population", "owner_name", "owner_email", "duns"]
GOOD = ["g-1", "Good Co", "good-co.com", "customer", "Ann Good", "ann@good-co.com", ""]
# Every cell of every bad row is a marker that must appear nowhere; each row is bad in one way.
BAD = [
    ["x-secret-1", "", "", "prospect", "Hidden Owner One", "hidden.one@secret-partner.io", ""],
    ["x-secret-2", "Hidden Corp Two", "hidden-two.io", "gold-tier-secret", "Hidden Owner Two",
     "hidden.two@secret-partner.io", ""],
    ["x-secret-3", "Hidden Corp Three", "hidden-three.io", "prospect", "Hidden Owner Three",
     "hidden.three-at-secret-partner.io", ""],
    ["x-secret-4", "Hidden Corp Four", "hidden-four.io", "prospect", "Hidden Owner Four",
     "hidden.four@secret-partner.io", "12-34-5"],
    ["g-1", "Hidden Corp Five", "hidden-five.io", "prospect", "Hidden Owner Five",
     "hidden.five@secret-partner.io", ""],
    ["x-secret-6", "", "hidden-mail-6@gmail.com", "prospect", "Hidden Owner Six", "", ""],
]
MARKERS = sorted({cell for row in BAD for cell in row if len(cell) > 3} - set(GOOD)
                 - {"prospect", "customer"})


def _write(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerows([HEADER, GOOD, *BAD])
    return path


def _config(tmp_path: Path, engine: Engine) -> Path:
    url = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "ecosync.toml"
    path.write_text(
        f'[warehouse]\nurl = "{url}"\n\n[[partners]]\nid = "p-secret"\nname = "Partner S"\n'
        f'path = "{_write(tmp_path / "p.csv")}"\n'
        'share = { customer = "full", open_opportunity = "hidden", prospect = "hidden" }\n',
        encoding="utf-8")
    return path


def _leaks(text: str) -> list[str]:
    return [m for m in MARKERS if m in text]


def test_import_doctor_and_daemon_name_lines_not_values(tmp_path: Path,
                                                        warehouse: Engine) -> None:
    config = _config(tmp_path, warehouse)
    runner = CliRunner()
    imported = runner.invoke(cli, ["--config", str(config), "--log-format", "json", "partners",
                                   "import", "p-secret", str(tmp_path / "p.csv")])
    assert imported.exit_code != 0
    for line in (3, 4, 5, 6, 7, 8):
        assert f"line {line}" in imported.output, imported.output
    assert "column 'owner_email'" in imported.output and "column 'duns'" in imported.output
    assert _leaks(imported.output) == []

    doctor = runner.invoke(cli, ["--config", str(config), "--log-format", "json", "doctor",
                                 "--format", "json"])
    assert "invalid row(s): line 3" in doctor.output, doctor.output
    assert _leaks(doctor.output) == []

    import tomllib

    parsed = parse_config(tomllib.loads(config.read_text(encoding="utf-8")), str(config), {})
    with captured_logs() as cap:
        report = run_tick(warehouse, parsed, [])
    assert any("partner p-secret" in e for e in report.errors), report.errors
    assert "partner file rejected" in cap.text()
    assert _leaks(cap.text()) == [] and _leaks(" ".join(report.errors)) == []
