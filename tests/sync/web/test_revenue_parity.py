"""The web view's revenue figures are aggregated in SQL; `ecosync report attribution` loads
the same deals one by one. On one world, with partners at every sharing level, a referral
credit of a hidden partner (named: our own CRM field), a credit whose population comes from
today's overlap, a deal without an exchange rate and deals in three quarters, both give the
same figures, and the web reads no deal row into Python to do it."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session
from web_world import T0, TODAY, build, client_for

from schema.models import AttributionCredit, Opportunity
from sync.attribution import metrics as m
from sync.attribution.periods import Quarter
from sync.attribution.stamp import stamp_closed
from sync.config import AttributionConfig
from sync.reports import deals
from sync.reports.attribution import attribution_report, load_deals, partner_shares
from sync.sharing import policies
from sync.web.queries import network

ANCHOR = Quarter.of(TODAY.date())
# (external id, account, status, amount, currency, created, close, referring partner)
MORE = [
    # Namewise refers it; its overlap with Echo began after the close: shown under today's.
    ("006E2", "001E", "won", "4000", "USD", date(2026, 1, 2), date(2026, 4, 15), "Namewise"),
    # Hiddenite (hidden everywhere) refers it with no overlap at all: a referral is named.
    ("006D2", "001D", "won", "6000", "USD", date(2026, 2, 2), date(2026, 5, 10), "Hiddenite"),
    # No rate for GBP: counted as won, no corporate amount, pooled model amount unknown.
    ("006F2", "001F", "won", "7000", "GBP", date(2026, 3, 3), date(2026, 5, 15), None),
    ("006C2", "001C", "lost", "9000", "USD", date(2025, 11, 1), date(2026, 2, 10), None),
    ("006A3", "001A", "won", "15000", "USD", date(2025, 9, 1), date(2025, 12, 20), None),
]


def _world(engine: Engine) -> None:
    build(engine, unshared=True)
    with Session(engine) as s, s.begin():
        for ext, acc, status, amount, cur, created, close, referring in MORE:
            s.add(Opportunity(
                source="salesforce", external_id=ext, account_external_id=acc,
                name=f"Deal {ext}", stage=status, status=status, amount=Decimal(amount),
                currency=cur, close_date=close, referring_partner=referring,
                created_at=datetime.combine(created, datetime.min.time(), tzinfo=UTC),
                modified_at=T0, ingested_at=T0))
    with Session(engine) as s, s.begin():
        stamp_closed(s, AttributionConfig(static_rates={"EUR": 1.1}),
                     now=datetime(2026, 6, 2, tzinfo=UTC))


def _sections(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with Session(engine) as s:
        found = attribution_report(s, anchor=ANCHOR, today=TODAY.date(),
                                   corporate_currency="USD")
    return {sec.name: sec.rows for sec in found}


def test_report_and_web_give_the_same_revenue_figures(warehouse: Engine) -> None:
    _world(warehouse)
    report = _sections(warehouse)
    with Session(warehouse) as s:
        pol = policies(s)
        web_revenue = network.revenue_rows(s, pol, ANCHOR, "USD")
        web_partners = network.partner_rows(s, pol, ANCHOR)
        web_comparison = deals.comparison(s, pol, ANCHOR)
        per_partner = deals.by_partner(s, pol, ANCHOR)
        report_deals = load_deals(s, ANCHOR.trailing()[0].start, ANCHOR.end,
                                  partner_shares(s))
        by_key = {k: deals.comparison(s, pol, ANCHOR, k)
                  for k in {p.key for d in report_deals for p in d.partners}}

    assert web_revenue == report["revenue"]
    assert web_partners == report["partners"]
    rows = []
    for label in [q.label for q in ANCHOR.trailing()] + [deals.TRAILING]:
        with_p, without = web_comparison[label]
        rows += [_stat_row(label, "with partner", with_p),
                 _stat_row(label, "without partner", without)]
    assert rows == [r for r in report["comparison"] if r["group"] != "difference"]

    # Each partner (and the pool): revenue per quarter and with/without it, as the per-deal
    # arithmetic of the report computes them from the same deals.
    for q in ANCHOR.trailing():
        chosen = [d for d in report_deals if q.start <= d.close_date < q.end]
        assert per_partner[q.label] == m.by_partner(chosen), q.label
    assert per_partner[deals.TRAILING] == m.by_partner(report_deals)
    without = m.stats([d for d in report_deals if not d.with_partner])
    for key, figures in by_key.items():
        mine = m.stats([d for d in report_deals if any(p.key == key for p in d.partners)])
        assert figures[deals.TRAILING] == (mine, without), key

    # The world exercises what it claims to.
    ttm = report["revenue"][-1]
    assert ttm["unconverted_deals"] == 1 and ttm["won_deals"] == 8
    shown = {r["partner"] for r in report["partners"]}
    assert "Hiddenite" in shown  # named as the referral it is, though hidden as a partner
    assert "Partners sharing counts only" in shown
    assert len({r["period"] for r in report["comparison"] if r.get("closed")}) >= 4


def _stat_row(period: str, group: str, s: m.GroupStats) -> dict[str, Any]:
    return {"period": period, "group": group, "closed": s.closed, "won": s.won,
            "win_rate_pct": s.win_rate, "avg_deal_size": s.avg_deal_size,
            "avg_days_to_close": s.avg_days_to_close}


def test_the_web_reads_aggregates_not_deals(warehouse: Engine) -> None:
    """Network and partner pages read grouped rows (per period, per partner), not deals:
    every statement over the stamp ledger is an aggregate, and adding deals adds no row."""
    _world(warehouse)

    def ledger_rows() -> dict[str, int]:
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
            if "attribution_stamps" in statement:
                seen.append((statement, params))

        event.listen(warehouse, "before_cursor_execute", record)
        try:
            with client_for(warehouse) as client:
                for url in ("/api/v1/network", "/api/v1/partners", "/api/v1/partners/p-full"):
                    assert client.get(url).status_code == 200
        finally:
            event.remove(warehouse, "before_cursor_execute", record)
        out = {}
        raw = warehouse.raw_connection()
        try:
            for statement, params in seen:
                assert "GROUP BY" in statement.upper(), statement
                cur = raw.cursor()
                cur.execute(statement, params)
                out[statement] = len(cur.fetchall())
        finally:
            raw.close()
        return out

    before = ledger_rows()
    with Session(warehouse) as s, s.begin():
        for i in range(40):
            s.add(Opportunity(
                source="salesforce", external_id=f"006X{i}", account_external_id="001A",
                name=f"More {i}", stage="won", status="won" if i % 3 else "lost",
                amount=Decimal(1000 + i), currency="USD", close_date=date(2026, 4, 1 + i % 28),
                created_at=T0, modified_at=T0, ingested_at=T0))
    with Session(warehouse) as s, s.begin():
        stamp_closed(s, AttributionConfig(), now=datetime(2026, 6, 3, tzinfo=UTC))
    assert before and ledger_rows() == before


def test_the_migration_fills_credit_populations_from_the_evidence(warehouse: Engine) -> None:
    """Credits stamped before migration 0010 get the population their evidence recorded."""
    _world(warehouse)
    query = select(AttributionCredit.stamp_id, AttributionCredit.partner_id,
                   AttributionCredit.population).order_by(AttributionCredit.id)
    with Session(warehouse) as s:
        before = s.execute(query).all()
    assert any(p is None for _, _, p in before) and any(p for _, _, p in before)
    with warehouse.begin() as conn:
        conn.execute(update(AttributionCredit).values(population=None))
        migration = importlib.import_module("migrations.versions.0010_credit_population")
        migration.fill(conn)
    with Session(warehouse) as s:
        assert s.execute(query).all() == before
