"""hubspot-api-client set up for ecosync: auth, TLS, no hidden retries, pacing, accounting.

Every request goes through ``HubSpotClient.call``: budget check, pacing, the one retry policy
(errors.py), rate-limit headers read from every response (success or error), and the JSON
body parsed by us. Calls use the generated ``*_with_http_info`` methods with
``_preload_content=False`` so that the response headers are visible and the payload stays a
plain dict (the normalizers are pure functions of HubSpot's JSON, and skipping the generated
models' deserialisation is several times faster).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from hubspot import HubSpot
from urllib3.util.retry import Retry

from connectors.base import (
    MAX_ATTEMPTS,
    Action,
    AuthFailed,
    BudgetExhausted,
    RateLimited,
    TransientError,
    retry_policy,
)
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.errors import (
    HubSpotApiError,
    MissingScopes,
    Verdict,
    classify,
    decode_body,
)
from connectors.hubspot.limits import Budget, Pacer

log = structlog.get_logger("ecosync.connectors.hubspot")
# urllib3 inside hubspot-api-client re-sends GETs answered 429/413/503 with a Retry-After on
# its own (3 times by default), invisibly. `total=False` disables every kind of retry and
# redirect-following; errors surface at once to our single policy.
NO_RETRY = Retry(total=False, respect_retry_after_header=False, raise_on_status=False)
# Refresh an OAuth access token this long before HubSpot says it expires.
REFRESH_MARGIN = timedelta(seconds=120)
TOKEN_ENDPOINT = "POST /oauth/v1/token"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class HubSpotClient:
    """One portal connection. Not thread-safe for pacing purposes; one per sync worker."""

    def __init__(
        self,
        config: HubSpotConfig,
        *,
        now: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.now = now
        self.sleep = sleep
        self.pacer = Pacer(burst_share=config.max_burst_share,
                           search_per_s=config.search_requests_per_second,
                           clock=monotonic, sleep=sleep)
        self.budget = Budget(max_share=config.max_api_share)
        self.oauth = config.auth == "oauth"
        self._token: str | None = None if self.oauth else config.access_token
        self._token_expires_at: datetime | None = None
        self._apis: dict[str, Any] = {}

    # ---- the generated client ----------------------------------------------------------------

    def _hubspot(self, token: str | None) -> HubSpot:
        settings: dict[str, Any] = {"host": self.config.base_url.rstrip("/"), "retry": NO_RETRY}
        if self.config.ca_bundle:
            settings["ssl_ca_cert"] = self.config.ca_bundle
        return HubSpot(access_token=token, **settings)

    def api(self, dotted: str) -> Any:
        """A cached sub-API such as ``crm.companies.basic_api``.

        Every attribute access on ``HubSpot`` builds a new ApiClient with its own urllib3
        pool, i.e. a new TLS handshake per call; caching keeps connections alive.
        """
        api = self._apis.get(dotted)
        if api is None:
            api = self._hubspot(self._token)
            for part in dotted.split("."):
                api = getattr(api, part)
            self._apis[dotted] = api
        return api

    def _set_token(self, token: str) -> None:
        self._token = token
        for api in self._apis.values():
            api.api_client.configuration.access_token = token

    # ---- OAuth -------------------------------------------------------------------------------

    def refresh_token(self) -> None:
        """Exchange the refresh token for a new access token (HubSpot OAuth v1)."""
        cfg = self.config
        api = self.api("oauth.tokens_api")
        self.budget.count(TOKEN_ENDPOINT)
        try:
            raw = api.create_with_http_info(
                grant_type="refresh_token", client_id=cfg.client_id,
                client_secret=cfg.client_secret, refresh_token=cfg.refresh_token,
                _preload_content=False, _request_timeout=cfg.timeout_seconds,
            )
        except Exception as exc:
            verdict = classify(exc, can_refresh=False)
            if verdict.action in (Action.RETRY, Action.THROTTLE):
                raise TransientError(f"{cfg.name}: HubSpot token endpoint: {verdict.message}") \
                    from exc
            # The OAuth v1 endpoint puts its error code in `status` (e.g. BAD_REFRESH_TOKEN).
            code = verdict.body.get("status")
            code = code if code and code != "error" else verdict.category
            raise AuthFailed(
                f"{cfg.name}: HubSpot refused the OAuth refresh ({verdict.status} {code}: "
                f"{verdict.message}); check crm.hubspot.client_id, crm.hubspot.client_secret "
                f"and crm.hubspot.refresh_token"
            ) from exc
        body = decode_body(raw.data)
        raw.release_conn()
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthFailed(f"{cfg.name}: HubSpot's token endpoint returned no access_token; "
                             "check crm.hubspot.refresh_token")
        expires_in = float(body.get("expires_in") or 1800)
        self._token_expires_at = self.now() + timedelta(seconds=expires_in)
        self._set_token(token)

    def _ensure_token(self) -> None:
        if not self.oauth:
            if not self._token:
                raise AuthFailed(f"{self.config.name}: crm.hubspot.access_token is empty; set "
                                 "it to the private app's access token")
            return
        expires = self._token_expires_at
        if self._token is None or expires is None or self.now() >= expires - REFRESH_MARGIN:
            self.refresh_token()

    # ---- the one way to call HubSpot -----------------------------------------------------------

    def call(self, endpoint: str, dotted: str, method: str, *args: Any, search: bool = False,
             **kwargs: Any) -> Response:
        """Call ``dotted.method_with_http_info(*args, **kwargs)`` under our retry policy.

        ``endpoint`` is the accounting key, e.g. ``POST /crm/v3/objects/deals/search``.
        Raises AuthFailed, RateLimited, BudgetExhausted, TransientError, or HubSpotApiError
        for a refusal that retrying cannot fix (the caller decides what it means).
        """
        return self._call(endpoint, lambda: getattr(self.api(dotted), f"{method}_with_http_info"),
                          args, kwargs, search=search)

    def get(self, path: str, query: list[tuple[str, str]]) -> Response:
        """GET an endpoint hubspot-api-client 12 has no module for (the settings currencies
        API), through a generated ApiClient all the same: its TLS settings, connection pool,
        token and error classes, under the same policy and accounting as every call."""

        def fn() -> Any:
            api_client = self.api("crm.properties.core_api").api_client

            def get_with_http_info(**kwargs: Any) -> Any:
                return api_client.call_api(
                    path, "GET", {}, query, {"Accept": "application/json"},
                    response_types_map={}, auth_settings=["oauth2"], **kwargs)

            return get_with_http_info

        return self._call(f"GET {path}", fn, (), {}, search=False)

    def _call(self, endpoint: str, resolve: Callable[[], Callable[..., Any]],
              args: tuple[Any, ...], kwargs: dict[str, Any], *, search: bool) -> Response:
        refreshed = False

        def judge(exc: BaseException) -> Verdict:
            return classify(exc, can_refresh=self.oauth and not refreshed,
                            interval_s=self.pacer.interval_s)

        def on_retry(verdict: Verdict, wait_s: float) -> None:
            nonlocal refreshed
            log.warning("hubspot.retry", endpoint=endpoint, action=verdict.action.value,
                        status=verdict.status, policy=verdict.policy,
                        wait_s=round(wait_s, 2), message=verdict.message[:200])
            if verdict.action is Action.REAUTH:
                refreshed = True
                self.refresh_token()
            elif verdict.action is Action.THROTTLE:
                self.budget.rate_limited[verdict.policy or "UNKNOWN"] += 1
                self.pacer.hold(wait_s)

        def attempt() -> Response:
            self._ensure_token()
            self.budget.check(self.config.name)
            self.pacer.before(search=search)
            self.budget.count(endpoint)
            fn = resolve()
            try:
                raw = fn(*args, _preload_content=False,
                         _request_timeout=self.config.timeout_seconds, **kwargs)
            except Exception as exc:
                self._observe(getattr(exc, "headers", None))
                raise
            data = raw.data
            raw.release_conn()
            headers = {k.lower(): v for k, v in raw.headers.items()}
            self._observe(headers)
            body: dict[str, Any] = json.loads(data) if data else {}
            return Response(raw.status, body, headers)

        try:
            response: Response = retry_policy(judge, sleep=self.sleep, on_retry=on_retry)(attempt)
            return response
        except (AuthFailed, BudgetExhausted, TransientError, RateLimited):
            raise
        except Exception as exc:
            raise self._translate(endpoint, judge(exc)) from exc

    def _observe(self, headers: Any) -> None:
        if not headers:
            return
        lowered = {str(k).lower(): str(v) for k, v in dict(headers).items()}
        self.pacer.observe(lowered)
        self.budget.observe(lowered)

    def _translate(self, endpoint: str, verdict: Verdict) -> Exception:
        name = self.config.name
        what = f"{name}: {endpoint}"
        if verdict.action in (Action.AUTH_FAILED, Action.REAUTH):
            if verdict.category == "MISSING_SCOPES":
                return MissingScopes(f"{what}: HubSpot refused the call (403 MISSING_SCOPES: "
                                     f"{verdict.message}); grant the app the scope "
                                     f"{' '.join(required_scopes(verdict.body)) or 'it needs'}")
            if verdict.status == 403:
                return AuthFailed(f"{what}: HubSpot refused the call (403 {verdict.category}: "
                                  f"{verdict.message}); grant the app the missing scopes")
            key = ("crm.hubspot.refresh_token / client_id / client_secret" if self.oauth
                   else "crm.hubspot.access_token")
            return AuthFailed(f"{what}: HubSpot rejected the credentials (401 "
                              f"{verdict.category}); check {key}")
        if verdict.action is Action.MISCONFIGURED:
            return AuthFailed(f"{what}: TLS verification failed ({verdict.message}); set "
                              "crm.hubspot.ca_bundle to the CA that signs crm.hubspot.base_url")
        if verdict.action in (Action.RATE_LIMITED, Action.THROTTLE):
            return RateLimited(f"{what}: HubSpot rate limit {verdict.policy}: "
                               f"{verdict.message}", verdict.retry_after_s)
        if verdict.action is Action.RETRY and not verdict.status:
            # No HTTP answer at all: a connection refused, reset or timed out.
            return TransientError(
                f"{what}: HubSpot unreachable at {self.config.base_url} after {MAX_ATTEMPTS} "
                f"attempts ({verdict.message[:200]}); check crm.hubspot.base_url, that this "
                "host can reach it (DNS, firewall, a proxy) and crm.hubspot.timeout_seconds, "
                "then run `ecosync doctor`")
        if verdict.action is Action.RETRY:
            return TransientError(f"{what}: HubSpot kept failing after {MAX_ATTEMPTS} attempts "
                                  f"({verdict.status} {verdict.message})".strip())
        return HubSpotApiError(verdict)


def required_scopes(body: Mapping[str, Any]) -> list[str]:
    """The scopes a MISSING_SCOPES body names (`errors[].context.requiredGranularScopes`)."""
    out: list[str] = []
    for error in body.get("errors") or ():
        context = error.get("context") if isinstance(error, Mapping) else None
        for scope in (context or {}).get("requiredGranularScopes") or ():
            out.append(str(scope))
    return out
