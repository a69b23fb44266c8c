"""No secret leaks and no unshared partner data leaks, across a whole operator session.

One module-scoped session drives the real `ecosync` command in subprocesses (a fresh process
masks only what the product itself knows): backfill, a dry run, ticks after CRM changes,
every report in every format, status, history, both explains, doctor, the daemon for a few
ticks, failures with wrong credentials and CRMs that echo the credentials they were sent. CRM
users and partner files put markup, terminal control sequences and formulas in names. Every
byte of output, every log line, the warehouse file and both sandboxes' write logs are then
scanned."""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from reliability_support import all_secrets, mutate

import migrations
from sandbox.seed_world import POPULATION_FORMS
from sandbox.world import World, running_world
from schema.db import make_engine
from sync.cli import cli

# The session runs on its own SQLite warehouse: CI's PostgreSQL pass would repeat it as is.
pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]

SEED = 8
ACCOUNTS, OPPORTUNITIES, PARTNERS = 200, 320, 4
FORMATS = ("table", "csv", "json")
# Names CRM users and partners control (issue 15.7-8; tests/sync/reports has the full set).
HOSTILE = ("[/bold]Acme", "[link=http://evil.example]Globex[/link]",
           "\x1b]8;;http://evil.example\x1b\\Click me\x1b]8;;\x1b\\", "\x1b[2J\x1b[31mWiped\x07",
           "=cmd|' /C calc'!A0", "+SUM(A1:A9) Corp", "@import Ltd")
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # control characters, raw
FORMULA = ("=", "+", "-", "@")


@dataclass
class Transcript:
    world: World
    outputs: dict[str, str] = field(default_factory=dict)  # command -> stdout + stderr
    exit_codes: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    write_values: list[str] = field(default_factory=list)  # every value sent to a CRM
    database: str = ""  # the warehouse file and its WAL, as text

    def everything(self) -> Iterator[tuple[str, str]]:
        yield from self.outputs.items()
        for n, value in enumerate(self.write_values):
            yield f"write #{n}", value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ecosync(config: Path, env: dict[str, str], *args: str,
             timeout: float = 120) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from sync.cli import main; main()", "--config", str(config),
         "--log-format", "json", *args],
        env={**os.environ, **env}, capture_output=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace") + \
        proc.stderr.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def transcript(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Transcript]:
    tmp = tmp_path_factory.mktemp("security")
    db = tmp / "wh.db"
    engine = make_engine(f"sqlite:///{db}")
    migrations.upgrade(engine)
    engine.dispose()
    with running_world(tmp / "world", seed=SEED, accounts=ACCOUNTS,
                       opportunities=OPPORTUNITIES, partners=PARTNERS) as world:
        assert world.salesforce is not None and world.hubspot is not None
        t = Transcript(world)
        config = tmp / "ecosync.toml"
        config.write_text(world.config_toml(f"sqlite:///{db}") + (
            f"\n[daemon]\ninterval_seconds = 1\njitter_seconds = 0\n"
            f"health_port = {free_port()}\nlock_file = \"{tmp / 'ecosync.lock'}\"\n"))
        env = world.env()

        def run(name: str, *args: str) -> str:
            code, out = _ecosync(config, env, *args)
            t.outputs[name], t.exit_codes[name] = out, code
            return out

        def read(name: str, *args: str) -> None:
            """Read-only commands run in this process (a child per command costs seconds);
            the test never feeds the masker, so only what the product knows is masked."""
            result = CliRunner().invoke(
                cli, ["--config", str(config), "--log-format", "json", *args], env=env)
            t.outputs[name], t.exit_codes[name] = result.output, result.exit_code

        _plant_hostile_names(world)
        run("fields ensure", "fields", "ensure")
        read("config check", "config", "check")
        run("dry run before backfill", "sync", "--once", "--dry-run")
        run("backfill", "backfill", "--no-progress")
        world.advance_clocks(1)
        mutate(world, 0)
        world.advance_clocks(1)
        run("dry run", "sync", "--once", "--dry-run")
        run("sync", "sync", "--once")
        for report in ("overlaps", "accounts", "working-set", "attribution"):
            for fmt in FORMATS:
                read(f"report {report} {fmt}", "report", report, "--format", fmt)
        for fmt in ("table", "json"):
            read(f"status {fmt}", "status", "--format", fmt)
            read(f"doctor {fmt}", "doctor", "--format", fmt)
            read(f"partners list {fmt}", "partners", "list", "--format", fmt)
            read(f"deadletter list {fmt}", "deadletter", "list", "--format", fmt)
        account = next(e.id for e in world.salesforce.api_writes() if e.object == "Account")
        opportunity = next(e.id for e in world.salesforce.api_writes()
                           if e.object == "Opportunity")
        read("history", "history", account, "--format", "json")
        read("attribution explain", "attribution", "explain", opportunity, "--format", "json")
        for fmt in FORMATS:
            read(f"match explain {fmt}", "match", "explain", account, "--format", fmt)

        # The daemon for two ticks, then its own clean stop: no signal racing its ticks
        # (tests/security/test_masking.py covers a SIGTERM landing mid-write).
        run("run", "run", "--max-ticks", "2")

        # Wrong credentials: the errors must not echo them back.
        wrong = {k: f"wrong-{v[::-1]}" for k, v in env.items()}
        for name, args in (("sync with wrong credentials", ("sync", "--once")),
                           ("doctor with wrong credentials", ("doctor",)),
                           ("backfill with wrong credentials", ("backfill", "--no-progress"))):
            code, out = _ecosync(config, wrong, *args)
            t.outputs[name], t.exit_codes[name] = out, code

        # CRMs that quote the request back in their errors, credentials and all.
        world.salesforce.faults.configure(echo_401=1.0)
        world.hubspot.faults.configure(echo_400=1.0)
        try:
            run("sync with echoing CRMs", "sync", "--once")
        finally:
            world.salesforce.faults.clear()
            world.hubspot.faults.clear()
        t.database = "\n".join(p.read_bytes().decode("utf-8", "replace")
                               for p in sorted(tmp.glob("wh.db*")))

        t.secrets = {**all_secrets(world),
                     **{f"wrong {k}": v for k, v in wrong.items()},
                     **{f"sf session {n}": tok
                        for n, tok in enumerate(world.salesforce.tokens.live)}}
        t.write_values = [str(e.new) for e in world.salesforce.api_writes()] + [
            str(h.new) for h in world.hubspot.write_log if h.source == "api"]
        yield t


