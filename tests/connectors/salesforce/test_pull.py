"""Pulling accounts and opportunities from the sandbox into the warehouse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sf_support import (
    T0,
    ConnectorFactory,
    land,
    later,
    load_accounts,
    load_opportunities,
    rows,
    tick,
    watermark,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.base import MissingFields, Watermark
from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceSandbox
from schema.models import Account, Opportunity
from schema.records import AccountRecord, Stream
from sync.audit import audit
from sync.ingest import live_count


def test_given_5000_accounts_when_backfilled_then_all_land_over_rest_pages(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    ids = load_accounts(sandbox, 5000)

    pages = list(connector.pull(Stream.ACCOUNTS, None, later(1)))
    landed = land(warehouse, connector.name, pages)

    assert landed == 5000
    with Session(warehouse) as session:
        assert live_count(session, connector.name, Stream.ACCOUNTS) == 5000
    calls = sandbox.traffic.calls
    assert "bulk2.query.create" not in calls and calls["describe"] == 1
    # Two long text owned fields would cap pages at 200 rows (a platform rule): each 2000-row
    # page is one Composite call reading the second one alongside; COUNT() rides in the first.
    assert [len(p.records) for p in pages] == [2000, 2000, 1000]
    assert calls == {"describe": 1, "composite": 3}
    assert all(set(r.owned) == {"overlap_count", "overlap_partners", "overlap_contacts",
                                "overlap_changed_at"} for p in pages for r in p.records)
    mark = watermark(warehouse, connector.name, Stream.ACCOUNTS)
    assert mark == Watermark(T0, max(ids))
    first = rows(warehouse, Account)[ids[0]]
    assert first.name == "Account 00000" and first.domain_key == "example.com"


@pytest.mark.parametrize("lookback", [0, 10])
def test_given_3000_accounts_sharing_one_modstamp_when_pulled_then_none_is_lost(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine,
    lookback: int,
) -> None:
    ids = load_accounts(sandbox, 3000)  # frozen clock: one SystemModstamp for all
    assert len({r["SystemModstamp"] for r in sandbox.records("Account")}) == 1
    connector = make_connector(lookback_minutes=lookback)

    # A backfill killed after its first page has committed that page and its watermark...
    first = next(iter(connector.pull(Stream.ACCOUNTS, None, later(1))))
    land(warehouse, connector.name, [first])
    mark = watermark(warehouse, connector.name, Stream.ACCOUNTS)
    assert mark == Watermark(T0, first.records[-1].external_id)

    # ...and the next run resumes after it: exactly after it without a lookback (the Id breaks
    # the timestamp tie), or re-reading the lookback stretch, harmlessly, with one.
    resumed = list(connector.pull(Stream.ACCOUNTS, mark, later(2)))
    resumed_ids = [r.external_id for p in resumed for r in p.records]
    if lookback == 0:
        assert len(resumed_ids) == 3000 - len(first.records)
        assert set(resumed_ids).isdisjoint(r.external_id for r in first.records)
    else:
        assert sorted(resumed_ids) == sorted(ids)
    land(warehouse, connector.name, resumed)
    assert set(rows(warehouse, Account)) == set(ids)
    with Session(warehouse) as session:
        assert live_count(session, connector.name, Stream.ACCOUNTS) == 3000
    assert watermark(warehouse, connector.name, Stream.ACCOUNTS) == Watermark(T0, max(ids))


def test_given_incremental_window_when_records_change_and_are_deleted_then_warehouse_follows(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    acc = load_accounts(sandbox, 30)
    opp = load_opportunities(sandbox, acc[:10])
    tick(connector, warehouse, Stream.ACCOUNTS, later(1), backfill=True)
    tick(connector, warehouse, Stream.OPPORTUNITIES, later(1), backfill=True)

    sandbox.clock.advance(3600)
    sandbox.update("Account", acc[3], {"Name": "Renamed Ltd", "Website": "renamed.io"})
    sandbox.delete(acc[4])
    sandbox.close_opportunity(opp[0], won=True)
    sandbox.close_opportunity(opp[1], won=False)
    sandbox.delete(opp[2])
    sandbox.traffic.reset()

    now = later(3601)
    assert tick(connector, warehouse, Stream.ACCOUNTS, now) >= 2
    assert tick(connector, warehouse, Stream.OPPORTUNITIES, now) >= 3

    accounts, opps = rows(warehouse, Account), rows(warehouse, Opportunity)
    assert accounts[acc[3]].name == "Renamed Ltd" and accounts[acc[3]].domain_key == "renamed.io"
    assert accounts[acc[4]].is_deleted and accounts[acc[4]].deleted_at is not None
    assert opps[opp[0]].status == "won" and opps[opp[1]].status == "lost"
    assert opps[opp[2]].is_deleted
    with Session(warehouse) as session:
        assert live_count(session, connector.name, Stream.ACCOUNTS) == 29
    # Incremental: one queryAll per stream (its totalSize sizes the window, no COUNT() call);
    # each object described once per tick.
    assert sandbox.traffic.calls == {"queryAll": 2, "describe": 2}
    assert watermark(warehouse, connector.name, Stream.ACCOUNTS) == Watermark(later(3600), acc[4])


def test_given_a_late_commit_inside_the_lookback_when_pulled_then_it_lands_once(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    acc = load_accounts(sandbox, 10)
    sandbox.clock.advance(600)
    sandbox.update("Account", acc[0], {"Name": "Seen first"})
    tick(connector, warehouse, Stream.ACCOUNTS, later(601), backfill=True)
    mark = watermark(warehouse, connector.name, Stream.ACCOUNTS)
    assert mark == Watermark(later(600), acc[0])

    # A transaction that began earlier commits now, stamped 4 minutes *before* the watermark.
    sandbox.clock.advance(60)
    sandbox.update("Account", acc[5], {"Name": "Committed late"}, modstamp=later(360))
    pulled = [r for p in connector.pull(Stream.ACCOUNTS, mark, later(661)) for r in p.records]
    land(warehouse, connector.name, [p for p in connector.pull(Stream.ACCOUNTS, mark, later(661))])

    assert [r.external_id for r in pulled].count(acc[5]) == 1
    assert rows(warehouse, Account)[acc[5]].name == "Committed late"
    with Session(warehouse) as session:
        assert live_count(session, connector.name, Stream.ACCOUNTS) == 10
    # The watermark never moves back because of the re-read.
    assert watermark(warehouse, connector.name, Stream.ACCOUNTS) == mark


def test_given_a_window_end_then_rows_at_or_after_it_wait_for_the_next_tick(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    acc = load_accounts(sandbox, 3)
    tick(connector, warehouse, Stream.ACCOUNTS, later(1), backfill=True)
    sandbox.clock.advance(10)
    sandbox.update("Account", acc[1], {"Name": "At the tick start"})  # stamped T0+10s

    assert tick(connector, warehouse, Stream.ACCOUNTS, later(10)) == 2  # the others, re-read
    assert rows(warehouse, Account)[acc[1]].name == "Account 00001"
    tick(connector, warehouse, Stream.ACCOUNTS, later(11))
    assert rows(warehouse, Account)[acc[1]].name == "At the tick start"


@pytest.mark.slow  # 20,000 accounts through Bulk API 2.0 into the warehouse: ~4 s
def test_given_20000_accounts_when_backfilled_then_bulk_api_2_streams_them(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    ids = load_accounts(sandbox, 20_000)
    sandbox.delete(ids[7])

    pages = connector.pull(Stream.ACCOUNTS, None, later(1))
    assert land(warehouse, connector.name, pages) == 20_000

    calls = sandbox.traffic.calls
    assert calls["bulk2.query.create"] == 1 and calls["bulk2.query.results"] == 1
    assert "queryMore" not in calls
    assert sum(calls.values()) <= 7  # describe, COUNT(), create, polls, results
    with Session(warehouse) as session:
        assert live_count(session, connector.name, Stream.ACCOUNTS) == 19_999
    assert rows(warehouse, Account)[ids[7]].is_deleted
    # Bulk rows are unordered: only the last page carries the highest (SystemModstamp, Id).
    assert watermark(warehouse, connector.name, Stream.ACCOUNTS) == Watermark(T0, max(ids))


def test_given_a_bulk_pull_then_the_page_read_with_the_count_is_used_not_thrown_away(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine
) -> None:
    ids = sorted(load_accounts(sandbox, 5000))
    connector = make_connector(bulk_threshold=1000)

    pages = list(connector.pull(Stream.ACCOUNTS, None, later(1)))

    # The first page came with the COUNT(), in one Composite call: it lands, in order, with
    # its watermark; the Bulk job reads only the rows after it.
    assert len(pages[0].records) == 2000
    assert pages[0].watermark == Watermark(T0, ids[1999])
    (job,) = sandbox.bulk.jobs.values()
    assert len(job.rows) == 3000
    assert land(warehouse, connector.name, pages) == 5000
    assert watermark(warehouse, connector.name, Stream.ACCOUNTS) == Watermark(T0, ids[-1])
    # Calls: the Bulk floor (create, polls, one results page) + describe + the count's page.
    calls = sandbox.traffic.calls
    floor = calls["bulk2.query.create"] + calls["bulk2.query.get"] + calls["bulk2.query.results"]
    assert (calls["describe"], calls["composite"], calls["bulk2.query.results"]) == (1, 1, 1)
    assert sum(calls.values()) == floor + 2


def test_given_a_failed_bulk_job_when_backfilling_then_rest_pulls_the_window(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine
) -> None:
    load_accounts(sandbox, 1500)
    sandbox.fail_next_bulk_query()
    connector = make_connector(bulk_threshold=1000)

    assert land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1))) \
        == 1500
    calls = sandbox.traffic.calls
    assert calls["bulk2.query.create"] == 1 and "bulk2.query.results" not in calls
    assert calls["composite"] == 2  # COUNT() with a first page, then the REST window


def test_given_a_configured_field_that_does_not_exist_then_pull_names_it_before_pulling(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory
) -> None:
    load_accounts(sandbox, 5)
    connector = make_connector(referring_partner_field="Referrer__c")

    with pytest.raises(MissingFields) as err:
        list(connector.pull(Stream.OPPORTUNITIES, None, later(1)))

    assert "Opportunity.Referrer__c" in str(err.value)
    assert "crm.salesforce.referring_partner_field" in str(err.value)
    assert "queryAll" not in sandbox.traffic.calls


def test_given_a_missing_owned_field_then_pull_says_to_run_fields_ensure(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    sandbox.remove_field("Account", "Ecosystem_Partners__c")
    with pytest.raises(MissingFields, match=r"Account\.Ecosystem_Partners__c.*fields ensure"):
        next(iter(connector.pull(Stream.ACCOUNTS, None, later(1))))


def test_given_multi_currency_org_then_opportunities_carry_currency_and_referrer() -> None:
    with SalesforceSandbox(multi_currency=True) as sandbox:
        sandbox.clock.freeze(T0)
        acc = load_accounts(sandbox, 1)
        (opp,) = sandbox.load("Opportunity", [{
            "Name": "Euro deal", "AccountId": acc[0], "StageName": "Closed Won",
            "Amount": 1234.5, "CloseDate": "2024-02-29", "CurrencyIsoCode": "EUR",
            "Referring_Partner__c": "Acme Partners", "Partner_Influenced__c": True,
        }])
        from dataclasses import replace

        from sf_support import config_for

        config = replace(config_for(sandbox, "session", None),  # type: ignore[arg-type]
                         referring_partner_field="Referring_Partner__c")
        connector = SalesforceConnector(config, now=lambda: later(10), sleep=lambda _s: None)
        (page,) = list(connector.pull(Stream.OPPORTUNITIES, None, later(1)))
    (record,) = page.records
    assert record.external_id == opp
    assert not isinstance(record, AccountRecord)
    assert record.currency == "EUR" and str(record.amount) == "1234.5"
    assert record.referring_partner == "Acme Partners" and record.status.value == "won"
    assert record.owned["partner_influenced"] == "true"


def test_count_and_audit_compare_live_rows(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    acc = load_accounts(sandbox, 12)
    tick(connector, warehouse, Stream.ACCOUNTS, later(1), backfill=True)
    sandbox.clock.advance(60)
    sandbox.delete(acc[0])
    load_accounts(sandbox, 2)  # created after the watermark: not a completeness problem

    assert connector.count(Stream.ACCOUNTS) == 13
    with Session(warehouse) as session:
        found = {a.stream: a for a in audit(session, connector)}
    assert found[Stream.ACCOUNTS].crm == 11 and found[Stream.ACCOUNTS].warehouse == 12
    assert found[Stream.ACCOUNTS].difference == -1 and found[Stream.ACCOUNTS].as_of == T0
    assert found[Stream.OPPORTUNITIES].ok and found[Stream.OPPORTUNITIES].as_of is None

    tick(connector, warehouse, Stream.ACCOUNTS, later(61))
    with Session(warehouse) as session:
        assert all(a.ok for a in audit(session, connector))


def test_given_since_and_lookback_then_window_starts_lookback_before_watermark(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    acc = load_accounts(sandbox, 2)
    sandbox.clock.advance(3600)
    sandbox.update("Account", acc[0], {"Name": "old"}, modstamp=later(3600 - 11 * 60))
    sandbox.update("Account", acc[1], {"Name": "inside"}, modstamp=later(3600 - 9 * 60))
    mark = Watermark(later(3600), "001" + "0" * 15)

    got = [r.external_id for p in connector.pull(Stream.ACCOUNTS, mark, later(3601))
           for r in p.records]
    assert got == [acc[1]]
    assert timedelta(minutes=connector.config.lookback_minutes) == timedelta(minutes=10)


def test_given_long_text_fields_then_split_pages_carry_their_values(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    ids = load_accounts(sandbox, 2500, Ecosystem_Partners__c="A (customer)",
                        Ecosystem_Partner_Contacts__c="ann@a.example")
    sandbox.clock.advance(5)
    pages = connector.pull(Stream.ACCOUNTS, None, later(5))
    first = next(pages)
    # A row of the second page changes after the main query snapshot but before its page's
    # long text query: it is left out now and pulled whole by the next tick.
    sandbox.update("Account", ids[2100], {"Ecosystem_Partner_Contacts__c": "bob@b.example"})
    rest = list(pages)

    got = {r.external_id: r for p in [first, *rest] for r in p.records}
    assert len(got) == 2499 and ids[2100] not in got
    assert got[ids[0]].owned["overlap_contacts"] == "ann@a.example"
    assert got[ids[2499]].owned["overlap_partners"] == "A (customer)"
    land(warehouse, connector.name, [first, *rest])
    tick(connector, warehouse, Stream.ACCOUNTS, later(6))
    assert rows(warehouse, Account)[ids[2100]].owned_values["overlap_contacts"] == "bob@b.example"


def test_given_a_large_incremental_window_then_it_is_read_in_full_pages(
    sandbox: SalesforceSandbox, connector: SalesforceConnector
) -> None:
    load_accounts(sandbox, 1500)
    mark = Watermark(T0 - timedelta(hours=1), "")

    pages = list(connector.pull(Stream.ACCOUNTS, mark, later(1)))

    # 200 rows with both long text fields, then split pages from there on
    assert [len(p.records) for p in pages] == [200, 1300]
    assert sandbox.traffic.calls == {"describe": 1, "queryAll": 1, "composite": 1}


def test_given_a_window_above_the_bulk_threshold_then_even_an_incremental_pull_uses_bulk(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine
) -> None:
    acc = load_accounts(sandbox, 50)
    tick(make_connector(), warehouse, Stream.ACCOUNTS, later(1), backfill=True)
    sandbox.clock.advance(3600)  # a daemon back from an outage finds 1,200 changes
    for record_id in acc:
        sandbox.update("Account", record_id, {"Type": "Customer - Direct"})
    load_accounts(sandbox, 1150)
    connector = make_connector(bulk_threshold=1000)

    assert tick(connector, warehouse, Stream.ACCOUNTS, later(3601)) == 1200
    assert sandbox.traffic.calls["bulk2.query.create"] == 1
    assert rows(warehouse, Account)[acc[0]].account_type == "Customer - Direct"


def test_given_a_row_committed_between_subrequests_then_the_page_range_is_reread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    from connectors.salesforce import longtext, queries
    from connectors.salesforce.fields import FieldInfo, StreamFields
    from connectors.salesforce.normalize import FieldNames

    lt = FieldInfo("Notes__c", "textarea", 32768, 0, True)
    fields = StreamFields("Account", ("Id", "SystemModstamp", "A__c", "B__c"), FieldNames(),
                          {"A__c": lt, "B__c": lt})
    stamp = "2024-03-01T12:00:00.000+0000"

    def row(i: str, **extra: object) -> dict[str, object]:
        return {"Id": f"001{i * 15}", "SystemModstamp": stamp, **extra}

    calls: list[list[tuple[str, str]]] = []

    def fake(_api: object, subs: list[tuple[str, str]], *, deleted: bool) -> dict[str, object]:
        calls.append(subs)
        if len(calls) == 1:  # main rows a, b, c; the narrow read saw a late row x before c
            return {"main": {"records": [row("a", A__c="1"), row("b", A__c="2"),
                                         row("c", A__c="3")]},
                    "long0": {"records": [row("a", B__c="x1"), row("x", B__c="late"),
                                          row("b", B__c="x2")]}}
        return {"long0": {"records": [row("a", B__c="x1"), row("b", B__c="x2"),
                                      row("c", B__c="x3")], "done": True}}

    monkeypatch.setattr(queries, "composite", fake)
    pages = list(longtext.split_pages(
        None, Stream.ACCOUNTS, fields, ("B__c",), None,  # type: ignore[arg-type]
        datetime(2024, 3, 2, tzinfo=UTC), deleted=True, to_record=lambda raw: raw))  # type: ignore[arg-type,return-value]

    (page,) = pages
    assert [r["B__c"] for r in page.records] == ["x1", "x2", "x3"]  # type: ignore[index]
    assert "Id <= '001" + "c" * 15 + "'" in calls[1][0][1]  # the page's exact key range


def test_given_bulk_results_that_vanish_then_rest_pulls_the_window(
    sandbox: SalesforceSandbox, make_connector: ConnectorFactory, warehouse: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connectors.salesforce import bulk

    load_accounts(sandbox, 1200)
    connector = make_connector(bulk_threshold=1000)
    wait = bulk._wait

    def wait_then_expire(*args: object, **kwargs: object) -> dict[str, object]:
        info = wait(*args, **kwargs)  # type: ignore[arg-type]
        sandbox.bulk.jobs.clear()  # results purged: the results call answers 404
        return info

    monkeypatch.setattr(bulk, "_wait", wait_then_expire)
    assert land(warehouse, connector.name, connector.pull(Stream.ACCOUNTS, None, later(1))) \
        == 1200
    assert sandbox.traffic.calls["bulk2.query.create"] == 1


def test_given_an_expired_query_cursor_then_the_pull_requeries_from_the_last_row(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, warehouse: Engine
) -> None:
    acc = load_accounts(sandbox, 1)
    opp = load_opportunities(sandbox, acc * 4500)
    pages = connector.pull(Stream.OPPORTUNITIES, None, later(1))
    first = next(pages)
    sandbox.app.cursors.clear()  # the server forgot the cursor (idle expiry, too many open)
    rest = list(pages)

    got = [r.external_id for p in [first, *rest] for r in p.records]
    assert sorted(got) == sorted(opp) and len(got) == len(set(got))
    assert sandbox.traffic.calls["queryAll"] == 1  # the re-query after INVALID_QUERY_LOCATOR
    land(warehouse, connector.name, [first, *rest])
    assert watermark(warehouse, connector.name, Stream.OPPORTUNITIES) == Watermark(T0, max(opp))


def test_given_deleted_false_then_query_not_query_all(
    sandbox: SalesforceSandbox, connector: SalesforceConnector, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connectors.salesforce import queries

    acc = load_accounts(sandbox, 3)
    sandbox.delete(acc[0])
    seen: list[bool] = []
    composite = queries.composite

    def spy(*args: Any, deleted: bool) -> Any:
        seen.append(deleted)
        return composite(*args, deleted=deleted)

    monkeypatch.setattr(queries, "composite", spy)
    got = [r.external_id for p in connector.pull(Stream.ACCOUNTS, None, later(1),
                                                 deleted=False) for r in p.records]
    assert sorted(got) == sorted(acc[1:])
    assert seen == [False]
    got = [r.external_id for p in connector.pull(Stream.ACCOUNTS, Watermark(T0, ""), later(1),
                                                 deleted=False) for r in p.records]
    assert sorted(got) == sorted(acc[1:]) and sandbox.traffic.calls["query"] == 1
