"""`ecosync psi request|respond|finish|log` through the real click group, two configs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from psi_world import ACME_ONLY, GLOBEX_ONLY, Side, build

from sync.cli import cli

OUTBOUND = '{ customer = "full", open_opportunity = "counts", prospect = "names" }'


def _config(tmp: Path, name: str, org: str, peer_id: str, peer: str, db: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f'[warehouse]\nurl = "{db}"\n\n'
        f'[psi]\norganisation = "{org}"\nstate_dir = "{tmp / name / "state"}"\n'
        f'min_set_size = 3\n\n'
        f'[[partners]]\nid = "{peer_id}"\nname = "{peer}"\nsource = "psi"\n'
        f'outbound = {OUTBOUND}\n', encoding="utf-8")
    return path


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json", *args])


@pytest.fixture
def configs(databases: Any, tmp_path: Path) -> tuple[Path, Path]:
    out = []
    for name, org, peer_id, peer, mine in (("acme", "Acme", "globex", "Globex", ACME_ONLY),
                                           ("globex", "Globex", "acme", "Acme", GLOBEX_ONLY)):
        engine = databases.new()
        side = Side(org, engine, tmp_path / name, peer_id, peer, {})
        build(side, mine)
        url = engine.url.render_as_string(hide_password=False)
        out.append(_config(tmp_path, name, org, peer_id, peer, url))
    return out[0], out[1]


def test_the_whole_run_through_the_cli(configs: tuple[Path, Path], tmp_path: Path) -> None:
    acme, globex = configs
    none_yet = _run(acme, "psi", "log")
    assert none_yet.exit_code == 0
    assert none_yet.stdout.startswith("no private-matching runs yet: start one with "
                                      "`ecosync psi request PARTNER --out FILE`")
    req, resp = tmp_path / "req.psi", tmp_path / "resp.psi"
    made = _run(acme, "psi", "request", "globex", "--out", str(req))
    assert made.exit_code == 0, made.output
    assert "request for globex written to" in made.output
    assert re.search(r"\(\d+ domains, \d+ DUNS numbers?; our populations", made.output)
    # Not a terminal: each stage's progress is one plain line on stderr.
    assert re.search(r"^encrypt: [\d,]+ keys in [\d.]+ s", made.stderr, re.M), made.stderr
    answered = _run(globex, "psi", "respond", "--in", str(req), "--out", str(resp))
    assert answered.exit_code == 0, answered.output
    assert "sharing customer (full), open_opportunity (counts), prospect (names)" \
        in answered.output
    assert re.search(r"^answer: [\d,]+ keys in [\d.]+ s", answered.stderr, re.M)
    contacts_req = tmp_path / "ask.psi"
    done = _run(acme, "psi", "finish", "--in", str(resp), "--out", str(contacts_req))
    assert done.exit_code == 0, done.output
    assert "open_opportunity (counts): 4 domains, 0 DUNS numbers in common" in done.output
    assert "9 partner accounts landed" in done.output
    assert "the next `ecosync sync --once` (or daemon tick) matches them" in done.output
    assert re.search(r"^decrypt answers: done in [\d.]+ s\nland: done in", done.stderr, re.M)
    assert f"send {contacts_req} to the partner" in done.output
    contacts = tmp_path / "contacts.psi"
    sent = _run(globex, "psi", "respond", "--in", str(contacts_req), "--out", str(contacts))
    assert sent.exit_code == 0, sent.output
    assert "6 owner contacts for acme" in sent.output
    got = _run(acme, "psi", "finish", "--in", str(contacts))
    assert got.exit_code == 0, got.output
    assert "6 owner contacts from globex landed" in got.output

    logged = _run(acme, "psi", "log", "--format", "json")
    assert logged.exit_code == 0, logged.output
    [run] = json.loads(logged.stdout)
    assert (run["role"], run["status"], run["contacts"]) == ("requester",
                                                             "contacts_received", 6)
    assert "open_opportunity: 4 domains, 0 DUNS numbers" in run["found_text"]
    table = _run(globex, "psi", "log")
    assert table.exit_code == 0
    assert "responder" in table.output
    assert "contacts_sent" in table.output
    listed = _run(acme, "partners", "list", "--format", "json")
    [partner] = json.loads(listed.stdout)
    assert (partner["source"], partner["rows"]) == ("psi", 9)
    # A file imported into it would silently replace the private result: refused.
    listing = tmp_path / "globex.csv"
    listing.write_text("name,domain,population\nSome Co,some-co.com,customer\n",
                       encoding="utf-8")
    imported = _run(acme, "partners", "import", "globex", str(listing))
    assert imported.exit_code == 1
    assert ("partner 'globex' has source = \"psi\": its rows are the result of "
            "private-matching runs, and this file would replace them") in imported.output
    assert "Traceback" not in imported.output
    listed = _run(acme, "partners", "list", "--format", "json")
    assert json.loads(listed.stdout)[0]["rows"] == 9


def test_errors_are_one_line_without_traceback(configs: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    acme, globex = configs
    junk = tmp_path / "junk.psi"
    junk.write_bytes(b"hello")
    for result in (_run(globex, "psi", "respond", "--in", str(junk), "--out",
                        str(tmp_path / "r.psi")),
                   _run(acme, "psi", "finish", "--in", str(tmp_path / "missing.psi")),
                   _run(acme, "psi", "request", "nobody", "--out", str(tmp_path / "x.psi"))):
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, result.output
    assert not (tmp_path / "r.psi").exists()


def test_without_the_library_the_command_says_how_to_install_it(
        configs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    acme, _ = configs
    monkeypatch.setitem(sys.modules, "private_set_intersection.python", None)
    result = _run(acme, "psi", "request", "globex", "--out", str(tmp_path / "x.psi"))
    assert result.exit_code == 1
    assert "pip install 'ecosync[psi]'" in result.output
    assert not (tmp_path / "x.psi").exists()


def test_one_organisation_name_serves_both_ways_of_sharing(
        configs: tuple[Path, Path], tmp_path: Path) -> None:
    """A RevOps engineer who set our name once, under [exchange] or under [psi], can run
    both `psi` and `share export` without being asked for it again."""
    acme, globex = configs
    text = acme.read_text(encoding="utf-8")
    moved = text.replace('[psi]\norganisation = "Acme"\n', '[psi]\n') \
        + '\n[exchange]\norganisation = "Acme"\n'
    assert '[psi]\norganisation' not in moved
    acme.write_text(moved, encoding="utf-8")
    req = tmp_path / "req.psi"
    made = _run(acme, "psi", "request", "globex", "--out", str(req))
    assert made.exit_code == 0, made.output
    # Globex finds Acme's entry by the name in the request.
    answered = _run(globex, "psi", "respond", "--in", str(req), "--out",
                    str(tmp_path / "resp.psi"))
    assert answered.exit_code == 0, answered.output
    assert "answered acme's request" in answered.output
    # The other way round: only [psi] organisation, and an exchange export.
    exported = _run(globex, "share", "export", "acme", "--out", str(tmp_path / "out"))
    assert exported.exit_code == 0, exported.output
    [manifest] = (tmp_path / "out").glob("*.manifest.json")
    assert json.loads(manifest.read_text(encoding="utf-8"))["organisation"] == "Globex"
