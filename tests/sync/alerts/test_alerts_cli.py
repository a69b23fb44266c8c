"""`ecosync alerts test NAME` and `ecosync alerts list`."""

from __future__ import annotations

import json
from pathlib import Path

from alerts_support import SECRET, Clock, Warehouse, alerts_toml, receivers, verify, wall
from click.testing import CliRunner

from sync.alerts.deliver import deliver_alerts
from sync.cli import cli
from sync.config import load_config


def write_config(wh: Warehouse, tmp: Path, ca: Path) -> Path:
    url = wh.engine.url.render_as_string(hide_password=False)
    path = tmp / "ecosync.toml"
    path.write_text(f'[warehouse]\nurl = "{url}"\n\n' + alerts_toml([
        {"name": "hook", "kind": "webhook", "webhook_url": "${HOOK_URL}",
         "secret": "${HOOK_SECRET}", "ca_bundle": str(ca),
         "events": ["overlap.new_on_open_opportunity"]},
        {"name": "slack", "kind": "slack", "webhook_url": "${SLACK_URL}", "ca_bundle": str(ca),
         "events": ["overlap.new_on_open_opportunity"]}]))
    return path


def test_alerts_test_sends_a_signed_sample(wh: Warehouse, tmp_path: Path) -> None:
    with receivers(tmp_path, ("ok", False), ("fail", True)) as ((hook, slack), ca):
        config = write_config(wh, tmp_path, ca)
        env = {"HOOK_URL": hook.url, "HOOK_SECRET": SECRET, "SLACK_URL": slack.url}
        run = CliRunner(env=env).invoke(cli, ["--config", str(config), "alerts", "test",
                                              "hook"])
        assert run.exit_code == 0, run.output
        assert "alert 'hook': sample delivered (HTTP 200)" in run.output
        (req,) = hook.received
        assert verify(SECRET, dict(req.headers), req.body, wall())
        assert json.loads(req.body)["event"] == "test"

        failed = CliRunner(env=env).invoke(cli, ["--config", str(config), "alerts", "test",
                                                 "slack"])
        assert failed.exit_code != 0 and "Traceback" not in failed.output
        assert "the receiver did not accept the sample (HTTP 500" in failed.output
        missing = CliRunner(env=env).invoke(cli, ["--config", str(config), "alerts", "test",
                                                  "nope"])
        assert "no alert named 'nope'" in missing.output and "alerts: hook, slack" in \
            missing.output


def test_alerts_list_shows_pending_sent_and_failed(wh: Warehouse, tmp_path: Path) -> None:
    with receivers(tmp_path, ("ok", False), ("fail", True)) as ((hook, slack), ca):
        path = write_config(wh, tmp_path, ca)
        env = {"HOOK_URL": hook.url, "HOOK_SECRET": SECRET, "SLACK_URL": slack.url}
        cfg = load_config(path, env)
        wh.tick(cfg)
        wh.partner("acme", "Acme Cloud")
        wh.account("A1", "one.example", name="Initech")
        wh.opportunity("O1", "A1")
        wh.partner_account("acme", "one.example", "customer")
        wh.tick(cfg)
        clock = Clock()
        deliver_alerts(wh.engine, cfg, now=wh.now, clock=clock, sleep=clock.sleep)
        run = CliRunner(env=env).invoke(cli, ["--config", str(path), "alerts", "list",
                                              "--format", "json"])
        assert run.exit_code == 0, run.output
        rows = {r["alert"]: r for r in json.loads(run.output)}
        assert rows["hook"]["status"] == "sent" and rows["slack"]["status"] == "pending"
        assert rows["slack"]["last_error"].startswith("HTTP 500")
        assert "Acme Cloud (customer) overlaps Initech" in rows["hook"]["summary"]
        only = CliRunner(env=env).invoke(cli, ["--config", str(path), "alerts", "list",
                                               "--status", "pending", "--format", "json"])
        assert [r["alert"] for r in json.loads(only.output)] == ["slack"]
