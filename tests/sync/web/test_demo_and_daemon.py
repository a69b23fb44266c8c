"""`ecosync demo` leaves a warehouse the web view opens; `ecosync run` serves the web view in
its own process when `[web] enabled = true`."""

from __future__ import annotations

import io
import re
import socket
import threading
from pathlib import Path

import pytest
import requests
from rich.console import Console

from schema.db import make_engine
from sync.config import Config, DaemonConfig, WebConfig, load_config
from sync.daemon import run_daemon
from sync.demo import run_demo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.sqlite_only  # the demo always builds SQLite
def test_demo_warehouse_opens_in_the_web_view_served_by_the_daemon(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(tmp_path / "demo", accounts=60, opportunities=120, partners=2,
                      console=Console(file=out, width=200))
    # The demo ends with the commands to try in its folder, whose config names its warehouse.
    lines = out.getvalue().strip().splitlines()
    assert any(re.fullmatch(r"\s*ecosync web\b.*", line) for line in lines[-12:]), lines[-12:]
    assert f"cd {result.directory}" in "\n".join(lines[-12:])
    engine = make_engine(load_config(result.directory / "ecosync.toml").warehouse.url)
    port = _free_port()
    config = Config(daemon=DaemonConfig(lock_file=str(tmp_path / "lock"), interval_seconds=3600),
                    web=WebConfig(enabled=True, port=port))
    stop = threading.Event()
    daemon = threading.Thread(target=run_daemon, args=(engine, config),
                              kwargs={"stop": stop, "connectors": [], "health": False})
    daemon.start()
    try:
        pages = {}
        for path in ("/matrix", "/accounts", "/partners", "/network", "/operations"):
            pages[path] = _get(f"http://127.0.0.1:{port}{path}", daemon)
        assert all(r.status_code == 200 for r in pages.values())
        grid = _get(f"http://127.0.0.1:{port}/api/v1/matrix", daemon).json()["tables"][0]
        assert sum(v for r in grid["rows"] for k, v in r.items()
                   if k in ("customer", "open_opportunity", "prospect") and v) > 0
    finally:
        stop.set()
        daemon.join(timeout=30)
        engine.dispose()
    assert not daemon.is_alive()
    with socket.socket() as s:  # the web view stopped with the daemon
        assert s.connect_ex(("127.0.0.1", port)) != 0


def _get(url: str, daemon: threading.Thread) -> requests.Response:
    """The web view answers as soon as the daemon has started it (bounded wait)."""
    for _ in range(300):
        try:
            return requests.get(url, timeout=10)
        except requests.ConnectionError:
            assert daemon.is_alive(), "the daemon stopped"
            daemon.join(0.05)
    raise AssertionError(f"{url} never answered")
