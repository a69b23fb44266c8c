"""A CRM (or a proxy in front of it) that quotes the request back in an error body: 500, 400
and 401 answers carrying the bearer token, the Basic header, the OAuth form or the SOAP login
envelope, for every auth mode of both CRMs, with credentials full of quotes, backslashes and
non-ASCII letters. Whatever the CRM echoes, no form of a credential may reach stdout, stderr,
the JSON log lines, the warehouse file or anything written to a CRM.

The sandboxes' `echo_500/400/401` faults answer with the request's Authorization header and
body inside the CRM's own error format (JSON, so quotes and non-ASCII arrive escaped).
"""

from __future__ import annotations

import base64
import html
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner

from sandbox.world import World, running_world
from sync.cli import cli
from sync.logs import MASKER

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]  # one SQLite file per run, scanned

HOSTILE = 'q"uo\\te-ä-ß-é'


def forms(secret: str) -> set[str]:
    """Every spelling of a credential a scan must not find (the test's own list)."""
    once = json.dumps(secret)[1:-1]
    return {secret, once, json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(once)[1:-1],
            quote(secret, safe=""), quote_plus(secret), html.escape(secret),
            secret.encode("unicode_escape").decode("ascii"), repr(secret)[1:-1]}


@dataclass
class Creds:
    sf_secret: str
    sf_password: str
    sf_token: str
    sf_session: str
    hs_token: str
    hs_secret: str
    hs_refresh: str

    def secrets(self, sf_client_id: str) -> dict[str, set[str]]:
        out = {name: forms(value) for name, value in vars(self).items()}
        basic = base64.b64encode(f"{sf_client_id}:{self.sf_secret}".encode()).decode()
        out["sf basic header"] = {basic}
        return out

    def env(self) -> dict[str, str]:
        return {"SEC_SF_SECRET": self.sf_secret, "SEC_SF_PASSWORD": self.sf_password,
                "SEC_SF_TOKEN": self.sf_token, "SEC_SF_SESSION": self.sf_session,
                "SEC_HS_TOKEN": self.hs_token, "SEC_HS_SECRET": self.hs_secret,
                "SEC_HS_REFRESH": self.hs_refresh}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Creds]]:
    tmp = tmp_path_factory.mktemp("echo")
    with running_world(tmp / "world", seed=12, accounts=40, opportunities=60,
                       partners=2) as w:
        assert w.salesforce is not None and w.hubspot is not None

        def hostile(prefix: str) -> str:
            return f"{prefix}-{HOSTILE}-{uuid.uuid4().hex[:10]}"

        creds = Creds(hostile("sf-secret"), hostile("sf-pass"), hostile("SFTOKEN"),
                      hostile("00Dsession!sess"), hostile("pat-na1"), hostile("hs-secret"),
                      hostile("na1-refresh"))
        sf_creds = w.salesforce.credentials
        sf_creds.client_secret, sf_creds.password = creds.sf_secret, creds.sf_password
        sf_creds.security_token = creds.sf_token
        w.salesforce.tokens.live[creds.sf_session] = None  # a live session, never expiring
        auth = w.hubspot.auth
        auth.access_token, auth.client_secret = creds.hs_token, creds.hs_secret
        auth.refresh_token = creds.hs_refresh
        yield w, creds


def _config(world: World, mode: str, db: Path) -> str:
    sf, hs = world.salesforce, world.hubspot
    assert sf is not None and hs is not None
    head = (f'[warehouse]\nurl = "sqlite:///{db}"\n\n'
            f'[daemon]\nlock_file = "{db.parent / "ecosync.lock"}"\n\n')
    if mode.startswith("salesforce"):
        auth = mode.split(":")[1]
        lines = ["[crm.salesforce]", "enabled = true", f'auth = "{auth}"',
                 f'ca_bundle = "{sf.ca_file}"', f'api_version = "{sf.api_version}"']
        lines += {
            "client_credentials": [f'instance_url = "{sf.url}"', f'client_id = "{sf.client_id}"',
                                   'client_secret = "${SEC_SF_SECRET}"'],
            "password": [f'login_url = "{sf.url}"', f'username = "{sf.username}"',
                         'password = "${SEC_SF_PASSWORD}"',
                         'security_token = "${SEC_SF_TOKEN}"'],
            "session": [f'instance_url = "{sf.url}"', 'session_id = "${SEC_SF_SESSION}"'],
        }[auth]
    else:
        auth = mode.split(":")[1]
        lines = ["[crm.hubspot]", "enabled = true", f'auth = "{auth}"', f'base_url = "{hs.url}"',
                 f'ca_bundle = "{hs.ca_file}"']
        lines += {
            "private_app": ['access_token = "${SEC_HS_TOKEN}"'],
            "oauth": [f'client_id = "{hs.client_id}"', 'client_secret = "${SEC_HS_SECRET}"',
                      'refresh_token = "${SEC_HS_REFRESH}"'],
        }[auth]
    return head + "\n".join(lines) + "\n"


