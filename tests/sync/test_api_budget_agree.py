"""One API budget: `status`, /metrics and the web's operations page all show the cap each
connector reported (ApiUsage.daily_cap, stored in the run log), never a config value looked
up by source name: after the config's max_api_share is edited, they still say what the run
kept to, and agree with one another."""

from __future__ import annotations

import math
import re
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from test_metrics import scrape

from sandbox.world import World, running_world
from sync.cli import cli
from sync.config import parse_config
from sync.daemon import Alerts, daemon_tick
from sync.health import DaemonState
from sync.logs import MASKER
from sync.web.app import create_app
from sync.wiring import build_connectors

SHARES = {"salesforce": 0.37, "hubspot": 0.61}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(tmp_path / "world", seed=5, accounts=20, opportunities=30,
                       partners=1) as w:
        MASKER.add(w.env().values())
        yield w


def _toml(world: World, url: str, shares: dict[str, float]) -> str:
    text = world.config_toml(url)
    for crm, share in shares.items():
        text = text.replace(f"[crm.{crm}]\nenabled = true\n",
                            f"[crm.{crm}]\nenabled = true\nmax_api_share = {share}\n")
    return text


def test_status_metrics_and_web_show_the_cap_the_run_kept_to(
        world: World, warehouse: Engine, tmp_path: Path) -> None:
    assert world.salesforce is not None and world.hubspot is not None
    url = warehouse.url.render_as_string(hide_password=False)
    config = parse_config(tomllib.loads(_toml(world, url, SHARES)), "<test>", world.env())
    connectors = build_connectors(config)
    for connector in connectors:
        connector.ensure_fields(check_only=False)
    state = DaemonState(interval_s=60, leader=True)
    daemon_tick(warehouse, config, connectors, state, Alerts(), threading.Event())
    caps = {c.name: c.usage().daily_cap for c in connectors}
    limits = {c.name: c.usage().daily_limit for c in connectors}
    assert set(caps) == set(SHARES)
    for name, share in SHARES.items():
        limit = limits[name]
        assert limit and caps[name] == math.floor(limit * share)

    metrics = scrape(state)["ecosync_api_daily_cap"][1]
    assert {dict(k)["source"]: int(v) for k, v in metrics.items()} == caps

    # The operator raises the share afterwards: what the last run kept to is still shown.
    edited = tmp_path / "ecosync.toml"
    edited.write_text(_toml(world, url, {"salesforce": 0.9, "hubspot": 0.9}), encoding="utf-8")
    status = CliRunner(env={**world.env(), "COLUMNS": "200"}).invoke(
        cli, ["--config", str(edited), "status"])
    assert status.exit_code == 0, status.output
    shown = {m[1]: int(m[2].replace(",", "")) for m in re.finditer(
        r"API use (\w+): .*?; ecosync stops at ([\d,]+) \(\d+%\)", status.stdout)}
    assert shown == caps, status.stdout
    for name in SHARES:
        assert f"({round(100 * caps[name] / limits[name])}%)" in status.stdout

    edited_config = parse_config(tomllib.loads(edited.read_text()), "<test>", world.env())
    with TestClient(create_app(warehouse, edited_config)) as client:
        doc = client.get("/api/v1/operations").json()
    budget = {t["name"]: t for t in doc["tables"]}["budget"]["rows"]
    assert {r["crm"]: r["ecosync_cap"] for r in budget} == caps
    assert {r["crm"]: r["ecosync_stops_at_pct"] for r in budget} == {
        n: round(100 * caps[n] / limits[n], 1) for n in caps}
