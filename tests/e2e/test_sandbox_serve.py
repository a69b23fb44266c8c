"""`ecosync sandbox serve` (issue 17.10): says where its ready-made config is, and a restart
with the same folder keeps its URLs and tokens, so that config keeps working."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from sync.cli import cli

SERVE = [sys.executable, "-c", "from sync.cli import main; main()", "sandbox", "serve",
         "--accounts", "20", "--opportunities", "20", "--partners", "1"]


def _serve(directory: Path) -> tuple[subprocess.Popen[str], str]:
    """Start the sandbox and read its output up to `serving` (it blocks until a signal)."""
    proc = subprocess.Popen([*SERVE, "--dir", str(directory)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("serving"):
            return proc, "".join(lines)
    proc.kill()
    raise AssertionError("the sandbox did not start:\n" + "".join(lines))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def _env(directory: Path) -> dict[str, str]:
    text = (directory / "sandbox.env").read_text(encoding="utf-8")
    return dict(re.findall(r"^export (\w+)=(.*)$", text, re.M))


def test_serve_keeps_urls_and_tokens_across_restarts(tmp_path: Path) -> None:
    directory = tmp_path / "sandbox"
    proc, first = _serve(directory)
    try:
        config = directory / "ecosync.toml"
        assert f"ready-made ecosync config {config}" in first
        assert "source sandbox.env" in first and "ecosync backfill" in first
        state = json.loads((directory / "sandbox-state.json").read_text(encoding="utf-8"))
        assert oct((directory / "sandbox.env").stat().st_mode & 0o777) == "0o600"
        env = _env(directory)
        urls = re.findall(r"https://127\.0\.0\.1:\d+", config.read_text(encoding="utf-8"))
    finally:
        _stop(proc)

    proc, second = _serve(directory)
    try:
        assert json.loads((directory / "sandbox-state.json").read_text(
            encoding="utf-8")) == state
        assert _env(directory) == env
        assert re.findall(r"https://127\.0\.0\.1:\d+", config.read_text(encoding="utf-8")) \
            == urls
        assert set(re.findall(r"https://127\.0\.0\.1:\d+", second)) == set(urls)
        # The config written by the first run works against the restarted sandbox, and the
        # steps it prints work in the order printed on a new warehouse (doctor aside: it
        # also checks things of this machine, such as a free health port).
        steps = [line.strip().split()[1:] for line in
                 second.split("in another shell:\n", 1)[1].splitlines()
                 if line.strip().startswith("ecosync ")]
        assert steps[:2] == [["db", "upgrade"], ["fields", "ensure"]]
        assert ["backfill"] in steps
        for step in steps:
            if step == ["doctor"]:
                continue
            result = CliRunner(env=env).invoke(cli, ["--config", str(config), *step])
            assert result.exit_code == 0, (step, result.output)
    finally:
        _stop(proc)
    assert state["salesforce_port"] and state["hubspot_port"]


def test_a_taken_port_is_one_clear_line(tmp_path: Path) -> None:
    directory = tmp_path / "sandbox"
    proc, _ = _serve(directory)
    try:
        clash = subprocess.run([*SERVE, "--dir", str(directory)], capture_output=True,
                               text=True, timeout=120)
    finally:
        _stop(proc)
    assert clash.returncode != 0
    assert "cannot listen on the sandbox's ports" in clash.stderr
    assert "Traceback" not in clash.stderr
