"""Pulling through the real client from the emulator, asserting warehouse rows and API calls."""

from __future__ import annotations

import math
from collections.abc import Generator
from datetime import datetime, timedelta

import pytest
from hs_support import T0, companies, connector_for, deals, endpoint_calls, land_all
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.base import Page, Watermark
from connectors.hubspot import HubSpotConnector
from sandbox.hubspot import HubSpotSandbox
from schema.models import Account, Opportunity
from schema.records import AccountRecord, OpportunityRecord, OpportunityStatus, Stream
from sync.audit import audit
from sync.ingest import read_watermark

LIST_COMPANIES = "GET /crm/v3/objects/companies"
SEARCH_DEALS = "POST /crm/v3/objects/deals/search"
SEARCH_COMPANIES = "POST /crm/v3/objects/companies/search"
ASSOCIATIONS = "POST /crm/v4/associations/deals/"


def _rows(engine: Engine, model: type[Account] | type[Opportunity]) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_given_5000_companies_when_backfilling_then_50_list_pages_land_with_one_final_watermark(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine
) -> None:
    ids = sandbox.load("companies", companies(5000))
    until = sandbox.clock.now()

    pages = land_all(warehouse, "hubspot",
                     connector.pull(Stream.ACCOUNTS, None, until, deleted=False))

    assert sandbox.traffic.calls[LIST_COMPANIES] == math.ceil(5000 / 100)
    assert sandbox.traffic.total() == 50  # nothing else: no properties read, no search
    assert max(len(p.records) for p in pages) == 100  # bounded memory: one list page
    assert [p.watermark for p in pages[:-1]] == [None] * (len(pages) - 1)
    assert pages[-1].watermark == Watermark(until, "")
    assert _rows(warehouse, Account) == 5000
    with Session(warehouse) as session:
        assert read_watermark(session, "hubspot", Stream.ACCOUNTS) == Watermark(until, "")
        row = session.execute(select(Account).where(Account.external_id == ids[7])).scalar_one()
        assert (row.name, row.website, row.account_type) == (
            "Company 7", "company7.example.com", "lead")
    assert connector.usage().calls == sandbox.traffic.total()


def test_given_a_backfill_killed_midway_when_it_runs_again_then_nothing_is_skipped(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine
) -> None:
    sandbox.load("companies", companies(1000))
    until = sandbox.clock.now()
    pulled = connector.pull(Stream.ACCOUNTS, None, until)
    land_all(warehouse, "hubspot", (next(pulled) for _ in range(4)))  # then the kill
    assert isinstance(pulled, Generator)
    pulled.close()
    with Session(warehouse) as session:
        # Nothing in the warehouse claims the walk got anywhere: the restart is a backfill.
        assert read_watermark(session, "hubspot", Stream.ACCOUNTS) is None

    land_all(warehouse, "hubspot", connector.pull(Stream.ACCOUNTS, None, until))

    assert _rows(warehouse, Account) == 1000


