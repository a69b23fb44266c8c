"""Routing: turns a Request into a Response, applying faults, auth and rate limits in order.

Order of checks, as a request meets HubSpot's edge then its API: injected infrastructure
faults (dropped connection, 503), authentication (401, no rate-limit headers: the call
cannot be attributed to an account), rate limits (429, real or injected), then the handler.
Every answered request that passed authentication carries the rate-limit headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.common import Request, Response, Traffic, echoed_request, json_response
from sandbox.hubspot.auth import Auth, HubSpotFaults, TokenKind, missing_scopes
from sandbox.hubspot.currencies import SCOPE as CURRENCIES_SCOPE
from sandbox.hubspot.currencies import Currencies
from sandbox.hubspot.limits import SECONDLY, TEN_SECONDLY, RateLimits, rate_limit_body
from sandbox.hubspot.meta import MetaHandlers
from sandbox.hubspot.objects import ObjectHandlers
from sandbox.hubspot.owners import SCOPE as OWNERS_SCOPE
from sandbox.hubspot.owners import Owners
from sandbox.hubspot.schema import OBJECT_ALIASES
from sandbox.hubspot.store import Portal
from sandbox.hubspot.wire import ApiError, error_response

Handler = Callable[[Request, dict[str, str]], Response]
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str  # the traffic key, e.g. "GET /crm/v3/objects/{type}/{id}"
    handler: Handler
    search: bool = False
    scope: str | None = None  # a scope this sandbox checks (see Auth.revoke)


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{regex}/?$")


class HubSpotApp:
    def __init__(
        self, portal: Portal, auth: Auth, limits: RateLimits, faults: HubSpotFaults,
        traffic: Traffic, currencies: Currencies, owners: Owners,
    ) -> None:
        self.portal, self.auth, self.limits = portal, auth, limits
        self.faults, self.traffic = faults, traffic
        # The last answer per paged endpoint, for the `repeat_page` fault.
        self.last_pages: dict[str, Response] = {}
        objects, meta = ObjectHandlers(portal), MetaHandlers(portal)
        self.objects = objects
        t = self._object_type
        self.routes: list[Route] = []
        add = self._add
        add("POST", "/crm/v3/objects/{type}/search",
            lambda r, p: objects.search(r, t(p)), search=True)
        add("POST", "/crm/v3/objects/{type}/batch/read",
            lambda r, p: objects.batch_read(r, t(p)))
        add("POST", "/crm/v3/objects/{type}/batch/update",
            lambda r, p: objects.batch_update(r, t(p)))
        add("GET", "/crm/v3/objects/{type}", lambda r, p: objects.list_page(r, t(p)))
        add("POST", "/crm/v3/objects/{type}", lambda r, p: objects.create(r, t(p)))
        add("GET", "/crm/v3/objects/{type}/{id}", lambda r, p: objects.get(r, t(p), p["id"]))
        add("PATCH", "/crm/v3/objects/{type}/{id}",
            lambda r, p: objects.update(r, t(p), p["id"]))
        add("DELETE", "/crm/v3/objects/{type}/{id}", lambda r, p: objects.archive(t(p), p["id"]))
        add("GET", "/crm/v3/properties/{type}/groups", lambda r, p: meta.list_groups(t(p)))
        add("POST", "/crm/v3/properties/{type}/groups",
            lambda r, p: meta.create_group(r, t(p)))
        add("GET", "/crm/v3/properties/{type}/groups/{name}",
            lambda r, p: meta.get_group(t(p), p["name"]))
        add("GET", "/crm/v3/properties/{type}", lambda r, p: meta.list_properties(t(p)))
        add("POST", "/crm/v3/properties/{type}", lambda r, p: meta.create_property(r, t(p)))
        add("GET", "/crm/v3/properties/{type}/{name}",
            lambda r, p: meta.get_property(t(p), p["name"]))
        add("GET", "/crm/v3/pipelines/{type}", lambda r, p: meta.pipelines(t(p), None))
        add("GET", "/crm/v3/pipelines/{type}/{pipeline}",
            lambda r, p: meta.pipelines(t(p), p["pipeline"]))
        add("GET", "/crm/v4/objects/{type}/{id}/associations/{to}",
            lambda r, p: meta.object_associations(r, t(p), p["id"], t(p, "to")))
        add("POST", "/crm/v4/associations/{type}/{to}/batch/read",
            lambda r, p: meta.batch_associations(r, t(p), t(p, "to")))
        add("GET", "/settings/v3/currencies/exchange-rates",
            lambda r, p: currencies.list_rates(r), scope=CURRENCIES_SCOPE)
        add("GET", "/crm/v3/owners", lambda r, p: owners.list_page(r), scope=OWNERS_SCOPE)

    def _add(self, method: str, template: str, handler: Handler, search: bool = False,
             scope: str | None = None) -> None:
        self.routes.append(Route(method, _compile(template), f"{method} {template}", handler,
                                 search, scope))

    @staticmethod
    def _object_type(params: dict[str, str], key: str = "type") -> str:
        raw = params[key]
        object_type = OBJECT_ALIASES.get(raw.lower())
        if object_type is None:
            raise ApiError(400, f"Unable to infer object type from: {raw}", "VALIDATION_ERROR")
        return object_type

    def _match(self, request: Request) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method != request.method:
                continue
            m = route.pattern.match(request.path)
            if m:
                return route, m.groupdict()
        return None

    def __call__(self, request: Request) -> Response:
        echo = self.faults.echo_status()
        if echo is not None:
            self.traffic.count(f"echo {echo}")
            return error_response(echo, echoed_request(request),
                                  {500: "INTERNAL_ERROR", 400: "VALIDATION_ERROR",
                                   401: "INVALID_AUTHENTICATION"}[echo])
        if request.method == "POST" and request.path.rstrip("/") == "/oauth/v1/token":
            self.traffic.count("POST /oauth/v1/token")
            return self.auth.token_endpoint(request)
        matched = self._match(request)
        if matched is None:
            self.traffic.count(f"{request.method} (unrouted)")
            return error_response(404, f"No route for {request.method} {request.path}",
                                  "OBJECT_NOT_FOUND")
        route, params = matched
        key = route.template
        if "type" in params:  # count per concrete object type: "GET /crm/v3/objects/deals"
            key = key.replace("{type}", params["type"], 1)
        self.traffic.count(key)

        if self.faults.fire("drop"):
            return Response(0, drop=True)
        if self.faults.fire("unavailable"):
            return error_response(503, "Service Unavailable", "SERVICE_UNAVAILABLE")

        kind = self.auth.check(request)
        if isinstance(kind, Response):
            return kind
        if route.scope is not None and route.scope in self.auth.revoked:
            return missing_scopes(route.scope)
        day = self.portal.clock.now_ms() // _DAY_MS
        decision = self.limits.admit(search=route.search, day=day,
                                     with_daily=kind is TokenKind.PRIVATE_APP)
        if decision.refused is not None:
            return json_response(429, rate_limit_body(decision.refused), decision.headers)
        if self.faults.fire("rate_limit"):  # a spurious 429, headers and all
            policy = SECONDLY if route.search else TEN_SECONDLY
            return json_response(429, rate_limit_body(policy), decision.headers)
        paged, continuation = _paging(route, request)
        replay = self.last_pages.get(key) if continuation else None
        if replay is not None and self.faults.fire("repeat_page"):
            # A stuck cursor: the next page is the previous answer again, verbatim.
            response = Response(replay.status, replay.body, dict(replay.headers))
        else:
            try:
                response = route.handler(request, params)
            except ApiError as exc:
                response = exc.response()
            if paged and response.status == 200:
                self.last_pages[key] = response
        response.headers.update(decision.headers)
        return response


def _paging(route: Route, request: Request) -> tuple[bool, bool]:
    """(a paged listing, a next-page request) for the `repeat_page` fault: the list endpoint
    continues with `after`, search with a non-zero offset."""
    if route.search:
        try:
            body = request.json()
        except ValueError:
            return True, False
        after = body.get("after") if isinstance(body, dict) else None
        return True, str(after or "0") != "0"
    if route.method == "GET" and route.template in ("GET /crm/v3/objects/{type}",
                                                    "GET /crm/v3/owners"):
        return True, bool(request.arg("after"))
    return False, False
