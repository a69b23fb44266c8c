"""The product as a rep meets it: after a backfill and ticks, the CRM fields are right,
idle ticks cost nothing, and only owned fields are ever written."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Env, make_env
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from schema.models import Account, Overlap
from schema.owned_fields import OWNED_FIELDS
from schema.records import Stream
from sync.sharing import SharedOverlap, visibility
from sync.tick import TickOptions, run_tick


def sf_calls(env: Env) -> Counter[str]:
    assert env.world.salesforce is not None
    return Counter(env.world.salesforce.traffic.calls)


def hs_calls(env: Env) -> Counter[str]:
    assert env.world.hubspot is not None
    return Counter(env.world.hubspot.traffic.calls)


def delta(after: Counter[str], before: Counter[str]) -> Counter[str]:
    return Counter({k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)})


def sf_write_calls(env: Env) -> Counter[str]:
    assert env.world.salesforce is not None
    return Counter(env.world.salesforce.write_calls.calls)


def hs_writes(calls: Counter[str]) -> int:
    return sum(v for k, v in calls.items() if "batch/update" in k or k.startswith("PATCH"))


def backfill(env: Env) -> None:
    run_tick(env.engine, env.config, env.connectors,
             options=TickOptions(backfill=True, kind="backfill"))
    # Salesforce keeps whole seconds and a tick reads up to its own start: let the second
    # of the backfill's own writes pass, then absorb their echo.
    env.world.advance_clocks(1)
    run_tick(env.engine, env.config, env.connectors)
    env.world.advance_clocks(1)


def expected_account_fields(env: Env) -> dict[tuple[str, str], dict[str, object]]:
    """What DESIGN.md 5 prescribes for each account, from the seed's ground truth."""
    partners = {p.id: p for p in env.world.seed.partners}
    per_account: dict[tuple[str, str], list[SharedOverlap]] = {}
    for key in env.world.seed.truth:
        source, external_id, partner_id = key
        partner = partners[partner_id]
        per_account.setdefault((source, external_id), []).append(SharedOverlap(
            partner_id, partner.name, dict(partner.share),
            str(env.world.seed.truth_population[key])))
    out = {}
    for account, overlaps in per_account.items():
        vis = visibility(overlaps)
        out[account] = {"overlap_count": vis.overlap_count,
                        "overlap_partners": vis.partners_field() or None}
    return out


def crm_account_fields(env: Env) -> dict[tuple[str, str], dict[str, object]]:
    out: dict[tuple[str, str], dict[str, object]] = {}
    fields = [f for f in OWNED_FIELDS if f.stream is Stream.ACCOUNTS]
    if env.world.salesforce is not None:
        for rec in env.world.salesforce.records("Account"):
            count = rec.get(fields[0].salesforce)
            out[("salesforce", rec["Id"])] = {
                "overlap_count": int(count) if count else 0,
                "overlap_partners": rec.get(fields[1].salesforce) or None}
    if env.world.hubspot is not None:
        for rec in env.world.hubspot.records("companies"):
            count = rec.props.get(fields[0].hubspot)
            out[("hubspot", rec.id)] = {
                "overlap_count": int(float(count)) if count else 0,
                "overlap_partners": rec.props.get(fields[1].hubspot) or None}
    return out


@pytest.fixture(params=["salesforce", "hubspot", "both"])
def env(request: pytest.FixtureRequest, tmp_path: Path, warehouse: Engine) -> Iterator[Env]:
    yield from make_env(tmp_path, warehouse, salesforce=request.param != "hubspot",
                        hubspot=request.param != "salesforce")


