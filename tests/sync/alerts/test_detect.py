"""Facts the tick produced become outbox rows once each, for the alerts that want them."""

from __future__ import annotations

from alerts_support import ENV, Warehouse, make_config

from sync.config import Config
from sync.config.alerts import EventKind

ALL_OVERLAP = [EventKind.NEW_ON_OPEN_OPPORTUNITY.value,
               EventKind.PARTNER_CUSTOMER_ON_PROSPECT.value,
               EventKind.CLOSED_WITH_PARTNER.value]


def config(wh: Warehouse, **extra: object) -> Config:
    alert = {"name": "hook", "kind": "webhook", "webhook_url": "${HOOK_URL}",
             "secret": "${HOOK_SECRET}", "events": ALL_OVERLAP, **extra}
    return make_config(wh.engine, [alert], {**ENV, "HOOK_URL": "https://127.0.0.1:9/x"})


def armed(wh: Warehouse, cfg: Config) -> None:
    """Alerts switched on over an empty warehouse: the first detection is the baseline."""
    assert wh.tick(cfg).queued == 0


def test_history_is_baseline_and_never_announced(wh: Warehouse) -> None:
    cfg = config(wh)
    wh.partner("acme", "Acme Cloud")
    wh.account("A1", "one.example")
    wh.partner_account("acme", "one.example", "customer")
    wh.opportunity("O1", "A1")
    stats = wh.tick(cfg)
    assert stats.queued == 0 and stats.baseline >= 1
    # The account changes again later (a CRM edit flags it): still history, not news.
    wh.tick_time(days=1)
    wh.opportunity("O2", "A1")
    assert wh.tick(cfg).queued == 0
    assert wh.events() == []


def test_new_overlap_on_open_opportunity_is_queued_once(wh: Warehouse) -> None:
    cfg = config(wh)
    armed(wh, cfg)
    wh.partner("acme", "Acme Cloud")
    wh.account("A1", "one.example")
    wh.opportunity("O1", "A1", amount="120000")
    wh.tick_time(days=1)
    wh.partner_account("acme", "one.example", "customer")
    wh.tick(cfg)
    events = wh.events(event=EventKind.NEW_ON_OPEN_OPPORTUNITY.value)
    assert len(events) == 1
    payload = events[0].payload
    assert payload["partner"]["id"] == "acme" and payload["partner"]["population"] == "customer"
    assert payload["open_pipeline"]["amount"] == "120000.00"
    assert payload["opportunities"][0]["external_id"] == "O1"
    # The same account flagged again, and a re-run of the detection: no second event.
    wh.tick_time(minutes=5)
    wh.opportunity("O3", "A1")
    wh.tick(cfg)
    assert len(wh.events(event=EventKind.NEW_ON_OPEN_OPPORTUNITY.value)) == 1


def test_open_opportunity_arriving_after_the_overlap_is_news_too(wh: Warehouse) -> None:
    cfg = config(wh)
    armed(wh, cfg)
    wh.partner("acme", "Acme Cloud")
    wh.account("A1", "one.example")
    wh.partner_account("acme", "one.example", "open_opportunity")
    wh.tick(cfg)
    assert wh.events(event=EventKind.NEW_ON_OPEN_OPPORTUNITY.value) == []
    wh.tick_time(days=2)
    wh.opportunity("O1", "A1")
    wh.tick(cfg)
    assert len(wh.events(event=EventKind.NEW_ON_OPEN_OPPORTUNITY.value)) == 1


def test_partner_customer_on_our_prospect(wh: Warehouse) -> None:
    cfg = config(wh)
    armed(wh, cfg)
    wh.partner("acme", "Acme Cloud")
    wh.account("P1", "prospect.example")
    wh.account("C1", "customer.example", account_type="Customer - Direct")
    wh.partner_account("acme", "prospect.example", "customer")
    wh.partner_account("acme", "customer.example", "customer")
    wh.tick(cfg)
    events = wh.events(event=EventKind.PARTNER_CUSTOMER_ON_PROSPECT.value)
    assert [e.payload["account"]["external_id"] for e in events] == ["P1"]


def test_closed_with_partner_queued_once_per_close(wh: Warehouse) -> None:
    cfg = config(wh)
    armed(wh, cfg)
    wh.partner("acme", "Acme Cloud")
    wh.account("A1", "one.example")
    wh.partner_account("acme", "one.example", "customer")
    wh.opportunity("O1", "A1", amount="80000")
    wh.tick(cfg)
    wh.tick_time(days=3)
    wh.close("O1", "won")
    wh.tick(cfg)
    closed = wh.events(event=EventKind.CLOSED_WITH_PARTNER.value)
    assert len(closed) == 1
    stamp = closed[0].payload["stamp"]
    assert stamp["outcome"] == "won" and stamp["corporate_amount"] == "80000.00"
    assert [(c["partner_id"], c["kind"]) for c in closed[0].payload["credits"]] == [
        ("acme", "influenced")]
    wh.tick_time(minutes=1)
    wh.close("O1", "won")  # the same close landed again
    wh.tick(cfg)
    assert len(wh.events(event=EventKind.CLOSED_WITH_PARTNER.value)) == 1


def test_hidden_partner_facts_are_never_queued(wh: Warehouse) -> None:
    cfg = config(wh)
    armed(wh, cfg)
    wh.partner("ghost", "Ghost Partner",
               {"customer": "hidden", "open_opportunity": "hidden", "prospect": "hidden"})
    wh.account("A1", "one.example")
    wh.opportunity("O1", "A1")
    wh.partner_account("ghost", "one.example", "customer")
    wh.account("P1", "p.example")
    wh.partner_account("ghost", "p.example", "customer")
    wh.tick(cfg)
    assert wh.events() == []


def test_filters_partner_owner_and_minimum_amount(wh: Warehouse) -> None:
    hooks = [
        {"name": "big", "min_amount": 100000.0},
        {"name": "mine", "owners": ["005ME"]},
        {"name": "beta-only", "partners": ["beta"]},
    ]
    alerts = [{"kind": "webhook", "webhook_url": "${HOOK_URL}", "secret": "${HOOK_SECRET}",
               "events": ALL_OVERLAP, **h} for h in hooks]
    partners = "\n".join(
        f'[[partners]]\nid = "{p}"\nname = "{p.title()}"\nsource = "manual"\n'
        for p in ("acme", "beta"))
    cfg = make_config(wh.engine, alerts, {**ENV, "HOOK_URL": "https://127.0.0.1:9/x"},
                      partners)
    armed(wh, cfg)
    wh.partner("acme", "Acme")
    wh.partner("beta", "Beta")
    wh.account("SMALL", "small.example", owner="005ME")
    wh.opportunity("O1", "SMALL", amount="20000")
    wh.account("LARGE", "large.example", owner="005OTHER")
    wh.opportunity("O2", "LARGE", amount="250000", currency="EUR")
    wh.partner_account("acme", "small.example", "customer")
    wh.account("HUGE", "huge.example", owner="005OTHER")
    wh.opportunity("O3", "HUGE", amount="150000")
    wh.partner_account("beta", "large.example", "customer")
    wh.partner_account("acme", "huge.example", "customer")
    wh.tick(cfg)
    got = {(e.alert_name, e.payload["account"]["external_id"]) for e in wh.events()}
    # EUR has no rate configured: its amount is unknown, so not above the minimum.
    assert got == {("mine", "SMALL"), ("beta-only", "LARGE"), ("big", "HUGE")}
