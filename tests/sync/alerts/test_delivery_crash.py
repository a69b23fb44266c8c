"""kill -9 of the daemon at points in delivery (the receiver itself pulls the trigger while
a message is in flight, and seeded timers land elsewhere in the tick), then restart: every
fact arrives at every receiver, each fact under one idempotency key whatever the retries,
every webhook signature verifies, and the outbox ends with one sent row per fact and alert."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from alerts_support import SECRET, Warehouse, alerts_toml, receivers, verify
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from waiting import wait_until

from sandbox.common import Request
from schema.models import AlertEvent
from sync.config import load_config

pytestmark = [pytest.mark.slow, pytest.mark.crash]

FACTS = 6
RECEIVER_KILLS = {("hook", 1), ("hook", 4), ("slack", 2), ("hook", 7)}
SEED = 21


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_events_arrive_once_per_fact_across_kill_9(
        tmp_path: Path, warehouse: Engine) -> None:
    with receivers(tmp_path, ("ok", False), ("ok", True)) as ((hook, slack), ca):
        url = warehouse.url.render_as_string(hide_password=False)
        path = tmp_path / "ecosync.toml"
        path.write_text(
            f'[warehouse]\nurl = "{url}"\n\n[daemon]\ninterval_seconds = 1\n'
            f"jitter_seconds = 0\nhealth_port = {free_port()}\n"
            f'lock_file = "{tmp_path / "ecosync.lock"}"\n\n' + alerts_toml([
                {"name": "hook", "kind": "webhook", "webhook_url": "${HOOK_URL}",
                 "secret": "${HOOK_SECRET}", "ca_bundle": str(ca),
                 "events": ["overlap.new_on_open_opportunity"]},
                {"name": "slack", "kind": "slack", "webhook_url": "${SLACK_URL}",
                 "ca_bundle": str(ca), "events": ["overlap.new_on_open_opportunity"]}]))
        env = {**os.environ, "HOOK_URL": hook.url, "HOOK_SECRET": SECRET,
               "SLACK_URL": slack.url}
        wh = Warehouse(warehouse)
        wh.tick(load_config(path, env))  # alerts switched on over an empty warehouse
        wh.partner("acme", "Acme Cloud")
        for i in range(FACTS):
            wh.account(f"A{i}", f"a{i}.example", name=f"Account {i}")
            wh.opportunity(f"O{i}", f"A{i}")
            wh.partner_account("acme", f"a{i}.example", "customer")

        daemon: list[subprocess.Popen[bytes]] = []
        seen: dict[str, int] = defaultdict(int)
        kills: list[str] = []

        def trigger(name: str) -> None:
            def on_request(_req: Request) -> None:
                seen[name] += 1
                if (name, seen[name]) in RECEIVER_KILLS and daemon:
                    # In flight: sent, not yet acknowledged, so not yet marked sent.
                    os.kill(daemon[-1].pid, signal.SIGKILL)
                    kills.append(f"{name} request {seen[name]}")
            return on_request

        hook.on_request, slack.on_request = trigger("hook"), trigger("slack")
        rng = random.Random(SEED)
        deadline = time.monotonic() + 240
        while not _all_sent(warehouse, 2 * FACTS):
            assert time.monotonic() < deadline, f"not all sent; kills: {kills}"
            proc = subprocess.Popen(
                [sys.executable, "-c", "from sync.cli import main; main()", "--config",
                 str(path), "--log-format", "json", "run"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            daemon.append(proc)
            # Seeded kills elsewhere in the tick: start-up, matching, detection, delivery.
            timer = rng.uniform(0.3, 2.5) if len(daemon) <= 4 else None
            ended = wait_until(
                lambda p=proc: p.poll() is not None or _all_sent(warehouse, 2 * FACTS),
                timeout=timer if timer is not None else 240)
            if not ended and timer is not None:
                proc.kill()
                kills.append(f"timer {timer:.2f}s")
            if proc.poll() is None and _all_sent(warehouse, 2 * FACTS):
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-3000:]
        assert sum(k.startswith(("hook", "slack")) for k in kills) == len(RECEIVER_KILLS)

        with Session(warehouse) as s:
            rows = list(s.scalars(select(AlertEvent)))
        assert len(rows) == 2 * FACTS and {r.status for r in rows} == {"sent"}
        for receiver, name in ((hook, "hook"), (slack, "slack")):
            keys = {r.idempotency_key for r in rows if r.alert_name == name}
            by_key: dict[str, set[str]] = defaultdict(set)
            for req in receiver.received:
                body = json.loads(req.body)
                account = (body["data"]["account"]["name"] if name == "hook"
                           else body["blocks"][1]["text"]["text"])
                by_key[req.headers["idempotency-key"]].add(account)
            # Every fact arrived; duplicates carried their fact's one key.
            assert set(by_key) == keys and len(keys) == FACTS
            assert all(len(accounts) == 1 for accounts in by_key.values())
            assert len(receiver.received) > FACTS  # the in-flight ones came again
        assert all(verify(SECRET, dict(r.headers), r.body, time.time())
                   for r in hook.received)
        named = {json.loads(r.body)["data"]["account"]["name"] for r in hook.received}
        assert named == {f"Account {i}" for i in range(FACTS)}


def _all_sent(engine: Engine, expected: int) -> bool:
    with Session(engine) as s:
        statuses = list(s.scalars(select(AlertEvent.status)))
    return len(statuses) == expected and set(statuses) == {"sent"}