def _plant_hostile_names(world: World) -> None:
    """Before the backfill: CRM account names and partner owner names with markup, control
    sequences and formula prefixes."""
    assert world.salesforce is not None and world.hubspot is not None
    for rid, name in zip([r["Id"] for r in world.salesforce.records("Account")][:len(HOSTILE)],
                         HOSTILE, strict=True):
        world.salesforce.update("Account", rid, {"Name": name})
    for cid, name in zip([r.id for r in world.hubspot.records("companies")][:len(HOSTILE)],
                         reversed(HOSTILE), strict=True):
        world.hubspot.update("companies", cid, {"name": name})
    for path in world.partner_files.values():
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        owner = rows[0].index("owner_name")
        for n, row in enumerate(rows[1:]):
            if n % 7 == 0:
                row[owner] = HOSTILE[n // 7 % len(HOSTILE)]
        with path.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)


def test_the_session_ran_for_real(transcript: Transcript) -> None:
    codes = transcript.exit_codes
    failing = ("wrong", "echoing")
    assert all(codes[k] == 0 for k in codes if not any(f in k for f in failing)
               and k != "doctor table" and k != "doctor json"), codes
    assert all(codes[k] != 0 for k in codes if any(f in k for f in failing)), codes
    assert "***" in transcript.outputs["sync with echoing CRMs"]  # the echo reached the output
    assert transcript.write_values, "the session wrote nothing: the scan would prove nothing"
    assert transcript.outputs["run"].count('"event": "tick summary"') == 2
    assert '"event": "daemon stopped"' in transcript.outputs["run"]


def test_no_secret_in_any_output_or_log_line(transcript: Transcript) -> None:
    assert transcript.database
    leaks = [(where, name) for where, text in [*transcript.everything(),
                                               ("the warehouse", transcript.database)]
             for name, secret in transcript.secrets.items() if secret in text]
    assert leaks == []


def test_names_users_control_reach_no_terminal_raw_and_no_crm_field_as_a_formula(
    transcript: Transcript,
) -> None:
    # CSV that goes to a file or a pipe (as here) is data and keeps cells whole, quoted
    # against formulas (sync.reports.formats); on a terminal its controls are escaped too.
    raw = [(where, RAW.search(text)) for where, text in transcript.outputs.items()
           if not where.endswith(" csv")
           and RAW.search(text.replace("\n", "").replace("\t", ""))]
    assert raw == []
    shown = " ".join(transcript.outputs.values())
    assert "Wiped" in shown or "Click me" in shown  # the names were there to be shown
    written = [v for v in transcript.write_values if v and v != "None"]
    assert [v for v in written if RAW.search(v)] == []
    assert [v for v in written if any(part.strip().startswith(FORMULA)
                                      for part in v.split(";"))] == []


def _population(form: str) -> str:
    """The seed's spellings of a population (sandbox.seed_world.POPULATION_FORMS)."""
    for population, forms in POPULATION_FORMS.items():
        if form in forms:
            return population.value
    raise AssertionError(f"unknown population form {form!r}")


def _unshared(transcript: Transcript) -> tuple[set[str], set[str]]:
    """(partner labels that must never be shown, contact emails that must never be shown)."""
    seed = transcript.world.seed
    labels: set[str] = set()
    shown_emails: set[str] = set()
    hidden_emails: set[str] = set()
    for partner in seed.partners:
        for population, level in partner.share.items():
            if level in ("hidden", "counts"):
                labels.add(f"{partner.name} ({population})")
        for row in seed.partner_rows[partner.id]:
            email = row.get("owner_email") or ""
            if not email:
                continue
            level = partner.share.get(_population(row.get("population") or ""), "hidden")
            (shown_emails if level == "full" else hidden_emails).add(email)
    return labels, hidden_emails - shown_emails


def test_unshared_populations_and_contacts_are_never_written_reported_or_logged(
    transcript: Transcript,
) -> None:
    labels, emails = _unshared(transcript)
    assert labels and emails, "the seed should exercise hidden, counts and names levels"
    leaks = [(where, item, _context(text, item)) for where, text in transcript.everything()
             for item in labels | emails if item in text]
    assert leaks == []


def _context(text: str, item: str) -> str:
    at = text.index(item)
    return text[max(0, at - 300): at + len(item) + 100]

