"""Start-up: `ecosync --help` and the read-only commands import only what they use
(issue 17.12). Checked on `sys.modules` in a fresh interpreter, not by timing."""

from __future__ import annotations

import json
import subprocess
import sys

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
    ours = sorted(m for m in modules if m.split(".")[0] in ("sync", "schema", "connectors"))
    assert ours == ["schema", "schema.errors", "sync", "sync.cli", "sync.commands",
                    "sync.commands.lazy", "sync.context", "sync.errors"]
