"""Every delivered body goes through sync.sharing: a `counts` partner is never named, a
`hidden` one never counted, an owner only where shared in full (a scan of every body that
reached the receivers, and of `ecosync alerts list`)."""

from __future__ import annotations

import json
from pathlib import Path

from alerts_support import ENV, Clock, Warehouse, make_config, receivers

from sync.alerts.deliver import deliver_alerts
from sync.commands.alerts import list_events
from sync.config.alerts import SUBSCRIBABLE
from sync.context import AppContext

FULL = {"customer": "full", "open_opportunity": "full", "prospect": "full"}
POLICIES = {
    "fulla": ("Fulla Partners", FULL),
    "namesy": ("Namesy Corp", {p: "names" for p in FULL}),
    "countia": ("Countia Ltd", {p: "counts" for p in FULL}),
    "hiddenly": ("Hiddenly Inc", {p: "hidden" for p in FULL}),
    # Named for its customers, counts-only for its prospects.
    "mixta": ("Mixta Group", {"customer": "names", "open_opportunity": "names",
                              "prospect": "counts"}),
}
NEVER = ("Countia", "countia", "Hiddenly", "hiddenly", "Owner Hidden", "hidden@",
         "Owner Namesy", "namesy@", "Owner Countia", "countia@")


def test_no_body_names_a_counts_partner_or_counts_a_hidden_one(
        wh: Warehouse, tmp_path: Path) -> None:
    with receivers(tmp_path, ("ok", False), ("ok", True)) as ((hook, slack), ca):
        alerts = [
            {"name": "hook", "kind": "webhook", "webhook_url": "${HOOK_URL}",
             "secret": "${HOOK_SECRET}", "ca_bundle": str(ca), "events": list(SUBSCRIBABLE),
             "dead_letters_threshold": 1},
            {"name": "slack", "kind": "slack", "webhook_url": "${SLACK_URL}",
             "ca_bundle": str(ca), "events": list(SUBSCRIBABLE)},
        ]
        partners = "".join(
            f'[[partners]]\nid = "{pid}"\nname = "{name}"\nsource = "manual"\n'
            f"share = {json.dumps(share).replace(':', ' =')}\n\n"
            for pid, (name, share) in POLICIES.items())
        cfg = make_config(wh.engine, alerts,
                          {**ENV, "HOOK_URL": hook.url, "SLACK_URL": slack.url}, partners)
        assert wh.tick(cfg).queued == 0
        for pid, (name, share) in POLICIES.items():
            wh.partner(pid, name, share)
        # Each partner alone on an open-opportunity account, on a prospect, and credited on
        # a close; then all of them together on one account.
        # Our own names carry a number, never the partner's: the scan looks for partners.
        for i, pid in enumerate(POLICIES):
            owner = f"Owner {pid.title()}"
            wh.account(f"OPEN-{i}", f"open-{i}.example", name=f"Open {i}")
            wh.opportunity(f"O-{i}", f"OPEN-{i}")
            wh.partner_account(pid, f"open-{i}.example", "customer", owner_name=owner,
                               owner_email=f"{pid}@partner.example")
            wh.account(f"PROS-{i}", f"pros-{i}.example", name=f"Prospect {i}")
            wh.partner_account(pid, f"pros-{i}.example", "customer", owner_name=owner,
                               owner_email=f"{pid}@partner.example")
            wh.account(f"MIXP-{i}", f"mixp-{i}.example", name=f"Mixed {i}")
            wh.opportunity(f"OM-{i}", f"MIXP-{i}")
            wh.partner_account(pid, f"mixp-{i}.example", "prospect", owner_name=owner,
                               owner_email=f"{pid}@partner.example")
        wh.account("ALL", "all.example", name="Everyone")
        wh.opportunity("O-ALL", "ALL", amount="90000")
        for pid in POLICIES:
            wh.partner_account(pid, "all.example", "customer")
        wh.tick(cfg)
        wh.tick_time(days=1)
        for i in range(len(POLICIES)):
            wh.close(f"O-{i}")
        wh.close("O-ALL")
        wh.tick(cfg)
        clock = Clock()
        deliver_alerts(wh.engine, cfg, now=wh.now, clock=clock, sleep=clock.sleep)

        bodies = [r.body.decode() for r in hook.received + slack.received]
        events = {json.loads(b)["event"] for b in (r.body.decode() for r in hook.received)}
        assert events >= {"overlap.new_on_open_opportunity", "digest.weekly",
                          "overlap.partner_customer_on_prospect",
                          "opportunity.closed_with_partner"}
        for body in bodies:
            for word in NEVER:
                assert word not in body, (word, body[:500])
        hook_data = [json.loads(r.body)["data"] for r in hook.received]
        # Accounts only a hidden partner overlaps were never the subject of a message.
        hidden = list(POLICIES).index("hiddenly")
        for body in bodies:
            for ours in (f"Open {hidden}", f"Prospect {hidden}", f"Mixed {hidden}"):
                assert ours not in body
        # A counts partner appears as a count only; the hidden one never adds to it.
        opened = [d for d in hook_data if d.get("open_pipeline") is not None]
        counted = [d for d in opened if d["partner"] is None]
        counts, mixta = list(POLICIES).index("countia"), list(POLICIES).index("mixta")
        assert {d["account"]["name"] for d in counted} == {
            f"Open {counts}", f"Mixed {counts}", f"Mixed {mixta}", "Everyone"}
        closed = [d for d in hook_data if d.get("outcome")]
        everyone = next(d for d in closed if d["account"]["name"] == "Everyone")
        assert {p["name"] for p in everyone["partners"]} == {
            "Fulla Partners", "Namesy Corp", "Mixta Group"}
        assert everyone["partners_sharing_counts_only"]["count"] == 1
        # Owners only at the full level; the prospect list only for named partners.
        contacts = {d["partner"]["contact"] for d in hook_data
                    if d.get("partner") and "contact" in d["partner"]}
        assert contacts == {None, "Owner Fulla <fulla@partner.example> (Fulla Partners)",
                            "Pat Partner <pat@partner.example> (Fulla Partners)"}
        digests = [d for d in hook_data if "week" in d]
        assert {d["partner"]["name"] for d in digests} == {
            "Fulla Partners", "Namesy Corp", "Mixta Group"}
        for d in digests:
            if d["partner"]["name"] != "Fulla Partners":
                assert all(r["contact"] is None for r in d["accounts"])

        listed = json.dumps(list_events(AppContext(cfg), None, 500), default=str)
        for word in NEVER:
            assert word not in listed
