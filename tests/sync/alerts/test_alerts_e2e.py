"""Through the real tick and the Salesforce emulator: history is not announced, a new open
opportunity on a partner's account is, once; a dry run sends nothing."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

from alerts_support import SECRET, alerts_toml, crm_env, receivers, verify, wall
from sqlalchemy import Engine, exists, select
from sqlalchemy.orm import Session

from schema.models import Account, Opportunity, Overlap, Partner
from sync.config import parse_config
from sync.sharing import NAMED, share_level
from sync.tick import TickOptions, run_tick


def test_tick_announces_a_new_open_opportunity_once(tmp_path: Path, warehouse: Engine) -> None:
    with receivers(tmp_path, ("ok", False)) as ((hook,), ca):
        for env in crm_env(tmp_path, warehouse, accounts=120, opportunities=160):
            text = env.world.config_toml(warehouse.url.render_as_string(hide_password=False))
            text += "\n" + alerts_toml([{
                "name": "hook", "kind": "webhook", "webhook_url": "${HOOK_URL}",
                "secret": "${HOOK_SECRET}", "ca_bundle": str(ca),
                "events": ["overlap.new_on_open_opportunity"]}])
            config = parse_config(tomllib.loads(text), "<e2e>", {
                **env.world.env(), "HOOK_URL": hook.url, "HOOK_SECRET": SECRET})
            run_tick(env.engine, config, env.connectors,
                     options=TickOptions(backfill=True, kind="backfill"))
            env.world.advance_clocks(1)  # whole Salesforce seconds: let the backfill's pass
            run_tick(env.engine, config, env.connectors)
            assert hook.received == []  # everything so far is history

            with Session(env.engine) as s:
                target = s.execute(
                    select(Account.external_id, Partner.name, Partner.share, Overlap.population)
                    .join(Overlap, Overlap.account_id == Account.id)
                    .join(Partner, Partner.id == Overlap.partner_id)
                    .where(Overlap.ended_at.is_(None), ~exists().where(
                        Opportunity.account_external_id == Account.external_id,
                        Opportunity.status == "open"))
                    .order_by(Account.id)).all()
            account, partner = next((a, p) for a, p, share, pop in target
                                    if share_level(share, pop) in NAMED)
            assert env.world.salesforce is not None
            env.world.salesforce.load("Opportunity", [{
                "Name": "Joint deal", "AccountId": account, "StageName": "Qualification",
                "IsClosed": False, "IsWon": False, "Amount": 42000.0,
                "CloseDate": date(2026, 12, 31),
                "CreatedDate": datetime.now(UTC)}])
            env.world.advance_clocks(1)
            dry = run_tick(env.engine, config, env.connectors,
                           options=TickOptions(dry_run=True))
            assert dry.status == "succeeded" and hook.received == []
            report = run_tick(env.engine, config, env.connectors)
            events = report.counts.tick
            assert events["alerts_queued"] >= 1 and events["alerts_sent"] >= 1
            mine = [json.loads(r.body) for r in hook.received]
            assert {m["data"]["account"]["external_id"] for m in mine} == {account}
            assert partner in {m["data"]["partner"]["name"] for m in mine if m["data"]["partner"]}
            assert all(verify(SECRET, dict(r.headers), r.body, wall()) for r in hook.received)
            before = len(hook.received)
            env.world.advance_clocks(1)
            run_tick(env.engine, config, env.connectors)
            assert len(hook.received) == before  # once per fact
