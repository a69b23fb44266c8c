"""A plain `pip install .` runs the product (issue 17.13): the command modules, the engine,
the connectors and the demo's sandboxes import nothing that only the dev extra (or the web
and psi extras it pulls in) installs. Checked in a fresh interpreter where every such
package is made unimportable."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

# What runs without an extra: every command module, the engine and daemon, both connectors,
# and the sandboxes `ecosync demo` and `ecosync sandbox serve` start (over TLS, with trustme).
COMMANDS = sorted(f"sync.commands.{p.stem}" for p in (ROOT / "sync" / "commands").glob("*.py")
                  if p.stem != "__init__")
RUNTIME = ["sync.cli", *COMMANDS, "sync.tick", "sync.daemon", "sync.demo",
           "connectors.salesforce", "connectors.hubspot", "sandbox.world", "migrations"]

_PROBE = """
import importlib, importlib.abc, json, sys
blocked = set(json.loads(sys.argv[1]))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} (only an extra installs it)", name=name)
        return None

sys.meta_path.insert(0, Block())
failed = {}
for module in json.loads(sys.argv[2]):
    try:
        importlib.import_module(module)
    except ImportError as exc:
        failed[module] = str(exc)
print(json.dumps(failed))
"""


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, transitively (markers other than
    extras count as met: the runtime set errs on the large side)."""
    seen: set[str] = set()
    todo = [_name(r) for r in requirements]
    while todo:
        name = todo.pop()
        if name in seen or name == "ecosync":
            continue
        seen.add(name)
        try:
            needs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in needs if "extra ==" not in r.split(";", 1)[-1]]
    return seen


def _extra(project: dict[str, Any], extra: str) -> list[str]:
    out: list[str] = []
    for requirement in project["optional-dependencies"][extra]:
        nested = re.fullmatch(r"ecosync\[(\w+)\]", requirement.replace(" ", ""))
        out += _extra(project, nested.group(1)) if nested else [requirement]
    return out


def _blocked_modules() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _closure(project["dependencies"])
    extra_only = _closure(_extra(project, "dev")) - runtime
    modules = set()
    for module, dists in metadata.packages_distributions().items():
        names = {_name(d) for d in dists}
        if names & extra_only and not names & runtime:
            modules.add(module)
    return modules


def test_runtime_modules_need_nothing_from_the_dev_extra() -> None:
    blocked = _blocked_modules()
    # The check means something: the test and web tooling are among the blocked packages.
    assert {"pytest", "hypothesis", "fastapi", "httpx"} <= blocked, sorted(blocked)
    assert "trustme" not in blocked  # a runtime dependency: the demo serves over TLS
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(sorted(blocked)),
                           json.dumps(RUNTIME)], capture_output=True, text=True, cwd=ROOT,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}
