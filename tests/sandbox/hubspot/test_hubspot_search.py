"""CRM search: filters, sorts, offset paging, the 10,000 ceiling and the index lag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import ApiException as CompanyApiException
from hubspot.crm.deals import ApiException as DealApiException
from hubspot_support import T0, companies, error_body

from sandbox.hubspot import HubSpotSandbox, Rec


def _search(client: HubSpot, **body: Any) -> Any:
    return client.crm.companies.search_api.do_search(public_object_search_request=body)


def test_given_ties_on_lastmodified_when_searching_by_window_then_pages_of_200_are_ordered(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    # 1,500 companies in three batches sharing three timestamps, as imports do.
    ids: list[str] = []
    for batch in range(3):
        ids += sandbox.load("companies", companies(500, start=batch * 500))
        sandbox.clock.advance(60)
    window_start = int(T0.timestamp() * 1000) + 60_000  # drop the first batch
    body: dict[str, Any] = {
        "limit": 200,
        "properties": ["name", "lifecyclestage"],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "filterGroups": [{"filters": [
            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(window_start)},
            {"propertyName": "lifecyclestage", "operator": "IN", "values": ["customer", "lead"]},
        ]}],
    }
    seen: list[str] = []
    after = "0"
    while True:
        page = _search(client, after=after, **body)
        assert page.total == 666  # 1,000 in the window, two thirds customer or lead
        seen += [r.id for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
        assert after == str(len(seen))  # the search cursor is a numeric offset
    expected = [i for n, i in enumerate(ids) if n >= 500 and n % 3 != 2]
    assert seen == expected  # ties come out in id order, one page after another
    assert sandbox.traffic.calls["POST /crm/v3/objects/companies/search"] == 4


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"operator": "EQ", "propertyName": "name", "value": "company 3"}, [3]),
        ({"operator": "NEQ", "propertyName": "lifecyclestage", "value": "customer"},
         [1, 2, 4, 5]),
        ({"operator": "HAS_PROPERTY", "propertyName": "website"}, [0, 1, 2, 3, 4]),
        ({"operator": "NOT_HAS_PROPERTY", "propertyName": "website"}, [5]),
        ({"operator": "BETWEEN", "propertyName": "hs_object_id", "value": "1002",
          "highValue": "1004"}, [1, 2, 3]),
        ({"operator": "IN", "propertyName": "lifecyclestage", "values": ["CUSTOMER"]}, []),
        ({"operator": "LT", "propertyName": "createdate", "value": "2024-03-01T12:00:00Z"},
         []),
        ({"operator": "LTE", "propertyName": "createdate", "value": "2024-03-01T12:00:00Z"},
         [0, 1, 2, 3, 4, 5]),
    ],
)
def test_filter_operators(
    sandbox: HubSpotSandbox, client: HubSpot, flt: dict[str, Any], expected: list[int]
) -> None:
    rows = companies(6)
    rows[5]["website"] = None
    ids = sandbox.load("companies", rows)
    assert ids[0] == "1001"
    page = _search(client, limit=200, filterGroups=[{"filters": [flt]}])
    assert [r.id for r in page.results] == [ids[i] for i in expected]


def test_filter_groups_are_ored_and_sort_descending(sandbox: HubSpotSandbox,
                                                    client: HubSpot) -> None:
    ids = sandbox.load("companies", companies(6))
    page = _search(client, limit=10, sorts=[{"propertyName": "name", "direction": "DESCENDING"}],
                   filterGroups=[
                       {"filters": [{"propertyName": "name", "operator": "EQ",
                                     "value": "Company 1"}]},
                       {"filters": [{"propertyName": "name", "operator": "EQ",
                                     "value": "Company 4"}]},
                   ])
    assert [r.id for r in page.results] == [ids[4], ids[1]]


def test_limit_above_200_and_two_sorts_are_rejected(client: HubSpot) -> None:
    for body in ({"limit": 201},
                 {"limit": 10, "sorts": [{"propertyName": "name"}, {"propertyName": "domain"}]}):
        with pytest.raises(CompanyApiException) as caught:
            _search(client, **body)
        assert caught.value.status == 400


def test_given_more_than_10000_matches_when_paging_past_10000_then_400(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    sandbox.load("deals", ({"dealname": f"Deal {i}", "amount": i} for i in range(10_050)))
    api = client.crm.deals.search_api
    body: dict[str, Any] = {"limit": 200, "properties": ["dealname"],
                            "filterGroups": [{"filters": [
                                {"propertyName": "amount", "operator": "GTE", "value": "0"}]}]}
    got = 0
    after = "0"
    while after != "10000":
        page = api.do_search(public_object_search_request={**body, "after": after})
        assert page.total == 10_050
        got += len(page.results)
        after = page.paging.next.after
    assert got == 10_000
    with pytest.raises(DealApiException) as caught:
        api.do_search(public_object_search_request={**body, "after": after})
    assert after == "10000"
    assert caught.value.status == 400
    assert error_body(caught.value)["category"] == "VALIDATION_ERROR"


def test_given_index_lag_when_record_changes_then_search_sees_it_only_after_the_lag(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    [cid] = sandbox.load("companies", [{"name": "Acme", "website": "acme.com"}])
    sandbox.search_index_lag_s = 5
    client.crm.companies.basic_api.update(cid, {"properties": {"website": "acme.io"}})
    flt = {"filterGroups": [{"filters": [
        {"propertyName": "website", "operator": "EQ", "value": "acme.io"}]}],
        "properties": ["website"]}
    assert _search(client, **flt).total == 0
    # Reads by id see the write at once; only search lags.
    assert client.crm.companies.basic_api.get_by_id(
        cid, properties=["website"]).properties["website"] == "acme.io"
    sandbox.clock.advance(4.9)
    assert _search(client, **flt).total == 0
    sandbox.clock.advance(0.1)
    page = _search(client, **flt)
    assert [r.properties["website"] for r in page.results] == ["acme.io"]


def test_archived_records_leave_the_index_after_the_lag(sandbox: HubSpotSandbox,
                                                        client: HubSpot) -> None:
    ids = sandbox.load("companies", companies(3))
    sandbox.search_index_lag_s = 2
    sandbox.archive("companies", ids[0])
    assert _search(client, limit=10).total == 3
    sandbox.clock.advance(2)
    assert [r.id for r in _search(client, limit=10).results] == ids[1:]


def test_free_text_query(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    ids = sandbox.load("companies", [{"name": "Acme Corp", "domain": "acme.com"},
                                     {"name": "Globex", "domain": "globex.com"}])
    assert [r.id for r in _search(client, query="acme").results] == [ids[0]]


def _window_check(op: str, lo: int, hi: int) -> Callable[[Rec], bool]:
    tests: dict[str, Callable[[int], bool]] = {
        "GTE": lambda t: t >= lo,
        "GT": lambda t: t > lo,
        "LT": lambda t: t < lo,
        "LTE": lambda t: t <= lo,
        "BETWEEN": lambda t: lo <= t <= hi,
    }
    test = tests[op]
    return lambda r: test(r.updated_ms)


def _stage_check(stage: str) -> Callable[[Rec], bool]:
    return lambda r: r.props.get("lifecyclestage") == stage


@pytest.mark.parametrize(
    ("filters", "direction"),
    [
        ([("GTE", 2)], "ASCENDING"),
        ([("GT", 2)], "ASCENDING"),
        ([("LT", 3)], "DESCENDING"),
        ([("GTE", 1), ("LTE", 3)], "ASCENDING"),
        ([("BETWEEN", 1, 2)], "DESCENDING"),
        ([("GTE", 0), ("EQ-lifecycle", "lead")], "ASCENDING"),
    ],
)
def test_lastmodified_windows_match_a_plain_scan_after_writes_and_archives(
    sandbox: HubSpotSandbox, client: HubSpot, filters: list[tuple[Any, ...]], direction: str
) -> None:
    # Five import batches a minute apart, then writes that move records to later minutes
    # and archives that take them out: the window index must track all of it.
    ids: list[str] = []
    for batch in range(5):
        ids += sandbox.load("companies", companies(60, start=batch * 60))
        sandbox.clock.advance(60)
    for n in range(0, 300, 7):
        sandbox.update("companies", ids[n], {"name": f"Moved {n}"})
    for n in range(3, 300, 11):
        sandbox.archive("companies", ids[n])
    minute = int(T0.timestamp() * 1000)

    def at(m: int) -> str:
        return str(minute + m * 60_000)

    wire: list[dict[str, Any]] = []
    checks: list[Callable[[Rec], bool]] = []
    for f in filters:
        if f[0] == "EQ-lifecycle":
            wire.append({"propertyName": "lifecyclestage", "operator": "EQ", "value": f[1]})
            checks.append(_stage_check(str(f[1])))
            continue
        op, m = f[0], f[1]
        flt = {"propertyName": "hs_lastmodifieddate", "operator": op, "value": at(m)}
        if op == "BETWEEN":
            flt["highValue"] = at(f[2])
        wire.append(flt)
        lo, hi = int(at(m)), int(at(f[2])) if op == "BETWEEN" else 0
        checks.append(_window_check(op, lo, hi))
    live = sandbox.records("companies")
    expected = sorted((r for r in live if all(c(r) for c in checks)),
                      key=lambda r: (r.updated_ms, r.num), reverse=direction == "DESCENDING")
    seen: list[str] = []
    after = "0"
    while after:
        page = _search(client, limit=200, after=after, filterGroups=[{"filters": wire}],
                       sorts=[{"propertyName": "hs_lastmodifieddate", "direction": direction}])
        seen += [r.id for r in page.results]
        after = page.paging.next.after if page.paging else ""
    assert seen == [r.id for r in expected]
    assert seen  # every case selects something