def test_backfill_writes_the_fields_the_ground_truth_prescribes(env: Env) -> None:
    backfill(env)
    expected = expected_account_fields(env)
    actual = crm_account_fields(env)
    blank = {"overlap_count": 0, "overlap_partners": None}
    wrong = {k: (actual[k], expected.get(k, blank)) for k in actual
             if actual[k] != expected.get(k, blank)}
    # Fuzzy name matching may miss a truth pair or find a near-namesake the seed did not
    # intend (two random names a typo apart); everything else must be exact.
    with Session(env.engine) as session:
        fuzzy_found = {(r[0], r[1]) for r in session.execute(
            select(Account.source, Account.external_id)
            .join(Overlap, Overlap.account_id == Account.id)
            .where(Overlap.method == "fuzzy", Overlap.ended_at.is_(None)))}
    fuzzy_accounts = {(s, e) for s, e, _ in env.world.seed.truth_fuzzy} | fuzzy_found
    assert {k: v for k, v in wrong.items() if k not in fuzzy_accounts} == {}
    assert len(wrong) <= max(1, len(expected) // 100)
    assert any(v["overlap_count"] for v in actual.values())


def test_idle_tick_writes_nothing_and_reads_little(env: Env) -> None:
    backfill(env)
    before_sf = sf_write_calls(env) if env.world.salesforce else Counter()
    before_hs = hs_calls(env) if env.world.hubspot else Counter()
    # A quiet period longer than the lookback windows: nothing changed in the CRMs.
    report = run_tick(env.engine, env.config, env.connectors)
    assert report.counts.totals().written == 0
    if env.world.salesforce is not None:
        used = delta(sf_write_calls(env), before_sf)
        assert sum(used.values()) == 0, used
    if env.world.hubspot is not None:
        used = delta(hs_calls(env), before_hs)
        assert hs_writes(used) == 0, used


def test_only_owned_fields_are_ever_written(both: Env) -> None:
    backfill(both)
    sf_owned = {f.salesforce for f in OWNED_FIELDS}
    hs_owned = {f.hubspot for f in OWNED_FIELDS}
    assert both.world.salesforce is not None and both.world.hubspot is not None
    sf_fields = {e.field for e in both.world.salesforce.write_log if e.via != "sandbox"}
    hs_fields = {e.property for e in both.world.hubspot.write_log if e.source == "api"}
    assert sf_fields and hs_fields
    assert sf_fields <= sf_owned
    assert hs_fields <= hs_owned


def test_changes_write_exactly_the_changed_records_in_few_calls(both: Env) -> None:
    backfill(both)
    sf, hs = both.world.salesforce, both.world.hubspot
    assert sf is not None and hs is not None
    partner_domains = [row.get("domain") for rows in both.world.seed.partner_rows.values()
                       for row in rows if row.get("domain")]
    # 1% of the accounts (at least 3 per CRM) get a partner's customer domain as website.
    sf_ids = [r["Id"] for r in sf.records("Account")]
    hs_ids = [r.id for r in hs.records("companies")]
    sf_targets = sf_ids[: max(3, len(sf_ids) // 100)]
    hs_targets = hs_ids[: max(3, len(hs_ids) // 100)]
    for i, rid in enumerate(sf_targets):
        sf.update("Account", rid, {"Website": f"https://{partner_domains[i]}"})
    for i, rid in enumerate(hs_targets):
        hs.update("companies", rid, {"domain": partner_domains[-1 - i], "website": ""})
    both.world.advance_clocks(1)
    sf_before, hs_before = sf_write_calls(both), hs_calls(both)
    log_before = (len(sf.write_log), len(hs.write_log))
    report = run_tick(both.engine, both.config, both.connectors)
    sf_used = delta(sf_write_calls(both), sf_before)
    hs_used = delta(hs_calls(both), hs_before)
    written_sf = {e.id for e in sf.write_log[log_before[0]:] if e.via != "sandbox"}
    written_hs = {e.object_id for e in hs.write_log[log_before[1]:] if e.source == "api"}
    counts = report.counts
    m_sf = sum(counts.of("salesforce", stream).written for stream in Stream)
    m_hs = sum(counts.of("hubspot", stream).written for stream in Stream)
    # Every changed account was re-rendered and written; nothing else beyond its opportunities.
    assert set(sf_targets) <= written_sf
    assert set(hs_targets) <= written_hs
    assert sum(sf_used.values()) <= math.ceil(m_sf / 1000) + 1
    assert hs_writes(hs_used) <= math.ceil(m_hs / 100) + 1
    # And the next tick, with nothing new, writes nothing.
    both.world.advance_clocks(1)
    again = run_tick(both.engine, both.config, both.connectors)
    both.world.advance_clocks(1)
    idle = run_tick(both.engine, both.config, both.connectors)
    assert idle.counts.totals().written == 0, (again.counts, idle.counts)
