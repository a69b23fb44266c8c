"""The network: ecosystem-influenced revenue per quarter, each won deal counted once however
many partners touched it; the per-partner view second (summing it double counts).

The figures are `ecosync report attribution`'s revenue and partner sections over the same
deals and the same sharing (sync.reports.deals: active stamps, corporate currency at the
close date, hidden partners absent, counts-only partners pooled), aggregated in SQL.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from sync.attribution.periods import Quarter
from sync.reports import deals
from sync.reports.attribution import PARTNER_COLUMNS, REVENUE_COLUMNS
from sync.reports.formats import Column
from sync.sharing import POOLED_KEY, Policies
from sync.web.queries.common import Chart, Col, Table, View


def _cols(columns: tuple[Column, ...]) -> tuple[Col, ...]:
    return tuple(Col(c.key, c.title, c.numeric) for c in columns)


def revenue_rows(session: Session, pol: Policies, anchor: Quarter,
                 currency: str) -> list[dict[str, Any]]:
    """The report's revenue section (sync.reports.attribution.revenue_rows), from SQL."""
    figures = deals.network(session, pol, anchor)
    out = []
    for label in [q.label for q in anchor.trailing()] + [deals.TRAILING]:
        n = figures.network[label]
        out.append({
            "period": label, "won_deals": n.won_deals, "won_revenue": n.won_revenue,
            "influenced_deals": n.influenced_deals,
            "ecosystem_influenced_revenue": n.influenced_revenue,
            "influenced_share_pct": n.influenced_share, "sourced_deals": n.sourced_deals,
            "sourced_revenue": n.sourced_revenue,
            "unconverted_deals": figures.unconverted[label], "currency": currency})
    return out


def partner_rows(session: Session, pol: Policies, anchor: Quarter) -> list[dict[str, Any]]:
    """The report's partners section (sync.reports.attribution.partner_rows), from SQL."""
    per = deals.by_partner(session, pol, anchor)
    return [{"period": label, "partner_id": None if r.key == POOLED_KEY else r.key,
             "partner": r.label, "won_deals": r.won_deals, "sourced_deals": r.sourced_deals,
             "influenced_revenue": r.influenced_revenue, "sourced_revenue": r.sourced_revenue,
             "attributed_revenue": r.attributed_revenue}
            for label in (anchor.label, deals.TRAILING) for r in per[label]]


def network(session: Session, pol: Policies, today: date, currency: str) -> View:
    anchor = Quarter.of(today)
    revenue = revenue_rows(session, pol, anchor, currency)
    partners = partner_rows(session, pol, anchor)
    for r in partners:
        if r.get("partner_id"):
            r["_href"] = f"/partners/{r['partner_id']}"
    quarters = [r for r in revenue if r["period"] != deals.TRAILING]
    chart = Chart("revenue", f"Won and ecosystem-influenced revenue per quarter ({currency})", {
        "data": [
            {"type": "bar", "name": "won revenue", "x": [r["period"] for r in quarters],
             "y": [r["won_revenue"] for r in quarters], "marker": {"color": "#9fb3c8"}},
            {"type": "bar", "name": "ecosystem-influenced", "x": [r["period"] for r in quarters],
             "y": [r["ecosystem_influenced_revenue"] for r in quarters],
             "marker": {"color": "#1f5fbf"}}],
        "layout": {"barmode": "group", "yaxis": {"title": {"text": currency}}}})
    ttm = revenue[-1]
    summary = [f"Trailing 12 months: {ttm['influenced_deals']} of {ttm['won_deals']} won deals "
               f"were partner-influenced, {ttm['ecosystem_influenced_revenue']:,} {currency} "
               f"({ttm['influenced_share_pct'] or 0}% of won revenue), each deal counted once."]
    cols = _cols(PARTNER_COLUMNS)
    cols = (*cols[:1], Col("partner", "Partner", link="_href"), *cols[2:])
    return View("Network: ecosystem-influenced revenue", facts={
        "quarter": anchor.label, "currency": currency, "summary": summary},
        tables=[Table("revenue", "Per quarter (each won deal once)", _cols(REVENUE_COLUMNS),
                      revenue),
                Table("partners", "Per partner (a deal counts for each partner on it)", cols,
                      partners)],
        charts=[chart])