# Cases where what the product quotes of the echo stops before any credential.
QUOTES_NO_CREDENTIAL = {
    # The retry line quotes 200 characters of the SOAP envelope: the password comes later.
    ("salesforce:password", 500),
}
MODES = ("salesforce:client_credentials", "salesforce:password", "salesforce:session",
         "hubspot:private_app", "hubspot:oauth")


def _scan(world: World, creds: Creds, texts: dict[str, str], db: Path) -> list[tuple[str, str]]:
    assert world.salesforce is not None and world.hubspot is not None
    secrets = creds.secrets(world.salesforce.client_id)
    blobs = dict(texts)
    for path in db.parent.glob(db.name + "*"):  # the database, its WAL and shared memory
        blobs[path.name] = path.read_bytes().decode("utf-8", "replace")
    blobs["crm writes"] = "\n".join(
        [str(e.new) for e in world.salesforce.api_writes()]
        + [str(h.new) for h in world.hubspot.write_log])
    return [(where, name) for where, text in blobs.items()
            for name, spellings in secrets.items() for s in spellings if s in text]


def _sandbox_faults(world: World, mode: str) -> object:
    assert world.salesforce is not None and world.hubspot is not None
    return world.salesforce.faults if mode.startswith("salesforce") else world.hubspot.faults


@pytest.mark.parametrize("status", [400, 401, 500])
@pytest.mark.parametrize("mode", MODES)
def test_an_echoing_crm_leaks_no_credential(world: tuple[World, Creds], tmp_path: Path,
                                            mode: str, status: int) -> None:
    w, creds = world
    db = tmp_path / "wh.db"
    config = tmp_path / "ecosync.toml"
    config.write_text(_config(w, mode, db), encoding="utf-8")
    runner = CliRunner()
    MASKER.clear()  # only what the product learns from its own config may mask anything
    upgraded = runner.invoke(cli, ["--config", str(config), "db", "upgrade"], env=creds.env())
    assert upgraded.exit_code == 0, upgraded.output
    faults = _sandbox_faults(w, mode)
    if status == 500:
        # A 500 is retried: let it echo twice (two retry log lines), then answer.
        faults.next(echo_500=2)  # type: ignore[attr-defined]
    else:
        faults.configure(**{f"echo_{status}": 1.0})  # type: ignore[attr-defined]
    try:
        MASKER.clear()
        result = runner.invoke(cli, ["--config", str(config), "--log-format", "json", "sync",
                                     "--once"], env=creds.env())
    finally:
        faults.clear()  # type: ignore[attr-defined]
    assert faults.fired[f"echo_{status}"] >= 1  # type: ignore[attr-defined]
    assert "Traceback" not in result.output, result.output
    if status != 500:
        assert result.exit_code != 0, result.output
        assert result.stderr.strip().splitlines()[-1].startswith("error: "), result.stderr
    assert _scan(w, creds, {"stdout": result.stdout, "stderr": result.stderr}, db) == []
    # The echo really carried a credential: the masker had work to do.
    # Where the echo reached the output, the masker had work to do (a connector may also
    # name the failure without quoting the body: then there was nothing to find).
    if "cannot process" in result.output and (mode, status) not in QUOTES_NO_CREDENTIAL:
        assert "***" in result.output, result.output


def test_the_error_line_of_a_real_process_is_masked(world: tuple[World, Creds],
                                                   tmp_path: Path) -> None:
    """The original report: an error body echoing the bearer token put it on stderr and in
    sync_runs.error. A child process, so sys.stderr is the real one."""
    w, creds = world
    assert w.hubspot is not None
    db = tmp_path / "wh.db"
    config = tmp_path / "ecosync.toml"
    config.write_text(_config(w, "hubspot:private_app", db), encoding="utf-8")
    base = [sys.executable, "-c", "from sync.cli import main; main()", "--config", str(config)]
    env = {**os.environ, **creds.env()}
    subprocess.run([*base, "db", "upgrade"], env=env, check=True, capture_output=True)
    w.hubspot.faults.configure(echo_400=1.0)
    try:
        proc = subprocess.run([*base, "--log-format", "json", "sync", "--once"], env=env,
                              capture_output=True, check=False, timeout=120)
    finally:
        w.hubspot.faults.clear()
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    assert proc.returncode != 0
    assert err.strip().splitlines()[-1].startswith("error: "), err
    assert "Bearer ***" in err.strip().splitlines()[-1], err
    assert _scan(w, creds, {"stdout": out, "stderr": err}, db) == []
