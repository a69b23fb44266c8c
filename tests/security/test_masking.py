"""Every value that came from ${...} is a secret wherever it sits in the config, and a secret
is masked before any renderer escapes it: quotes, backslashes and non-ASCII letters leak in no
spelling, in JSON or console logs, in `config check`, in stdout or stderr."""

from __future__ import annotations

import html
import io
import json
import logging
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner

from sync.cli import cli
from sync.config import load_config
from sync.logs import MASKER, configure_logging, get_logger

pytestmark = pytest.mark.sqlite_only  # no warehouse

SECRET = 'pw-"quo\\ted"-ünïcødé-ß-€-0042'


def spellings(secret: str) -> set[str]:
    once = json.dumps(secret)[1:-1]
    return {secret, once, json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(once)[1:-1],
            quote(secret, safe=""), quote_plus(secret), html.escape(secret),
            secret.encode("unicode_escape").decode("ascii"), repr(secret)[1:-1]}


def found(text: str, secret: str = SECRET) -> list[str]:
    return [s for s in spellings(secret) if s in text]


@pytest.fixture(autouse=True)
def _fresh_masker() -> None:
    MASKER.clear()


def test_config_check_masks_every_substitution_wherever_it_sits(tmp_path: Path) -> None:
    path = tmp_path / "ecosync.toml"
    path.write_text(
        '[warehouse]\nurl = "postgresql+psycopg://ecosync:${DB_PW}@db.internal:5432/ecosync"\n'
        '[matching]\ngeneric_domains = ["${ODD_PLACE}"]\n'
        '[crm.hubspot]\nname = "hs-${TENANT}"\n', encoding="utf-8")
    env = {"DB_PW": SECRET, "ODD_PLACE": "odd-place-value", "TENANT": "tenant-4711"}
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "check"], env=env)
    assert result.exit_code == 0, result.output
    assert found(result.output) == []
    assert "odd-place-value" not in result.output and "tenant-4711" not in result.output
    shown = json.loads(result.stdout)
    # Partial substitutions keep the rest readable.
    assert shown["warehouse"]["url"] == "postgresql+psycopg://ecosync:***@db.internal:5432/ecosync"
    assert shown["crm"]["hubspot"]["name"] == "hs-***"
    assert "interpolated" not in shown


def test_a_password_written_into_the_url_is_masked_too(tmp_path: Path) -> None:
    path = tmp_path / "ecosync.toml"
    path.write_text('[warehouse]\nurl = "postgresql+psycopg://u:literal-pw-99@h/db"\n',
                    encoding="utf-8")
    config = load_config(path, env={})
    assert "literal-pw-99" in config.secrets()
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "check"], env={})
    assert "literal-pw-99" not in result.output


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_log_lines_never_carry_a_secret_in_any_escaped_form(fmt: str) -> None:
    out = io.StringIO()
    configure_logging(fmt, "debug", stream=out, secrets=[SECRET])
    log = get_logger("test")
    once = json.dumps(SECRET)[1:-1]
    log.info("plain", token=SECRET)
    log.info("nested", headers={"Authorization": f"Bearer {SECRET}"}, items=[SECRET, (SECRET,)])
    # A CRM's JSON error body quoted in a message: the secret arrives already escaped.
    log.warning("crm said", body=json.dumps({"message": f"bad token {SECRET}"}))
    log.warning(f"formatted into the event {once} and {SECRET!r}")
    try:
        raise RuntimeError(f"401 for {SECRET}")
    except RuntimeError:
        log.exception("boom")
    logging.getLogger("urllib3").error("stdlib: %s %r", SECRET, SECRET)
    text = out.getvalue()
    assert found(text) == [], text
    assert text.count("***") >= 8
    if fmt == "json":
        for line in text.splitlines():
            if line.startswith("{"):
                json.loads(line)


def test_what_the_cli_prints_is_masked_even_outside_the_logs(tmp_path: Path) -> None:
    """The error line of a refused config quotes the bad value: one from ${...} is masked,
    though the config never loaded (the masker learns its secrets from a loaded config)."""
    path = tmp_path / "ecosync.toml"
    path.write_text('[crm.hubspot]\nenabled = true\naccess_token = "${HS_TOKEN}"\n'
                    'timeout_seconds = "${HS_TOKEN}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "check"],
                                env={"HS_TOKEN": SECRET})
    assert result.exit_code == 2, result.output
    assert "crm.hubspot.timeout_seconds" in result.output and "***" in result.output
    assert found(result.output) == []


SIGNAL_CHILD = r"""
import io, os, signal, sys
from sync.logs import configure_logging, get_logger, install_masking_streams

class Terminal(io.TextIOBase):
    # The real stderr, but the first line written raises a signal mid-write: its handler
    # runs right there, inside the logger's and the masking stream's write.
    fired = False
    def write(self, text):
        sys.__stderr__.write(text)
        if not Terminal.fired:
            Terminal.fired = True
            os.kill(os.getpid(), signal.SIGUSR1)
        return len(text)
    def flush(self):
        sys.__stderr__.flush()

sys.stderr = Terminal()
install_masking_streams()
configure_logging("json", "info")
log = get_logger("daemon")
signal.signal(signal.SIGUSR1, lambda *_: log.info("stop requested"))
log.info("tick summary")
log.info("daemon stopped")
"""


def test_a_signal_handler_that_logs_mid_write_does_not_deadlock() -> None:
    """The daemon logs from its SIGTERM handler; a signal can land while the main thread is
    writing a log line through the masking stream."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", SIGNAL_CHILD], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    for event in ("tick summary", "stop requested", "daemon stopped"):
        assert f'"event": "{event}"' in proc.stderr, proc.stderr
