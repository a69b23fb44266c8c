"""Start-up: `ecosync --help` and the read-only commands import only what they use
(issue 17.12). Checked on `sys.modules` in a fresh interpreter, not by timing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from schema.db import transaction
from sync.partners import add_partner

# What `--help` must never load: the ORM, migrations, HTTP clients and servers, the CRM
# client libraries, plotting and private matching.
HEAVY = ("sqlalchemy", "sqlalchemy.orm", "alembic", "requests", "urllib3", "httpx",
         "simple_salesforce", "hubspot", "fastapi", "starlette", "uvicorn", "plotly",
         "private_set_intersection", "trustme", "cryptography", "rich", "structlog")

_PROBE = """
import json, sys
from sync.cli import cli
try:
    cli(sys.argv[1:], prog_name="ecosync")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.__stderr__)
"""


def loaded_by(*args: str, cwd: str | None = None) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                          text=True, cwd=cwd, check=False)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_click_and_the_command_table_only() -> None:
    modules = loaded_by("--help")
    assert "click" in modules
    assert [m for m in HEAVY if m in modules] == []
    ours = {m for m in modules if m.split(".")[0] in ("sync", "schema", "connectors")}
    # The command table and what the error handling of every command needs; nothing else.
    assert ours <= {"schema", "schema.errors", "sync", "sync.cli", "sync.commands",
                    "sync.commands.lazy", "sync.context", "sync.errors", "sync.masking"}, ours


# What no read-only command needs: migrations, HTTP clients and servers, the CRM client
# libraries, the web view's templates and plots, private matching, the sandbox's TLS tooling.
NOT_FOR_READING = ("alembic", "requests", "urllib3", "httpx", "simple_salesforce", "hubspot",
                   "fastapi", "starlette", "uvicorn", "jinja2", "plotly",
                   "private_set_intersection", "trustme")

READ_ONLY = (
    ("status",), ("db", "current"), ("config", "check"), ("partners", "list"),
    ("report", "overlaps"), ("report", "accounts"), ("report", "attribution"),
    ("report", "working-set"), ("report", "next-accounts"), ("history", "001A"),
    ("deadletter", "list"), ("attribution", "explain", "006A"), ("psi", "log"),
    ("alerts", "list"),
)

# One interpreter loads what every command reading the warehouse needs, then forks a child
# per command (a fresh interpreter each would cost seconds apiece on a loaded machine); each
# child reports the modules from NOT_FOR_READING it ended up with.
_FORKS = """
import json, os, sys
import sqlalchemy.orm, rich.console, structlog, schema.models, sync.config, sync.logs
from sync.cli import cli
forbidden, runs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {"(preloaded)": [m for m in forbidden if m in sys.modules]}
for args in runs:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            cli(args, prog_name="ecosync")
        except SystemExit:
            pass
        os.write(write, json.dumps([m for m in forbidden if m in sys.modules]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        out[" ".join(args[2:])] = json.loads(pipe.read() or '["(no answer)"]')
    os.waitpid(pid, 0)
print(json.dumps(out), file=sys.__stderr__)
"""


def test_read_only_commands_load_no_migrations_http_web_or_crm_clients(
        warehouse: Engine, tmp_path: Path) -> None:
    with transaction(warehouse) as session:
        add_partner(session, "p-kite", "Kite", now=datetime(2026, 11, 2, tzinfo=UTC))
    url = warehouse.url.render_as_string(hide_password=False)
    config = tmp_path / "ecosync.toml"
    config.write_text(f'[warehouse]\nurl = "{url}"\n', encoding="utf-8")
    runs = [["--config", str(config), *args] for args in READ_ONLY]
    done = subprocess.run([sys.executable, "-c", _FORKS, json.dumps(NOT_FOR_READING),
                           json.dumps(runs)], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    expected = {" ".join(args): [] for args in READ_ONLY}
    assert loaded == {"(preloaded)": [], **expected}