def _load_changed_deals(sandbox: HubSpotSandbox, n: int, per_instant: int) -> list[str]:
    """n deals modified after T0, ``per_instant`` of them sharing each millisecond."""
    rows = []
    for i, row in enumerate(deals(n)):
        stamp = T0 + timedelta(seconds=1 + i // per_instant)
        rows.append({**row, "createdate": stamp, "hs_lastmodifieddate": stamp})
    return sandbox.load("deals", rows)


@pytest.mark.slow  # 25,000 deals through 125 search pages: ~10 s of real work
def test_given_25000_changed_deals_when_pulling_incrementally_then_each_lands_once_past_10k(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine
) -> None:
    # 500 deals untouched since yesterday, then 25,000 changes in ties of 150 per instant,
    # so each 10,000-result boundary falls inside a group sharing one hs_lastmodifieddate.
    old = [{**row, "createdate": T0 - timedelta(days=1),
            "hs_lastmodifieddate": T0 - timedelta(days=1)} for row in deals(500)]
    old_ids = sandbox.load("deals", old)
    changed = _load_changed_deals(sandbox, 25_000, per_instant=150)
    cids = sandbox.load("companies", companies(50))
    for i, deal_id in enumerate(changed):
        sandbox.associate(deal_id, cids[i % 50])
    until = T0 + timedelta(hours=1)

    pages = land_all(warehouse, "hubspot",
                     connector.pull(Stream.OPPORTUNITIES, Watermark(T0), until))

    pulled = [r.external_id for p in pages for r in p.records]
    assert len(pulled) == len(set(pulled)) == 25_000  # nothing duplicated
    assert set(pulled) == set(changed)  # nothing missed, nothing older than the lookback
    assert not set(pulled) & set(old_ids)
    searches = sandbox.traffic.calls[SEARCH_DEALS]
    assert math.ceil(25_000 / 200) <= searches <= math.ceil(25_000 / 200) + 3
    # Search results carry no associations: one v4 batch read per 1,000 deals, not per page.
    associations = endpoint_calls(sandbox, ASSOCIATIONS)
    assert math.ceil(25_000 / 1_000) <= associations <= math.ceil(25_000 / 1_000) + 2
    marks = [p.watermark for p in pages if p.watermark is not None]
    assert marks == sorted(marks, key=lambda m: (m.modified_at, int(m.last_id)))
    assert marks[-1] == Watermark(T0 + timedelta(seconds=1 + 24_999 // 150), changed[-1])
    assert _rows(warehouse, Opportunity) == 25_000
    with Session(warehouse) as session:
        assert read_watermark(session, "hubspot", Stream.OPPORTUNITIES) == marks[-1]
        linked = session.execute(
            select(Opportunity.account_external_id).where(Opportunity.external_id == changed[51])
        ).scalar_one()
    assert linked == cids[1]


def test_given_more_than_10000_changes_in_one_millisecond_when_pulling_then_all_arrive_once(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    # A bulk import: 10,050 companies share one hs_lastmodifieddate; offset paging alone
    # cannot pass them, re-windowing on the time alone would loop.
    stamp = T0 + timedelta(seconds=5)
    rows = [{**row, "hs_lastmodifieddate": stamp} for row in companies(10_050)]
    ids = sandbox.load("companies", rows)
    later = sandbox.load("companies", [{**row, "hs_lastmodifieddate": stamp + timedelta(1)}
                                       for row in companies(10, start=20_000)])

    pages = list(connector.pull(Stream.ACCOUNTS, Watermark(T0), T0 + timedelta(days=2),
                                deleted=False))

    pulled = [r.external_id for p in pages for r in p.records]
    assert len(pulled) == len(set(pulled)) == 10_060
    assert set(pulled) == set(ids) | set(later)


def test_given_a_watermark_when_pulling_then_only_the_window_with_its_lookback_is_read(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    at = {m: T0 + timedelta(minutes=m) for m in (0, 10, 17, 30, 61)}
    ids = {m: sandbox.load("companies", [{"name": f"at {m}", "hs_lastmodifieddate": t}])[0]
           for m, t in at.items()}
    since = Watermark(T0 + timedelta(minutes=20), ids[17])

    pages = list(connector.pull(Stream.ACCOUNTS, since, T0 + timedelta(minutes=60),
                                deleted=False))

    # [20 min − 5 min lookback, 60 min): 17 and 30; not 10 (too old) nor 61 (the tick's future).
    assert [r.external_id for p in pages for r in p.records] == [ids[17], ids[30]]
    assert pages[-1].watermark == Watermark(at[30], ids[30])
    assert sandbox.traffic.calls[SEARCH_COMPANIES] == 1


def test_given_a_backfilled_portal_when_auditing_then_later_creations_are_no_false_alarm(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine
) -> None:
    ids = sandbox.load("companies", companies(12))
    land_all(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, T0))
    sandbox.clock.advance(60)
    sandbox.archive("companies", ids[0])
    sandbox.load("companies", companies(2, start=12))  # created after the watermark

    with Session(warehouse) as session:
        found = {a.stream: a for a in audit(session, connector)}
    assert connector.count(Stream.ACCOUNTS) == 13
    assert (found[Stream.ACCOUNTS].crm, found[Stream.ACCOUNTS].warehouse) == (11, 12)
    assert found[Stream.OPPORTUNITIES].ok


def test_given_archived_records_when_pulling_then_they_land_soft_deleted(
    sandbox: HubSpotSandbox, connector: HubSpotConnector, warehouse: Engine
) -> None:
    ids = sandbox.load("companies", companies(300))
    for company_id in ids[:5]:
        sandbox.archive("companies", company_id)
    sandbox.clock.advance(3600)
    backfill = land_all(warehouse, "hubspot",
                        connector.pull(Stream.ACCOUNTS, None, sandbox.clock.now()))
    assert sum(r.is_deleted for p in backfill for r in p.records) == 5

    sandbox.clock.advance(3600)
    for company_id in ids[10:13]:
        sandbox.archive("companies", company_id)
    sandbox.clock.advance(60)
    with Session(warehouse) as session:
        since = read_watermark(session, "hubspot", Stream.ACCOUNTS)
    # Archived an hour before the backfill, hence before the window: not pulled again.
    pages = land_all(warehouse, "hubspot",
                     connector.pull(Stream.ACCOUNTS, since, sandbox.clock.now()),
                     now=sandbox.clock.now)

    deleted = [r for p in pages for r in p.records if r.is_deleted]
    assert sorted(r.external_id for r in deleted) == sorted(ids[10:13])
    assert all(p.watermark is None for p in pages if any(r.is_deleted for r in p.records))
    with Session(warehouse) as session:
        gone = session.execute(select(Account.external_id).where(Account.is_deleted)).scalars()
        assert sorted(gone) == sorted(ids[:5] + ids[10:13])


def test_given_deals_with_companies_when_pulling_then_the_primary_company_is_the_account(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    cids = sandbox.load("companies", companies(4))
    dids = sandbox.load("deals", deals(4))
    sandbox.associate(dids[0], cids[0])  # primary only
    sandbox.associate(dids[1], cids[1], primary=False)  # unlabeled only: still its company
    sandbox.associate(dids[1], cids[3], primary=False)
    sandbox.associate(dids[2], cids[3], primary=False)  # primary beats a lower unlabeled id
    sandbox.associate(dids[2], cids[2])
    # dids[3]: no company at all (a 207 from the batch read)
    expected = {dids[0]: cids[0], dids[1]: cids[1], dids[2]: cids[2], dids[3]: None}

    # The list endpoint carries the associations inline: no association call at all.
    pages = list(connector.pull(Stream.OPPORTUNITIES, None, T0))
    records = {r.external_id: r for p in pages for r in p.records
               if isinstance(r, OpportunityRecord)}
    assert {d: records[d].account_external_id for d in dids} == expected
    assert endpoint_calls(sandbox, ASSOCIATIONS) == 0

    # Search results carry none: one v4 batch read, and the same answer.
    pages = list(connector.pull(Stream.OPPORTUNITIES, Watermark(T0), T0 + timedelta(1)))
    records = {r.external_id: r for p in pages for r in p.records
               if isinstance(r, OpportunityRecord)}
    assert {d: records[d].account_external_id for d in dids} == expected
    assert endpoint_calls(sandbox, ASSOCIATIONS) == 1


def test_given_open_won_and_lost_deals_when_pulling_then_status_comes_from_the_pipeline(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    dids = sandbox.load("deals", deals(3, referring_partner="Acme Partners"))
    sandbox.close_deal(dids[1], won=True, at=T0 - timedelta(days=3))
    sandbox.close_deal(dids[2], won=False)
    config_connector = connector_for(sandbox, referring_partner_property="referring_partner")

    pages = list(config_connector.pull(Stream.OPPORTUNITIES, None, T0, deleted=False))

    records = {r.external_id: r for p in pages for r in p.records}
    assert all(isinstance(r, OpportunityRecord) for r in records.values())
    won = records[dids[1]]
    assert isinstance(won, OpportunityRecord)
    assert [records[d].status for d in dids] == [  # type: ignore[union-attr]
        OpportunityStatus.OPEN, OpportunityStatus.WON, OpportunityStatus.LOST]
    assert (won.stage, str(won.amount), won.currency, won.close_date.isoformat()
            if won.close_date else None, won.referring_partner) == (
        "closedwon", "1001.50", "EUR", "2024-02-27", "Acme Partners")
    assert sandbox.traffic.calls["GET /crm/v3/pipelines/deals"] == 1


def test_given_owned_values_in_hubspot_when_pulling_then_owned_holds_canonical_text(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    connector.ensure_fields(check_only=False)
    cid = sandbox.load("companies", [{
        "name": "Acme", "ecosystem_overlap_count": "3.0",
        "ecosystem_partners": "Globex (customer)",
        "ecosystem_overlap_changed_at": "2024-02-01T10:00:00.250Z"}])[0]

    pages = list(connector.pull(Stream.ACCOUNTS, None, T0, deleted=False))

    record = pages[0].records[0]
    assert isinstance(record, AccountRecord) and record.external_id == cid
    assert dict(record.owned) == {"overlap_count": "3", "overlap_partners": "Globex (customer)",
                                  "overlap_contacts": None,
                                  "overlap_changed_at": "2024-02-01T10:00:00Z"}


def test_count_is_one_search_call(sandbox: HubSpotSandbox, connector: HubSpotConnector) -> None:
    sandbox.load("companies", companies(321))
    assert connector.count(Stream.ACCOUNTS) == 321
    assert sandbox.traffic.calls[SEARCH_COMPANIES] == 1


def test_given_a_record_modified_mid_walk_when_paging_then_no_later_record_is_skipped(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    rows = [{**row, "hs_lastmodifieddate": T0 + timedelta(seconds=i)}
            for i, row in enumerate(companies(600))]
    ids = sandbox.load("companies", rows)
    until = T0 + timedelta(hours=1)
    sandbox.clock.advance(7200)  # users keep working while the tick runs

    pulled: list[str] = []
    for n, page in enumerate(connector.pull(Stream.ACCOUNTS, Watermark(T0), until,
                                            deleted=False)):
        pulled += [r.external_id for r in page.records]
        if n == 0:
            # An already-read record changes: it leaves the window and every later record
            # moves one offset down; the offset of page two would skip ids[200].
            sandbox.update("companies", ids[3], {"name": "Renamed"})

    assert ids[200] in pulled
    assert set(pulled) == set(ids) and len(pulled) == len(set(pulled))


def test_given_search_index_lag_when_the_next_tick_runs_then_the_lookback_catches_up(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    first = sandbox.load("companies", [{"name": "early",
                                        "hs_lastmodifieddate": T0 - timedelta(minutes=1)}])
    late = sandbox.load("companies", [{"name": "old",
                                       "hs_lastmodifieddate": T0 - timedelta(days=1)}])[0]
    sandbox.search_index_lag_s = 20
    sandbox.update("companies", late, {"name": "changed at T0"})  # searchable at T0 + 20 s
    sandbox.clock.advance(1)

    tick1 = list(connector.pull(Stream.ACCOUNTS, Watermark(T0 - timedelta(hours=1)),
                                sandbox.clock.now(), deleted=False))
    assert [r.external_id for p in tick1 for r in p.records] == first  # not indexed yet
    mark = tick1[-1].watermark
    assert mark is not None

    sandbox.clock.advance(60)
    tick2 = list(connector.pull(Stream.ACCOUNTS, mark, sandbox.clock.now(), deleted=False))

    assert late in [r.external_id for p in tick2 for r in p.records]


def test_given_incremental_ticks_when_sweeping_archived_then_at_most_every_15_minutes(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    ids = sandbox.load("companies", companies(50))
    for company_id in ids[:2]:
        sandbox.archive("companies", company_id)
    sandbox.clock.advance(3600)
    t1 = sandbox.clock.now()
    since = Watermark(t1 - timedelta(minutes=30))

    def deleted_at(until_minutes: int) -> list[str]:
        until = t1 + timedelta(minutes=until_minutes)
        return sorted(r.external_id for p in connector.pull(Stream.ACCOUNTS, since, until)
                      for r in p.records if r.is_deleted)

    # A new process cannot know what was swept before it: the first sweep emits them all.
    assert deleted_at(0) == sorted(ids[:2])
    assert deleted_at(2) == []  # within 15 minutes of the last sweep: no archived listing
    assert sandbox.traffic.calls[LIST_COMPANIES] == 1
    sandbox.clock.advance(180)
    sandbox.archive("companies", ids[7])
    assert deleted_at(20) == [ids[7]]  # only what was archived since the last sweep
    assert sandbox.traffic.calls[LIST_COMPANIES] == 2


def test_given_a_sweep_kept_with_the_watermark_when_a_new_process_pulls_then_it_keeps_the_cadence(
    sandbox: HubSpotSandbox,
) -> None:
    ids = sandbox.load("companies", companies(50))
    for company_id in ids[:2]:
        sandbox.archive("companies", company_id)
    sandbox.clock.advance(3600)
    t1 = sandbox.clock.now()
    start = t1 - timedelta(minutes=30)

    def pull_in_a_new_process(swept_at: datetime | None) -> list[Page]:
        # Each `ecosync sync --once` builds its connector afresh: only the warehouse
        # remembers the last sweep, kept with the watermark.
        return list(connector_for(sandbox).pull(Stream.ACCOUNTS,
                                                Watermark(start, "", swept_at), None))

    def deleted(pages: list[Page]) -> list[str]:
        return sorted(r.external_id for p in pages for r in p.records if r.is_deleted)

    first = pull_in_a_new_process(None)  # no sweep known: every archived record
    assert deleted(first) == sorted(ids[:2])
    assert first[-1].swept == first[-1].until == t1
    sandbox.clock.advance(120)
    sandbox.archive("companies", ids[7])
    again = pull_in_a_new_process(first[-1].swept)  # 2 minutes later: within the cadence
    assert deleted(again) == [] and again[-1].swept is None
    assert sandbox.traffic.calls[LIST_COMPANIES] == 1
    sandbox.clock.advance(13 * 60)  # 15 minutes after the first sweep
    due = pull_in_a_new_process(first[-1].swept)
    assert deleted(due) == [ids[7]]  # only what was archived since the last sweep
    assert due[-1].swept == sandbox.clock.now()
    assert sandbox.traffic.calls[LIST_COMPANIES] == 2


def test_given_no_until_when_pulling_then_the_window_ends_at_the_date_of_its_search(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    before = sandbox.load("companies", [
        {"name": f"c{i}", "hs_lastmodifieddate": T0 - timedelta(hours=1, seconds=-i)}
        for i in range(450)])
    at_clock, ahead = sandbox.load("companies", [
        {"name": "at the clock", "hs_lastmodifieddate": T0},
        {"name": "ahead", "hs_lastmodifieddate": T0 + timedelta(hours=1)}])

    pages = list(connector.pull(Stream.ACCOUNTS, Watermark(T0 - timedelta(hours=2)), None,
                                deleted=False))

    pulled = [r.external_id for p in pages for r in p.records]
    assert pulled == before  # each once, in order; [start, the portal's clock) only
    assert pages[-1].until == T0  # the Date header of the first search
    # The first search is unbounded above; the rest of the window is read bounded by the
    # clock it told, from where that page ended: ceil(450 / 200) searches and no clock read.
    assert sandbox.traffic.calls == {SEARCH_COMPANIES: 3}
    sandbox.clock.advance(1)
    later = list(connector.pull(Stream.ACCOUNTS, Watermark(T0), None, deleted=False))
    assert [r.external_id for p in later for r in p.records] == [at_clock]
    assert later[-1].until == T0 + timedelta(seconds=1) and ahead not in pulled


def test_given_a_deal_whose_inline_associations_are_cut_off_then_only_it_is_read_in_full(
    sandbox: HubSpotSandbox, connector: HubSpotConnector
) -> None:
    cids = sandbox.load("companies", companies(120))  # 121 inline entries: more than 100
    crowded, plain = sandbox.load("deals", deals(2))
    for cid in cids[:-1]:
        sandbox.associate(crowded, cid, primary=False)
    sandbox.associate(crowded, cids[-1])  # primary, past the first 100 inline entries
    sandbox.associate(plain, cids[0])

    pages = list(connector.pull(Stream.OPPORTUNITIES, None, T0))

    records = {r.external_id: r for p in pages for r in p.records
               if isinstance(r, OpportunityRecord)}
    assert records[crowded].account_external_id == cids[-1]
    assert records[plain].account_external_id == cids[0]
    # One fallback read, for the page holding the cut-off list (none without one, above).
    assert endpoint_calls(sandbox, ASSOCIATIONS) == 1
