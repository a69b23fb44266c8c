"""A view as JSON, as CSV (one table) or as an HTML page, with the headers every answer
carries (strict Content-Security-Policy: scripts and styles from this server only)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from sync.reports.formats import csv_safe
from sync.web.queries.common import Table, View

TEMPLATES = Path(__file__).parent / "templates"
# Scripts and style sheets from this server only. plotly.js sets style attributes on the
# chart's SVG nodes, so attributes (never scripts) may be inline, and it inserts one fixed
# <style> element, allowed by its hash alone.
PLOTLY_STYLE_HASH = "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"
CSP = ("default-src 'none'; script-src 'self'; "
       f"style-src 'self' {PLOTLY_STYLE_HASH}; style-src-attr 'unsafe-inline'; "
       "img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}




def plain(value: Any) -> Any:
    """JSON-ready data: amounts as exact strings, times as ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def show(value: Any) -> str:
    """A cell on a page."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        # As precise as the figure is: money to the cent, percentages and lifts to 0.1.
        exponent = value.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return f"{value:,.{places}f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _environment() -> Environment:
    # CRM values are user-controlled: everything is escaped unless a template says otherwise
    # (and none does).
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["cell"] = show
    env.filters["tojson_attr"] = lambda v: json.dumps(plain(v), separators=(",", ":"))
    return env


JINJA = _environment()


def table_doc(t: Table) -> dict[str, Any]:
    return {"name": t.name, "title": t.title,
            "columns": [{"key": c.key, "title": c.title} for c in t.columns],
            "rows": plain(t.api_rows()), "page": t.page, "next_page": t.next_page,
            "note": t.note}


def view_doc(view: View) -> dict[str, Any]:
    return {"title": view.title, "facts": plain(view.facts),
            "tables": [table_doc(t) for t in view.tables],
            "charts": [{"name": c.name, "title": c.title, "figure": plain(c.figure)}
                       for c in view.charts]}


def as_json(view: View) -> Response:
    return JSONResponse(view_doc(view), headers={"Cache-Control": "no-store"})


def as_csv(view: View, table: str | None) -> Response:
    chosen = view.tables[0] if not table else view.table(table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in chosen.columns])
    for row in chosen.rows:
        writer.writerow([csv_safe(row.get(c.key)) for c in chosen.columns])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{chosen.name}.csv"',
        "Cache-Control": "no-store"})


def page(request: Request, template: str, view: View | None, status: int = 200,
         **extra: Any) -> HTMLResponse:
    html = JINJA.get_template(template).render(
        request=request, view=view, nav=request.app.state.nav, path=request.url.path,
        csv_base="/api/v1" + request.url.path, query=str(request.url.query),
        plotly=request.app.state.plotly_url, **extra)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
