"""Builders for the doctor tests: a sandbox world, its config on disk, and a doctor run
through the real `ecosync` click group."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from sandbox.world import World
from sync.cli import cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Setup:
    """A sandbox world with its config file, environment and warehouse URL."""

    world: World
    directory: Path
    warehouse_url: str
    health_port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    extra_toml: str = ""
    # (old, new) text replacements applied to the generated config, e.g. another auth mode.
    edits: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = {**self.world.env(), **self.env}

    @property
    def config_path(self) -> Path:
        path = self.directory / "ecosync.toml"
        text = self.world.config_toml(self.warehouse_url)
        for old, new in self.edits:
            assert old in text, old
            text = text.replace(old, new)
        path.write_text(
            text + f'\n[daemon]\nhealth_port = {self.health_port}\n'
            + f'lock_file = "{self.directory / "ecosync.lock"}"\n' + self.extra_toml,
            encoding="utf-8",
        )
        return path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(
            cli, ["--config", str(self.config_path), "--log-format", "json", *args],
            env=self.env,
        )

    def doctor(self) -> tuple[Result, dict[str, Any]]:
        """Runs `ecosync doctor --format json`; returns the result and the parsed report."""
        result = self.run("doctor", "--format", "json")
        return result, json.loads(result.stdout)

    def table(self) -> Result:
        return self.run("doctor")


def lines(report: dict[str, Any], status: str) -> list[dict[str, str]]:
    return [c for c in report["checks"] if c["status"] == status]


def find(report: dict[str, Any], area: str, name: str) -> dict[str, str]:
    for check in report["checks"]:
        if check["area"] == area and check["name"] == name:
            return dict(check)
    raise AssertionError(f"no check {area}/{name} in {json.dumps(report, indent=1)}")


def failing(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["area"], c["name"]) for c in report["checks"] if c["status"] == "fail"]
