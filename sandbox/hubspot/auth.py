"""Bearer-token auth: a private app token, OAuth refresh, and tokens that expire on demand."""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import parse_qs

from sandbox.common import Faults, Request, Response, json_response
from sandbox.hubspot.clock import Clock
from sandbox.hubspot.wire import error_response

ACCESS_TOKEN_TTL_S = 1800
AUTH_MISSING = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


@dataclass(slots=True)
class HubSpotFaults(Faults):
    """Seeded fault rates (``rate_limit``, ``unavailable``, ``drop``) plus OAuth token expiry."""

    token_call_budget: int | None = None

    def expire_token_after(self, n_calls: int | None) -> None:
        """OAuth access tokens stop working after ``n_calls`` API calls each (None: never)."""
        with self.lock:
            self.token_call_budget = n_calls


class TokenKind(Enum):
    PRIVATE_APP = "private_app"
    OAUTH = "oauth"


@dataclass(slots=True)
class _OAuthToken:
    issued_ms: int
    calls: int = 0


@dataclass(slots=True)
class Auth:
    clock: Clock
    faults: HubSpotFaults
    access_token: str = field(default_factory=lambda: f"pat-na1-{uuid.uuid4()}")
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    client_secret: str = field(default_factory=lambda: str(uuid.uuid4()))
    refresh_token: str = field(default_factory=lambda: f"na1-{secrets.token_hex(16)}")
    # Scopes the app was not granted (every scope is, unless revoked here).
    revoked: set[str] = field(default_factory=set)
    _oauth: dict[str, _OAuthToken] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self) -> str:
        token = f"CJ{secrets.token_urlsafe(48)}"
        with self._lock:
            self._oauth[token] = _OAuthToken(self.clock.now_ms())
        return token

    def check(self, request: Request) -> TokenKind | Response:
        """The kind of the presented token, or the 401 HubSpot answers with."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return error_response(401, AUTH_MISSING, "INVALID_AUTHENTICATION")
        if token == self.access_token:
            return TokenKind.PRIVATE_APP
        with self._lock:
            state = self._oauth.get(token)
            if state is None:
                return error_response(401, AUTH_MISSING, "INVALID_AUTHENTICATION")
            age_s = (self.clock.now_ms() - state.issued_ms) / 1000
            budget = self.faults.token_call_budget
            if age_s >= ACCESS_TOKEN_TTL_S or (budget is not None and state.calls >= budget):
                minutes = max(0, int((age_s - ACCESS_TOKEN_TTL_S) // 60))
                return error_response(
                    401,
                    f"The OAuth token used to make this call expired {minutes} minute(s) ago.",
                    "EXPIRED_AUTHENTICATION",
                )
            state.calls += 1
        return TokenKind.OAUTH

    def token_endpoint(self, request: Request) -> Response:
        """POST /oauth/v1/token (form-encoded, no Authorization header)."""
        form = {k: v[-1] for k, v in parse_qs(request.body.decode(errors="replace")).items()}
        grant = form.get("grant_type")
        if grant != "refresh_token":
            return _oauth_error("BAD_GRANT_TYPE", f"unsupported grant_type {grant!r}")
        if form.get("client_id") != self.client_id:
            return _oauth_error("BAD_CLIENT_ID", "missing or invalid client_id")
        if form.get("client_secret") != self.client_secret:
            return _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client_secret")
        if form.get("refresh_token") != self.refresh_token:
            return _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        return json_response(200, {
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "access_token": self.issue(),
            "expires_in": ACCESS_TOKEN_TTL_S,
        })


def _oauth_error(status: str, message: str) -> Response:
    # The OAuth v1 endpoint puts an error code in `status`, unlike the CRM APIs.
    return json_response(400, {"status": status, "message": message,
                               "correlationId": str(uuid.uuid4())})


def missing_scopes(scope: str) -> Response:
    """HubSpot's 403 for a call the app has no scope for (crm-api.md H2, a live capture)."""
    return error_response(
        403, "This app hasn't been granted all required scopes to make this call. Read more "
        "about required scopes here: https://developers.hubspot.com/scopes.", "MISSING_SCOPES",
        errors=[{"message": "One or more of the following scopes are required.",
                 "context": {"requiredGranularScopes": [scope]}}],
        links={"scopes": "https://developers.hubspot.com/scopes"})
