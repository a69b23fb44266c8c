"""Pages and their /api/v1 twins. Each handler builds one View from a query function and
renders it; parameters are declared once per view and shared by the page and the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from sync.attribution.open_pipeline import OpenPipeline, open_pipeline
from sync.web.deps import Ctx, CtxDep, as_json_error, query_without, respond
from sync.web.queries import account, accounts, matrix, network, operations, partners
from sync.web.queries.common import Paging, UnknownPartner, View
from sync.web.render import page

Pop = Literal["customer", "open_opportunity", "prospect"]
Fmt = Annotated[Literal["json", "csv"], Query(description="json, or csv for one table")]
TableName = Annotated[str | None, Query(description="the table a CSV download holds")]
PageNo = Annotated[int, Query(alias="page", ge=1, le=100_000)]

api = APIRouter(prefix="/api/v1")
pages = APIRouter(include_in_schema=False)


def _paging(ctx: Ctx, page_no: int) -> Paging:
    return Paging(page_no, ctx.config.web.page_size)


def _not_found(request: Request, message: str, api_call: bool) -> Response:
    if api_call:
        return as_json_error(message, 404)
    return page(request, "error.html", None, status=404, message=message)


def _guard(request: Request, api_call: bool, build: Callable[[], View],
           render: Callable[[View], Response]) -> Response:
    try:
        view = build()
    except UnknownPartner:
        return _not_found(request, "no such partner is shared by name", api_call)
    except LookupError as exc:
        return _not_found(request, str(exc.args[0]) if exc.args else "not found", api_call)
    return render(view)


# --- Matrix -----------------------------------------------------------------------------

@api.get("/matrix", summary="Account mapping matrix (one partner, the counts-only pool, "
                            "or all partners)")
def api_matrix(ctx: Ctx = CtxDep, partner: str = "", format: Fmt = "json",
               table: TableName = None) -> Response:
    return _guard(ctx.request, True, lambda: matrix.grid(ctx.session, ctx.policies, partner),
                  lambda v: respond(ctx, lambda: v, format, table))


@pages.get("/matrix")
def page_matrix(ctx: Ctx = CtxDep, partner: str = "") -> Response:
    def render(view: View) -> Response:
        return page(ctx.request, "matrix.html", view,
                    options=matrix.partner_options(ctx.policies), selected=partner)
    return _guard(ctx.request, False,
                  lambda: matrix.grid(ctx.session, ctx.policies, partner), render)


@api.get("/matrix/cell", summary="The named accounts behind one matrix cell (paged)")
def api_matrix_cell(ours: Pop, theirs: Pop, ctx: Ctx = CtxDep, partner: str = "",
                    page_no: PageNo = 1, format: Fmt = "json",
                    table: TableName = None) -> Response:
    return _guard(ctx.request, True,
                  lambda: matrix.cell(ctx.session, ctx.policies, ours, theirs, partner,
                                      _paging(ctx, page_no)),
                  lambda v: respond(ctx, lambda: v, format, table))


@pages.get("/matrix/cell")
def page_matrix_cell(ours: Pop, theirs: Pop, ctx: Ctx = CtxDep, partner: str = "",
                     page_no: PageNo = 1) -> Response:
    return _guard(ctx.request, False,
                  lambda: matrix.cell(ctx.session, ctx.policies, ours, theirs, partner,
                                      _paging(ctx, page_no)),
                  lambda v: page(ctx.request, "view.html", v,
                                 back=("/matrix?partner=" + partner, "Back to the matrix"),
                                 paging_query=query_without(ctx.request, "page")))


# --- Accounts ---------------------------------------------------------------------------

def _money(ctx: Ctx) -> OpenPipeline:
    return open_pipeline(ctx.session, ctx.config.attribution, ctx.now.date())


def _ranked(ctx: Ctx, filters: accounts.Filters, page_no: int) -> View:
    return accounts.ranked(ctx.session, ctx.policies, _money(ctx), filters,
                           _paging(ctx, page_no))


@api.get("/accounts", summary="Accounts ranked by overlap density and open pipeline (paged)")
def api_accounts(ctx: Ctx = CtxDep, partner: str = "", population: Pop | None = None,
                 our_population: Pop | None = None, owner: str = "", country: str = "",
                 page_no: PageNo = 1, format: Fmt = "json",
                 table: TableName = None) -> Response:
    f = accounts.Filters(partner, population or "", our_population or "", owner, country)
    return _guard(ctx.request, True, lambda: _ranked(ctx, f, page_no),
                  lambda v: respond(ctx, lambda: v, format, table))


@pages.get("/accounts")
def page_accounts(ctx: Ctx = CtxDep, partner: str = "", population: Pop | None = None,
                  our_population: Pop | None = None, owner: str = "", country: str = "",
                  page_no: PageNo = 1) -> Response:
    f = accounts.Filters(partner, population or "", our_population or "", owner, country)
    return _guard(ctx.request, False, lambda: _ranked(ctx, f, page_no),
                  lambda v: page(ctx.request, "accounts.html", v, filters=f,
                                 paging_query=query_without(ctx.request, "page")))


def _account(ctx: Ctx, source: str, external_id: str, page_no: int) -> View:
    return account.account_view(ctx.session, ctx.policies, _money(ctx), ctx.config.matching,
                                source, external_id, Paging(page_no, 20))


@api.get("/accounts/{source}/{external_id}",
         summary="One account: partners, contacts, history, opportunities, stamps, matches")
def api_account(source: str, external_id: str, ctx: Ctx = CtxDep, page_no: PageNo = 1,
                format: Fmt = "json", table: TableName = None) -> Response:
    return _guard(ctx.request, True, lambda: _account(ctx, source, external_id, page_no),
                  lambda v: respond(ctx, lambda: v, format, table))


@pages.get("/accounts/{source}/{external_id}")
def page_account(source: str, external_id: str, ctx: Ctx = CtxDep,
                 page_no: PageNo = 1) -> Response:
    return _guard(ctx.request, False, lambda: _account(ctx, source, external_id, page_no),
                  lambda v: page(ctx.request, "account.html", v,
                                 paging_query=query_without(ctx.request, "page"),
                                 paged=["opportunities"],
                                 back=("/accounts", "All accounts")))


# --- Operations -------------------------------------------------------------------------

def _ops(ctx: Ctx, page_no: int) -> View:
    return operations.operations(ctx.session, ctx.policies, ctx.config, _paging(ctx, page_no))


@api.get("/operations", summary="Recent runs, API budget per CRM, dead letters (paged)")
def api_operations(ctx: Ctx = CtxDep, page_no: PageNo = 1, format: Fmt = "json",
                   table: TableName = None) -> Response:
    return respond(ctx, lambda: _ops(ctx, page_no), format, table)


@pages.get("/operations")
def page_operations(ctx: Ctx = CtxDep, page_no: PageNo = 1) -> Response:
    return page(ctx.request, "view.html", _ops(ctx, page_no),
                paging_query=query_without(ctx.request, "page"), paged=["runs", "dead_letters"])


# --- Partners and network ----------------------------------------------------------------

@api.get("/partners", summary="Partners: working-set test, overlaps, revenue")
def api_partners(ctx: Ctx = CtxDep, format: Fmt = "json", table: TableName = None) -> Response:
    return respond(ctx, lambda: partners.partners_list(ctx.session, ctx.policies,
                                                       ctx.now.date()), format, table)


@pages.get("/partners")
def page_partners(ctx: Ctx = CtxDep) -> Response:
    return page(ctx.request, "view.html",
                partners.partners_list(ctx.session, ctx.policies, ctx.now.date()))


@api.get("/partners/{partner_id}", summary="One partner: overlaps over time, working set in "
                                           "words, revenue, with vs without")
def api_partner(partner_id: str, ctx: Ctx = CtxDep, format: Fmt = "json",
                table: TableName = None) -> Response:
    return _guard(ctx.request, True,
                  lambda: partners.partner_view(ctx.session, ctx.policies, partner_id, ctx.now),
                  lambda v: respond(ctx, lambda: v, format, table))


@pages.get("/partners/{partner_id}")
def page_partner(partner_id: str, ctx: Ctx = CtxDep) -> Response:
    return _guard(ctx.request, False,
                  lambda: partners.partner_view(ctx.session, ctx.policies, partner_id, ctx.now),
                  lambda v: page(ctx.request, "view.html", v, back=("/partners", "All partners")))


def _network(ctx: Ctx) -> View:
    return network.network(ctx.session, ctx.policies, ctx.now.date(),
                           ctx.config.attribution.corporate_currency.upper())


@api.get("/network", summary="Ecosystem-influenced revenue per quarter, then per partner")
def api_network(ctx: Ctx = CtxDep, format: Fmt = "json", table: TableName = None) -> Response:
    return respond(ctx, lambda: _network(ctx), format, table)


@pages.get("/network")
def page_network(ctx: Ctx = CtxDep) -> Response:
    return page(ctx.request, "view.html", _network(ctx))


def register(app: FastAPI) -> None:
    # The routes themselves, not a wrapped router: the OpenAPI document and the tests see
    # every path as it is served.
    app.router.routes.extend([*api.routes, *pages.routes])
