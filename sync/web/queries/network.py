"""The network: ecosystem-influenced revenue per quarter, each won deal counted once however
many partners touched it; the per-partner view second (summing it double counts).

The figures are `ecosync report attribution`'s revenue and partner sections, over the same
deals (sync.reports.attribution: active stamps, corporate currency at the close date,
hidden partners absent, counts-only partners pooled).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from sync.attribution.periods import Quarter
from sync.reports.attribution import (
    PARTNER_COLUMNS,
    REVENUE_COLUMNS,
    load_deals,
    partner_rows,
    partner_shares,
    revenue_rows,
)
from sync.reports.formats import Column
from sync.web.queries.common import Chart, Col, Table, View


def _cols(columns: tuple[Column, ...]) -> tuple[Col, ...]:
    return tuple(Col(c.key, c.title, c.numeric) for c in columns)


def network(session: Session, today: date, currency: str) -> View:
    anchor = Quarter.of(today)
    deals = load_deals(session, anchor.trailing()[0].start, anchor.end,
                       partner_shares(session))
    revenue = revenue_rows(deals, anchor, currency)
    partners = partner_rows(deals, anchor)
    for r in partners:
        if r.get("partner_id"):
            r["_href"] = f"/partners/{r['partner_id']}"
    quarters = [r for r in revenue if r["period"] != "trailing 12 months"]
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
