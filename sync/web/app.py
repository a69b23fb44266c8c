"""The FastAPI application: a thin layer over sync.web.queries, read-only, same-origin only.

Every page has a JSON twin under /api/v1 (same path, same parameters) listed in the OpenAPI
document; `?format=csv&table=NAME` downloads one of its tables. Nothing here decides what a
partner shares: the query functions take a `sync.sharing.Policies` and build from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import Engine

from sync.config import Config
from sync.logs import get_logger
from sync.web.auth import COOKIE, Gate, session_cookie
from sync.web.deps import as_json_error
from sync.web.render import SECURITY_HEADERS, page

STATIC = Path(__file__).parent / "static"
NAV = (("/matrix", "Matrix"), ("/accounts", "Accounts"), ("/partners", "Partners"),
       ("/network", "Network"), ("/operations", "Operations"))
PUBLIC_PREFIXES = ("/static/", "/login", "/favicon.ico")


def plotly_js() -> Path:
    """plotly.js as the installed plotly package ships it: no page loads from the network."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(engine: Engine, config: Config, *,
               clock: Callable[[], datetime] | None = None) -> FastAPI:
    import plotly

    app = FastAPI(title="ecosync", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/v1/openapi.json",
                  description="Read-only account mapping, accounts, partners, network and "
                              "operations views of the ecosync warehouse.")
    app.state.engine = engine
    app.state.config = config
    app.state.clock = clock or (lambda: datetime.now(UTC))
    app.state.nav = NAV
    app.state.plotly_url = f"/static/plotly-{plotly.__version__}.min.js"
    gate = Gate.from_config(config.web)

    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        response: Response
        if path.startswith(PUBLIC_PREFIXES):
            response = await call_next(request)
        else:
            allowed, why = gate.check(request)
            if allowed:
                response = await call_next(request)
            else:
                get_logger("ecosync.web").warning("web request refused", path=path, reason=why,
                            client=request.client.host if request.client else None)
                response = _refused(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/static/plotly-{version}.min.js", include_in_schema=False)
    def plotly_file(version: str) -> Response:
        return FileResponse(plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        files = {p.name: p for p in STATIC.iterdir()}
        if name not in files:
            return Response("not found\n", status_code=404, media_type="text/plain")
        kind = {"js": "text/javascript", "css": "text/css",
                "svg": "image/svg+xml"}[name.rsplit(".", 1)[-1]]
        return FileResponse(files[name], media_type=kind,
                            headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        return page(request, "login.html", None, next=_local(next), error=None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        presented = (form.get("token") or [""])[0]
        target = _local((form.get("next") or ["/"])[0])
        if not gate.token_matches(presented):
            get_logger("ecosync.web").warning("web login refused", reason="wrong token",
                        client=request.client.host if request.client else None)
            return page(request, "login.html", None, status=401, next=target,
                        error="That token is not the one this server was started with.")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, session_cookie(gate.token), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https",
                            path="/")
        return response

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/matrix", status_code=303)

    from sync.web import routes

    routes.register(app)
    return app


def _local(target: str) -> str:
    """Only a path on this server: the login form never redirects elsewhere."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _refused(request: Request) -> Response:
    wants_page = (request.method == "GET" and not request.url.path.startswith("/api/")
                  and "text/html" in request.headers.get("accept", ""))
    response: Response
    if wants_page:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = page(request, "login.html", None, status=401, next=target, error=None)
    else:
        response = as_json_error("authentication required: send Authorization: Bearer TOKEN")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response
