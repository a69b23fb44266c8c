"""An alert receiver that answers an error quoting the path it was sent to (the credential
of a Slack-style webhook URL): the stored `last_error` and the log lines do not carry it."""

from __future__ import annotations

import uuid
from pathlib import Path

from alerts_support import ENV, Clock, Warehouse, make_config
from reliability_support import captured_logs
from sqlalchemy import Engine

from sandbox.common import HttpsServer, Request, Response, Traffic, make_tls
from sync.alerts.deliver import deliver_alerts
from sync.config.alerts import EventKind
from sync.logs import MASKER

NEW = EventKind.NEW_ON_OPEN_OPPORTUNITY.value


def _echo(request: Request) -> Response:
    return Response(500, f"no route for POST {request.path}".encode())


def test_an_echoing_receiver_leaves_no_credential_in_the_outbox(
    warehouse: Engine, tmp_path: Path,
) -> None:
    tls = make_tls(tmp_path / "tls")
    server = HttpsServer(_echo, Traffic(), tls).start()
    try:
        token = f"/services/T0SEC/B0SEC/{uuid.uuid4().hex}"
        wh = Warehouse(warehouse)
        cfg = make_config(warehouse, [{
            "name": "hook", "kind": "webhook", "webhook_url": "${HOOK_URL}",
            "secret": "${HOOK_SECRET}", "ca_bundle": str(tls.ca_file), "events": [NEW],
        }], {**ENV, "HOOK_URL": server.url + token})
        MASKER.clear()
        MASKER.add(cfg.secrets())  # what the CLI feeds it from the loaded config
        assert wh.tick(cfg).queued == 0
        wh.partner("acme", "Acme Cloud")
        wh.account("A1", "one.example", name="Initech")
        wh.opportunity("O1", "A1", amount="120000")
        wh.partner_account("acme", "one.example", "customer")
        assert wh.tick(cfg).queued == 1
        clock = Clock()
        with captured_logs() as cap:
            deliver_alerts(warehouse, cfg, now=wh.now, clock=clock, sleep=clock.sleep)
    finally:
        server.stop()
    (event,) = wh.events(alert_name="hook")
    assert event.last_error is not None and event.last_error.startswith("HTTP 500")
    assert "no route for POST ***" in event.last_error, event.last_error
    for text in (event.last_error, cap.text()):
        assert token not in text and "T0SEC" not in text
