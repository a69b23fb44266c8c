"""The FastAPI application: a thin layer over sync.web.queries, read-only, same-origin only.

Every page has a JSON twin under /api/v1 (same path, same parameters) listed in the OpenAPI
document; `?format=csv&table=NAME` downloads one of its tables. Nothing here decides what a
partner shares: the query functions take a `sync.sharing.Policies` and build from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class Guard:
    """Every answer's security headers, the gate, and the server time (`Server-Timing: app`,
    what bench/web.py reads). A plain ASGI middleware: Starlette's BaseHTTPMiddleware costs
    a task and a stream per request, the largest fixed cost a page had."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                took = (time.perf_counter() - start) * 1000
                extra.append((b"server-timing", f"app;dur={took:.2f}".encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        path: str = scope["path"]
        if not path.startswith(PUBLIC_PREFIXES):
            request = Request(scope)
            allowed, why = self.gate.check(request)
            if not allowed:
                get_logger("ecosync.web").warning(
                    "web request refused", path=path, reason=why,
                    client=request.client.host if request.client else None)
                await _refused(request)(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)


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

    app.add_middleware(Guard, gate=gate)

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
