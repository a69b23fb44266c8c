"""The weekly digest and the ops thresholds: queued once per period, with what they report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from alerts_support import ENV, Warehouse, make_config
from sqlalchemy.orm import Session

from schema.models import WritebackError
from sync.alerts.deliver import deliver_alerts
from sync.config import Config


def config(wh: Warehouse, **extra: object) -> Config:
    alert = {"name": "ops", "kind": "webhook", "webhook_url": "${HOOK_URL}",
             "secret": "${HOOK_SECRET}",
             "events": ["digest.weekly", "ops.dead_letters", "ops.api_budget"], **extra}
    # An unreachable receiver: queuing is what is tested here, and nothing is lost by it.
    return make_config(wh.engine, [alert], {**ENV, "HOOK_URL": "https://127.0.0.1:9/x"})


@dataclass
class Usage:
    daily_used: int
    daily_limit: int


@dataclass
class Crm:
    name: str
    used: int

    def usage(self) -> Usage:
        return Usage(self.used, 1000)


def test_weekly_digest_once_per_week_per_named_partner(wh: Warehouse) -> None:
    cfg = config(wh, digest_weekday="wednesday", digest_size=8)
    wh.partner("acme", "Acme Cloud")
    wh.partner("quiet", "Quiet", {p: "counts" for p in
                                  ("customer", "open_opportunity", "prospect")})
    for i in range(10):
        wh.account(f"A{i}", f"a{i}.example")
        wh.opportunity(f"O{i}", f"A{i}", amount=str(10000 * (i + 1)))
        wh.partner_account("acme", f"a{i}.example", "customer")
        wh.partner_account("quiet", f"a{i}.example", "customer")
    wh.tick(cfg)
    monday = wh.now  # T0 is a Monday: before the configured weekday
    deliver_alerts(wh.engine, cfg, now=monday, budget_s=0)
    assert wh.events(event="digest.weekly") == []
    wednesday = monday + timedelta(days=2)
    for _ in range(2):
        deliver_alerts(wh.engine, cfg, now=wednesday, budget_s=0)
    (digest,) = wh.events(event="digest.weekly")
    assert digest.fact_key == "digest.weekly:acme:2026-W10"
    rows = digest.payload["accounts"]
    assert len(rows) == 8  # digest_size; the counts-only partner has no digest
    assert [r["account"] for r in rows[:2]] == ["A9", "A8"]  # the largest pipelines first
    deliver_alerts(wh.engine, cfg, now=wednesday + timedelta(days=7), budget_s=0)
    assert [e.fact_key for e in wh.events(event="digest.weekly")] == [
        "digest.weekly:acme:2026-W10", "digest.weekly:acme:2026-W11"]


def test_ops_thresholds_once_a_day(wh: Warehouse) -> None:
    cfg = config(wh, dead_letters_threshold=2, api_budget_threshold=0.75)
    with Session(wh.engine) as s, s.begin():
        for i in range(2):
            s.add(WritebackError(source="salesforce", stream="accounts", external_id=f"X{i}",
                                 payload={}, status="pending", first_failed_at=wh.now,
                                 last_failed_at=wh.now, next_retry_at=wh.now))
    crms = [Crm("salesforce", 800), Crm("hubspot", 100)]
    for hours in (0, 5):
        deliver_alerts(wh.engine, cfg, now=wh.now + timedelta(hours=hours), connectors=crms,
                       budget_s=0)
    assert [e.payload["pending"] for e in wh.events(event="ops.dead_letters")] == [2]
    (budget,) = wh.events(event="ops.api_budget")
    assert budget.payload["source"] == "salesforce" and budget.payload["ratio"] == 0.8
    deliver_alerts(wh.engine, cfg, now=wh.now + timedelta(days=1), connectors=crms,
                   budget_s=0)
    assert len(wh.events(event="ops.dead_letters")) == 2
    assert len(wh.events(event="ops.api_budget")) == 2
