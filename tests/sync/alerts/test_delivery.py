"""Delivery over real HTTPS (trustme): signed webhooks, Slack Block Kit, at least once with a
stable idempotency key, retries with backoff, and receivers that fail or hang."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from alerts_support import ENV, SECRET, Clock, Warehouse, make_config, receivers, verify, wall

from sync.alerts.deliver import IN_STAGE_ATTEMPTS, deliver_alerts
from sync.config import Config
from sync.config.alerts import EventKind

NEW = EventKind.NEW_ON_OPEN_OPPORTUNITY.value


def two_alerts(wh: Warehouse, hook_url: str, slack_url: str, ca: Path,
               **hook: object) -> Config:
    alerts = [
        {"name": "hook", "kind": "webhook", "webhook_url": "${HOOK_URL}",
         "secret": "${HOOK_SECRET}", "ca_bundle": str(ca), "events": [NEW], **hook},
        {"name": "slack", "kind": "slack", "webhook_url": "${SLACK_URL}",
         "ca_bundle": str(ca), "events": [NEW]},
    ]
    return make_config(wh.engine, alerts, {**ENV, "HOOK_URL": hook_url, "SLACK_URL": slack_url})


def one_fact(wh: Warehouse, cfg: Config) -> None:
    assert wh.tick(cfg).queued == 0  # baseline
    wh.partner("acme", "Acme <!channel> Cloud")
    wh.account("A1", "one.example", name="Initech")
    wh.opportunity("O1", "A1", amount="120000")
    wh.partner_account("acme", "one.example", "customer")
    assert wh.tick(cfg).queued == 2


def test_signed_webhook_and_slack_block_kit_each_delivered_once(
        wh: Warehouse, tmp_path: Path) -> None:
    with receivers(tmp_path, ("ok", False), ("ok", True)) as ((hook, slack), ca):
        cfg = two_alerts(wh, hook.url, slack.url, ca)
        one_fact(wh, cfg)
        clock = Clock()
        stats = deliver_alerts(wh.engine, cfg, now=wh.now, clock=clock, sleep=clock.sleep)
        assert stats.sent == 2
        # A second stage (the next tick) sends nothing again.
        assert deliver_alerts(wh.engine, cfg, now=wh.now, clock=clock,
                              sleep=clock.sleep).sent == 0

        (req,) = hook.received
        assert verify(SECRET, dict(req.headers), req.body, wall())
        assert not verify("another-secret", dict(req.headers), req.body, wall())
        assert not verify(SECRET, dict(req.headers), req.body + b" ", wall())
        assert not verify(SECRET, dict(req.headers), req.body, wall() + 301)  # a replay
        body = json.loads(req.body)
        assert body["id"] == req.headers["idempotency-key"]
        assert body["event"] == NEW and body["alert"] == "hook"
        assert body["data"]["partner"]["name"] == "Acme <!channel> Cloud"
        assert body["data"]["partner"]["population"] == "customer"
        assert body["data"]["partner"]["contact"] == "Pat Partner <pat@partner.example> " \
                                                     "(Acme <!channel> Cloud)"
        assert body["data"]["open_pipeline"]["amount"] == "120000.00"

        (sreq,) = slack.received
        blocks = json.loads(sreq.body)["blocks"]
        assert [b["type"] for b in blocks] == ["header", "section", "context"]
        text = blocks[1]["text"]["text"]
        assert "Initech (one.example)" in text and "120,000 USD" in text
        # A partner-supplied name cannot become a Slack mention.
        assert "<!channel>" not in sreq.body.decode() and "&lt;!channel&gt;" in text
        assert sreq.headers["idempotency-key"] != req.headers["idempotency-key"]
        statuses = {e.alert_name: (e.status, e.attempts) for e in wh.events()}
        assert statuses == {"hook": ("sent", 1), "slack": ("sent", 1)}


def test_failing_receiver_is_retried_with_backoff_and_the_same_key(
        wh: Warehouse, tmp_path: Path) -> None:
    with receivers(tmp_path, ("fail", False), ("ok", True)) as ((hook, slack), ca):
        cfg = two_alerts(wh, hook.url, slack.url, ca, max_attempts=6)
        one_fact(wh, cfg)
        clock = Clock()
        stats = deliver_alerts(wh.engine, cfg, now=wh.now, clock=clock, sleep=clock.sleep)
        # The failing receiver does not stop the other alert.
        assert stats.sent == 1 and len(slack.received) == 1
        assert len(hook.received) == IN_STAGE_ATTEMPTS
        assert clock.slept == sorted(clock.slept) and len(clock.slept) == IN_STAGE_ATTEMPTS - 1
        (event,) = wh.events(alert_name="hook")
        assert event.status == "pending" and event.attempts == IN_STAGE_ATTEMPTS
        assert event.last_error is not None and event.last_error.startswith("HTTP 500")
        assert event.next_attempt_at > wh.now

        # Not due yet: the next tick leaves it alone.
        deliver_alerts(wh.engine, cfg, now=wh.now + timedelta(seconds=5), clock=clock,
                       sleep=clock.sleep)
        assert len(hook.received) == IN_STAGE_ATTEMPTS
        # The receiver recovers; once due, it gets the event with the very same key.
        hook.mode = "ok"
        later = event.next_attempt_at + timedelta(seconds=1)
        assert deliver_alerts(wh.engine, cfg, now=later, clock=clock,
                              sleep=clock.sleep).sent == 1
        assert set(hook.keys()) == {event.idempotency_key}
        (event,) = wh.events(alert_name="hook")
        assert event.status == "sent" and event.attempts == IN_STAGE_ATTEMPTS + 1


def test_gives_up_after_max_attempts(wh: Warehouse, tmp_path: Path) -> None:
    with receivers(tmp_path, ("fail", False), ("ok", True)) as ((hook, slack), ca):
        cfg = two_alerts(wh, hook.url, slack.url, ca, max_attempts=4)
        one_fact(wh, cfg)
        clock = Clock()
        when = wh.now
        for _ in range(3):
            deliver_alerts(wh.engine, cfg, now=when, clock=clock, sleep=clock.sleep)
            when += timedelta(days=1)
        (event,) = wh.events(alert_name="hook")
        assert event.status == "failed" and event.attempts >= 4
        assert len(hook.received) == event.attempts


def test_hanging_receiver_is_cut_by_the_timeout_and_blocks_no_other(
        wh: Warehouse, tmp_path: Path) -> None:
    with receivers(tmp_path, ("hang", False), ("ok", True)) as ((hook, slack), ca):
        cfg = two_alerts(wh, hook.url, slack.url, ca, timeout_seconds=0.3)
        one_fact(wh, cfg)
        # A second fact for the hanging alert: it must not be tried in this tick.
        wh.account("A2", "two.example")
        wh.opportunity("O2", "A2")
        wh.partner_account("acme", "two.example", "prospect")
        wh.tick(cfg)
        clock = Clock()
        stats = deliver_alerts(wh.engine, cfg, now=wh.now, clock=clock, sleep=clock.sleep)
        assert len(slack.received) == 2 and stats.sent == 2
        assert len(hook.received) == 1  # one attempt, cut by its timeout; no in-stage retry
        hung = [e for e in wh.events(alert_name="hook") if e.attempts]
        assert len(hung) == 1 and hung[0].status == "pending"
        assert hung[0].last_error == "timed out after 0.3 s"
        untouched = [e for e in wh.events(alert_name="hook") if not e.attempts]
        assert len(untouched) == 1 and untouched[0].status == "pending"
        # The receiver backs off as a whole: the next tick pays no timeout for the other one.
        assert untouched[0].next_attempt_at == hung[0].next_attempt_at > wh.now
        deliver_alerts(wh.engine, cfg, now=wh.now, clock=clock, sleep=clock.sleep)
        assert len(hook.received) == 1


def test_stage_budget_bounds_a_backlog(wh: Warehouse, tmp_path: Path) -> None:
    """Once the stage's time is spent no request starts; the rest waits, none is lost."""
    with receivers(tmp_path, ("ok", False), ("ok", True)) as ((hook, slack), ca):
        cfg = two_alerts(wh, hook.url, slack.url, ca)
        one_fact(wh, cfg)
        clock = Clock()
        stats = deliver_alerts(wh.engine, cfg, now=wh.now, clock=clock, sleep=clock.sleep,
                               budget_s=0)
        assert stats.sent == 0 and hook.received == [] and slack.received == []
        assert {e.status for e in wh.events()} == {"pending"}
        assert deliver_alerts(wh.engine, cfg, now=wh.now, clock=clock,
                              sleep=clock.sleep).sent == 2
