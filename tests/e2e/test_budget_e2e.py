"""When the API budget runs short, write-back goes first and reads wait."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from e2e_support import Env, make_env
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from schema.models import Account, Overlap
from schema.records import Stream
from sync.tick import TickOptions, run_tick


@pytest.fixture
def salesforce_only(tmp_path: Path, warehouse: Engine) -> Env:
    yield from make_env(tmp_path, warehouse, hubspot=False)


def test_short_budget_defers_reads_but_writes_new_overlaps(salesforce_only: Env) -> None:
    env = salesforce_only
    sf = env.world.salesforce
    assert sf is not None
    run_tick(env.engine, env.config, env.connectors,
             options=TickOptions(backfill=True, kind="backfill"))
    with Session(env.engine) as s:
        lonely = s.execute(
            select(Account.external_id, Account.domain_key).where(
                Account.domain_key.is_not(None), Account.is_deleted.is_(False),
                ~Account.id.in_(select(Overlap.account_id))).order_by(Account.external_id)
        ).first()
    assert lonely is not None
    # The partner now lists that account as a customer: its fields must be written.
    partner = env.world.seed.partners[0]
    path = env.world.partner_files[partner.id]
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh))
    with path.open("a", newline="", encoding="utf-8") as fh:
        row = {"external_id": "NEW-1", "name": "Budget Test Co", "domain": lonely[1],
               "population": "customer", "owner_name": "", "owner_email": ""}
        csv.writer(fh).writerow([row.get(col, "") for col in header])
    env.world.advance_clocks(1)
    # The org is near ecosync's share (50% of 1,000 calls a day): reads stop early.
    sf.daily_limit = 1_000
    sf.api_usage = 460
    report = run_tick(env.engine, env.config, env.connectors)
    assert report.counts.of("salesforce", Stream.ACCOUNTS).reads_deferred == 1
    assert report.counts.of("salesforce", Stream.OPPORTUNITIES).pulled == 0  # never read
    record = sf.get("Account", lonely[0]) or {}
    assert partner.name in (record.get("Ecosystem_Partners__c") or "") or (
        partner.share.get("customer") == "counts" and record.get("Ecosystem_Overlap_Count__c"))
    assert sf.api_usage <= 500, "ecosync stayed within its share of the daily allocation"
