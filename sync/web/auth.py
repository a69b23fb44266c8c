"""Who may read the web view: loopback by default; elsewhere a token or a trusted proxy.

- No `[web] token` and no `trusted_proxy_header`: only a loopback bind is allowed, and
  every local request is served (the machine's users are the audience).
- `token` (from an environment variable): a request carries `Authorization: Bearer TOKEN`,
  or the HttpOnly cookie the login form sets (an HMAC of the token, never the token).
- `trusted_proxy_header` (e.g. `X-Forwarded-Email` behind oauth2-proxy): the proxy has
  authenticated the user; a request without the header is refused.
A refused request is logged with its path and reason, never with what it presented.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

from starlette.requests import Request

from sync.config import WebConfig
from sync.errors import ConfigError

COOKIE = "ecosync_session"
_COOKIE_CONTEXT = b"ecosync web session v1"


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, web: WebConfig) -> None:
    """Refuse to listen beyond this machine with nobody checking who reads."""
    if is_loopback(host) or web.token or web.trusted_proxy_header:
        return
    raise ConfigError(
        f"web: refusing to serve on {host} without authentication; set [web] token = "
        "\"${ECOSYNC_WEB_TOKEN}\" (and export ECOSYNC_WEB_TOKEN), or trusted_proxy_header for "
        "an SSO proxy in front (see docs/web.md), or bind 127.0.0.1")


def session_cookie(token: str) -> str:
    return hmac.new(token.encode(), _COOKIE_CONTEXT, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Gate:
    token: str = ""
    proxy_header: str = ""

    @classmethod
    def from_config(cls, web: WebConfig) -> Gate:
        return cls(web.token, web.trusted_proxy_header)

    @property
    def required(self) -> bool:
        return bool(self.token or self.proxy_header)

    def check(self, request: Request) -> tuple[bool, str]:
        """(allowed, reason): the reason names what was missing or wrong, nothing more."""
        if not self.required:
            return True, "open"
        if self.proxy_header and request.headers.get(self.proxy_header, "").strip():
            return True, "proxy"
        if self.token:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and presented:
                if self.token_matches(presented.strip()):
                    return True, "bearer"
                return False, "wrong bearer token"
            cookie = request.cookies.get(COOKIE)
            if cookie:
                if hmac.compare_digest(cookie, session_cookie(self.token)):
                    return True, "cookie"
                return False, "stale or wrong session cookie"
        if self.proxy_header and not self.token:
            return False, f"no {self.proxy_header} header from the proxy"
        return False, "no credentials"

    def token_matches(self, presented: str) -> bool:
        return bool(self.token) and hmac.compare_digest(presented.encode(), self.token.encode())
