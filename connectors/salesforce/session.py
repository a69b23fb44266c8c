"""Authentication, the HTTP session, API accounting and the one place every call goes through.

Why the client is always built in *direct session* mode (session_id + instance): with a
login-based client simple-salesforce refreshes an expired session by itself, up to 5 logins per
call, and on `sf.Account.*` without bound (crm-api.md §0.3). We log in ourselves with
`SalesforceLogin`, hand the token to a direct-mode client (which raises on a 401), and own the
refresh: one re-login, one repeat, then AuthFailed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError
from simple_salesforce.login import SalesforceLogin

from connectors.base import (
    MAX_ATTEMPTS,
    Action,
    ApiUsage,
    AuthFailed,
    BudgetExhausted,
    ConnectorError,
    Decision,
    RateLimited,
    TransientError,
    retry_policy,
)
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.errors import SalesforceApiError, classify, log

T = TypeVar("T")
_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
_DATA_PATH = re.compile(r"/services/data/v\d+\.\d/(.*)$")
# The daily allocation is a rolling 24 h window: after `TotalRequests Limit exceeded.`, capacity
# comes back gradually as calls from a day ago age out. An hour is a sensible first retry.
RATE_LIMIT_RETRY_S = 3600.0


class _Adapter(HTTPAdapter):
    """Default timeout, forced CA bundle and the login-host rewrite, for any requests.Session.

    simple-salesforce builds login URLs as https://{domain}.salesforce.com (§0.1); when
    `login_url` points elsewhere (a proxy, the sandbox) the request is sent there instead.
    """

    def __init__(self, timeout: float, verify: str | None, rewrite: tuple[str, str] | None):
        super().__init__()
        self._timeout = timeout
        self._verify = verify
        self._rewrite = rewrite

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        if self._rewrite and request.url and request.url.startswith(self._rewrite[0]):
            request.url = self._rewrite[1] + request.url[len(self._rewrite[0]):]
        if self._verify and not proxies and request.url:
            # trust_env is off (see configure_http): take proxies from the environment here,
            # honouring no_proxy, so a corporate proxy still works with a custom CA bundle.
            proxies = requests.utils.get_environ_proxies(request.url)
        return super().send(
            request, stream=stream, timeout=timeout if timeout is not None else self._timeout,
            verify=self._verify or verify, cert=cert, proxies=proxies,
        )


def endpoint_key(url: str) -> str:
    """Short name of the API resource a URL addresses, for per-endpoint call counts."""
    path = urlsplit(url).path
    if path.startswith("/services/oauth2/") or path.startswith("/services/Soap/u/"):
        return "login"
    if path.startswith("/services/Soap/m/"):
        return "metadata"
    if path.rstrip("/") == "/services/data":
        return "versions"
    m = _DATA_PATH.search(path)
    if not m:
        return "other"
    parts = [p for p in m.group(1).split("/") if p]
    if not parts:
        return "resources"
    head = parts[0]
    if head in ("query", "queryAll"):
        return "queryMore" if len(parts) > 1 else head
    if head == "sobjects":
        return "describe" if parts[-1] == "describe" else "sobjects"
    if head == "composite":
        return "/".join(parts[:2])
    if head == "jobs" and len(parts) > 1:
        return f"bulk2.{parts[1]}"
    return head


def login_target(config: SalesforceConfig) -> tuple[str, tuple[str, str] | None]:
    """The `domain` to give simple-salesforce and, if needed, a URL-prefix rewrite.

    A *.salesforce.com origin is used as is (domain 'login', 'test', 'acme.my'); any other
    origin is reached by rewriting the URL simple-salesforce builds.
    """
    if config.auth == "client_credentials":
        origin = config.instance_url or config.login_url
        fallback = "ecosync-login.my"  # client credentials refuse 'login' and 'test'
    else:
        origin = config.login_url
        fallback = "login"
    parts = urlsplit(origin.rstrip("/"))
    host = parts.hostname or ""
    if parts.scheme == "https" and parts.port in (None, 443) and host.endswith(".salesforce.com"):
        return host[: -len(".salesforce.com")], None
    base = f"{parts.scheme}://{parts.netloc}"
    return fallback, (f"https://{fallback}.salesforce.com", base)


def configure_http(http: requests.Session, config: SalesforceConfig) -> None:
    """Make any requests.Session fit for this org: CA bundle, timeout, login rewrite.

    With a ca_bundle, trust_env is switched off because REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
    would otherwise override Session.verify (§0.2); the adapter still applies the
    environment's proxies (and no_proxy) per request.
    """
    _domain, rewrite = login_target(config)
    verify = config.ca_bundle or None
    if verify:
        http.trust_env = False
        http.verify = verify
    http.mount("https://", _Adapter(config.timeout_seconds, verify, rewrite))


class Api:
    """The authenticated client plus everything every call needs: budget, retries, re-auth."""

    def __init__(self, config: SalesforceConfig, http: requests.Session,
                 sleep: Callable[[float], None]) -> None:
        self.config = config
        self.http = http
        self.usage = ApiUsage()
        self._sf: Salesforce | None = None
        self._last: requests.Response | None = None
        self._sleep = sleep
        self._domain, _ = login_target(config)
        configure_http(http, config)
        http.hooks["response"].append(self._observe)

    # ------------------------------------------------------------------ accounting
    def _observe(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        self._last = response
        key = endpoint_key(response.url)
        self.usage.by_endpoint[key] = self.usage.by_endpoint.get(key, 0) + 1
        if key not in ("login", "versions"):  # neither counts against the org's limit
            self.usage.calls += 1
        m = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if m:
            self.usage.daily_used, self.usage.daily_limit = int(m.group(1)), int(m.group(2))
            self.usage.daily_cap = self.budget_cap()

    def last_response(self) -> requests.Response | None:
        return self._last

    def daily_usage(self) -> tuple[int | None, int | None]:
        """The org's (used, limit) daily API requests from the last Sforce-Limit-Info."""
        return self.usage.daily_used, self.usage.daily_limit

    def budget_cap(self) -> int | None:
        limit = self.usage.daily_limit
        return None if limit is None else int(limit * self.config.max_api_share)

    def _check_budget(self) -> None:
        # The org's rolling 24 h usage is the only figure Salesforce reports, so the guard keeps
        # the whole org under max_api_share: the rest stays for users and other integrations.
        cap, used = self.budget_cap(), self.usage.daily_used
        if cap is not None and used is not None and used + 1 > cap:
            raise BudgetExhausted(
                f"Salesforce API budget used up: the org is at {used} of {self.usage.daily_limit}"
                f" daily API requests and crm.salesforce.max_api_share = "
                f"{self.config.max_api_share:g} caps ecosync at {cap}; the run stops here and "
                "resumes on a later tick as the rolling 24-hour usage falls"
            )

    # ------------------------------------------------------------------ auth
    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._connect()
        return self._sf

    @property
    def instance(self) -> str:
        return str(self.sf.sf_instance)

    def _client(self, session_id: str, instance: str) -> Salesforce:
        return Salesforce(session_id=session_id, instance=instance, session=self.http,
                          version=self.config.api_version, object_pairs_hook=dict,
                          parse_float=_decimal)

    def _connect(self) -> Salesforce:
        c = self.config
        if c.auth == "session":
            host = urlsplit(c.instance_url).netloc or c.instance_url
            return self._client(c.session_id, host)
        kwargs: dict[str, Any] = {"session": self.http, "domain": self._domain}
        if c.auth == "client_credentials":
            kwargs.update(consumer_key=c.client_id, consumer_secret=c.client_secret)
        elif c.auth == "jwt":
            try:
                key = Path(c.private_key_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise AuthFailed(
                    f"cannot read crm.salesforce.private_key_file {c.private_key_file!r} "
                    f"({exc.strerror}); point it at the connected app's PEM private key"
                ) from None
            kwargs.update(username=c.username, consumer_key=c.client_id, privatekey=key)
            if self._domain not in ("login", "test"):
                # A My Domain login host: the token is requested there, but the assertion's
                # audience must be login.salesforce.com (test. for sandboxes).
                kwargs.update(instance_url=self._domain,
                              domain="test" if ".sandbox." in f".{self._domain}." else "login")
        elif c.client_id and c.client_secret:  # OAuth username-password flow
            kwargs.update(username=c.username, password=c.password + c.security_token,
                          consumer_key=c.client_id, consumer_secret=c.client_secret)
        else:  # SOAP partner login: password + security token
            kwargs.update(username=c.username, password=c.password,
                          security_token=c.security_token, sf_version=c.api_version)
        try:
            session_id, instance = retry_policy(
                lambda exc: classify(exc, self._last), sleep=self._sleep,
                on_retry=_log_retry)(SalesforceLogin, **kwargs)
        except SalesforceAuthenticationFailed as exc:
            raise AuthFailed(self.auth_hint(f"{exc.code}: {exc.auth_message}")) from None
        except requests.exceptions.SSLError as exc:
            raise tls_error(exc) from None
        except _NO_ANSWER as exc:
            key = ("crm.salesforce.instance_url" if c.auth == "client_credentials"
                   else "crm.salesforce.login_url")
            raise TransientError(f"Salesforce login failed: {unreachable(exc, key)}") from exc
        except (requests.RequestException, SalesforceError) as exc:
            raise TransientError(f"Salesforce login failed: {exc}") from exc
        return self._client(str(session_id), str(instance))

    def auth_hint(self, detail: str) -> str:
        keys = {
            "client_credentials": "crm.salesforce.client_id, crm.salesforce.client_secret and "
                                  "crm.salesforce.instance_url (your My Domain URL)",
            "jwt": "crm.salesforce.client_id, crm.salesforce.username, "
                   "crm.salesforce.private_key_file and crm.salesforce.login_url",
            "password": "crm.salesforce.username, crm.salesforce.password, "
                        "crm.salesforce.security_token and crm.salesforce.login_url",
            "session": "crm.salesforce.session_id (it has expired or is wrong; a session id "
                       "cannot be refreshed, so use a login flow for the daemon) and "
                       "crm.salesforce.instance_url",
        }[self.config.auth]
        return f"Salesforce rejected the credentials ({detail}); check {keys}"

    # ------------------------------------------------------------------ calls
    def call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run one API operation under the budget guard and the retry policy.

        An expired session is refreshed once and the operation repeated; a second expiry,
        or any expiry with a fixed session id, is AuthFailed.
        """
        refreshed = False

        def judge(exc: BaseException) -> Decision:
            decision = classify(exc, self._last, self.daily_usage())
            if decision.action is Action.REAUTH and (refreshed or self.config.auth == "session"):
                return replace(decision, action=Action.AUTH_FAILED)  # one re-login at most
            return decision

        def on_retry(decision: Decision, wait_s: float) -> None:
            nonlocal refreshed
            _log_retry(decision, wait_s)
            if decision.action is Action.REAUTH:
                refreshed = True
                self._sf = self._connect()

        try:
            result: T = retry_policy(judge, sleep=self._sleep, on_retry=on_retry)(
                self._attempt, fn)
            return result
        except SalesforceError as exc:
            decision = judge(exc)
            if decision.action in (Action.REAUTH, Action.AUTH_FAILED):
                raise AuthFailed(self.auth_hint(
                    f"{decision.code}: {decision.message}")) from None
            if decision.action is Action.RATE_LIMITED:
                raise RateLimited(
                    f"Salesforce refused the request ({decision.code}: {decision.message}"
                    f"; org usage {self.usage.daily_used}/{self.usage.daily_limit}); the run"
                    f" stops cleanly, retry in about {RATE_LIMIT_RETRY_S / 3600:g} hour",
                    decision.retry_after_s or RATE_LIMIT_RETRY_S,
                ) from None
            if decision.action is Action.RETRY:
                raise TransientError(
                    f"Salesforce kept failing after retries: {decision.code}: "
                    f"{decision.message}") from exc
            raise SalesforceApiError(decision.code, decision.message,
                                     int(exc.status or 0) or None) from exc
        except requests.exceptions.SSLError as exc:
            raise tls_error(exc) from None
        except _NO_ANSWER as exc:
            raise TransientError(unreachable(exc, "crm.salesforce.instance_url")) from exc
        except requests.RequestException as exc:  # an answer requests itself refused
            raise TransientError(
                f"Salesforce request failed after retries ({exc.__class__.__name__}: {exc})"
            ) from exc

    def _attempt(self, fn: Callable[[Salesforce], T]) -> T:
        self._check_budget()
        return fn(self.sf)

    def raw(self, method: str, path: str, *, headers: dict[str, str] | None = None,
            data: bytes | None = None, params: dict[str, Any] | None = None) -> requests.Response:
        """A call whose body is not JSON (Bulk 2.0 CSV), through the same guard and policy."""

        def send(sf: Salesforce) -> requests.Response:
            merged = {**sf.headers, **(headers or {})}
            response = self.http.request(method, sf.base_url + path, headers=merged, data=data,
                                         params=params)
            if response.status_code >= 300:
                from simple_salesforce.util import exception_handler

                exception_handler(response, path)
            return response

        return self.call(send)


def _log_retry(decision: Decision, wait_s: float) -> None:
    # Each retried failure is logged once, here; the last one, if retries run out, surfaces
    # as the run's own failure instead.
    log.warning("salesforce.retry", code=decision.code, action=decision.action.value,
                wait_s=round(wait_s, 2), message=decision.message[:200])


# Failures where the server never answered: the only ones worth calling "unreachable".
_NO_ANSWER = (requests.ConnectionError, requests.Timeout,
              requests.exceptions.ChunkedEncodingError)


def unreachable(exc: requests.RequestException, key: str) -> str:
    """Where the connection failed and what to check, for a network failure that outlived
    the retries (the URL is the origin only: paths and queries stay out of messages)."""
    url = getattr(exc.request, "url", None) or ""
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "the configured URL"
    detail = (str(exc).splitlines() or [""])[0][:200]
    return (f"Salesforce unreachable at {where} after {MAX_ATTEMPTS} attempts "
            f"({exc.__class__.__name__}: {detail}); check {key}, that this host can reach it "
            "(DNS, firewall, a proxy set in HTTPS_PROXY / NO_PROXY) and "
            "crm.salesforce.timeout_seconds, then run `ecosync doctor`")


def tls_error(exc: BaseException) -> ConnectorError:
    return ConnectorError(
        f"TLS verification with Salesforce failed ({exc.__class__.__name__}); if a corporate "
        "proxy re-signs TLS, set crm.salesforce.ca_bundle to its CA bundle (PEM)")


def _decimal(text: str) -> Any:
    from decimal import Decimal

    return Decimal(text)
