"""One classifier for every Salesforce failure (the retry policy is connectors.base's).

simple-salesforce raises a SalesforceError subclass per HTTP status (crm-api.md §S8), requests
raises Timeout / ConnectionError, and per-record failures come back inside SaveResults with a
`statusCode`. All of them are reduced here to a `connectors.base.Action`, and
`connectors.base.retry_policy` acts on it: the connector never stacks a second retry layer on
top (simple-salesforce's own 401 loop is bypassed by using direct-session clients, see
session.py).
"""

from __future__ import annotations

import re

import requests
import structlog
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)

from connectors.base import Action, ConnectorError, Decision

# Codes that mean "the same request may succeed if repeated shortly".
RETRYABLE_CODES = frozenset({
    "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "REQUEST_RUNNING_TOO_LONG",
    "QUERY_TIMEOUT",
})
RATE_CODES = frozenset({"TXN_SECURITY_METERING_ERROR"})
# One error code, several limits, told apart by the message's first word (crm-api.md S8, S9):
# `TotalRequests Limit exceeded.` is the rolling 24 h allocation; others, such as
# `ConcurrentPerOrgLongTxn Limit exceeded.` (too many requests of 20 s or more running in the
# org), clear within seconds.
REQUEST_LIMIT = "REQUEST_LIMIT_EXCEEDED"
DAILY_LIMIT_NAME = "TotalRequests"
_NAMED_LIMIT = re.compile(r"^\s*([A-Z][A-Za-z]+) Limit exceeded")

log = structlog.get_logger("ecosync.salesforce")


class SalesforceApiError(ConnectorError):
    """A request Salesforce refused for good: not transient, not auth, not a limit.

    Raised instead of simple-salesforce's exceptions so the engine sees a ConnectorError with
    a readable message (e.g. INSUFFICIENT_ACCESS, API_DISABLED_FOR_ORG, INVALID_FIELD).
    """

    def __init__(self, code: str | None, message: str, status: int | None = None) -> None:
        super().__init__(f"Salesforce refused the request ({code or status}: {message})")
        self.code = code
        self.status = status


def error_code(exc: BaseException) -> tuple[str | None, str]:
    """(errorCode, message) of a simple-salesforce error whose body is the usual JSON array."""
    if isinstance(exc, SalesforceAuthenticationFailed):
        return (str(exc.code) if exc.code is not None else None), str(exc.auth_message)
    if isinstance(exc, SalesforceApiError):
        return exc.code, str(exc)
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return (
            str(first.get("errorCode") or first.get("statusCode") or "") or None,
            str(first.get("message", "")),
        )
    if isinstance(content, dict):
        return str(content.get("errorCode") or content.get("error") or "") or None, str(
            content.get("message") or content.get("error_description") or "")
    return None, str(content if content is not None else exc)


def retry_after(response: requests.Response | None) -> float | None:
    """Seconds from a Retry-After header (proxies and gateways send it; Salesforce does not)."""
    if response is None:
        return None
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP-date: rare enough to fall back to our own backoff


def request_limit(message: str, used: int | None, limit: int | None) -> Action:
    """Which REQUEST_LIMIT_EXCEEDED this is: the daily allocation stops the run (capacity
    returns only as the rolling 24 h window moves on); any other limit is transient.

    The message names the limit; when it does not (a wording we do not know), the org's
    usage decides: at or past its allocation is the daily limit, below it is not. With
    neither, stopping is the safe choice."""
    named = _NAMED_LIMIT.match(message)
    if named:
        return (Action.RATE_LIMITED if named.group(1) == DAILY_LIMIT_NAME
                else Action.RETRY)
    if used is not None and limit is not None:
        return Action.RATE_LIMITED if used >= limit else Action.RETRY
    return Action.RATE_LIMITED


def classify(exc: BaseException, response: requests.Response | None = None,
             usage: tuple[int | None, int | None] = (None, None)) -> Decision:
    """What to do about a failed call. `response` is the last HTTP response seen, if any;
    `usage` the org's (used, limit) daily API requests as last reported."""
    if isinstance(exc, requests.exceptions.SSLError):
        # Certificate trust is configuration, not weather: repeating cannot help.
        return Decision(Action.MISCONFIGURED, "TLS", str(exc))
    if isinstance(exc, requests.Timeout | requests.ConnectionError
                  | requests.exceptions.ChunkedEncodingError):
        return Decision(Action.RETRY, None, f"{exc.__class__.__name__}: {exc}")
    if isinstance(exc, SalesforceAuthenticationFailed):
        code, message = error_code(exc)
        if code is not None and code.isdigit() and int(code) >= 500:
            return Decision(Action.RETRY, code, message)  # login endpoint down, not bad creds
        return Decision(Action.AUTH_FAILED, code, message)
    if isinstance(exc, SalesforceExpiredSession):
        return Decision(Action.REAUTH, "INVALID_SESSION_ID", "session expired or invalid")
    if isinstance(exc, SalesforceError):
        code, message = error_code(exc)
        status = int(exc.status or 0)
        if code == REQUEST_LIMIT:
            return Decision(request_limit(message, *usage), code, message, retry_after(response))
        if code in RATE_CODES:
            return Decision(Action.RATE_LIMITED, code, message, retry_after(response))
        if status == 429 or status >= 500 or code in RETRYABLE_CODES:
            return Decision(Action.RETRY, code, message, retry_after(response))
        return Decision(Action.FAIL, code, message)
    return Decision(Action.FAIL, None, str(exc))


def record_retryable(code: str | None) -> bool:
    """A per-record SaveResult error worth repeating for that record alone."""
    return code in RETRYABLE_CODES


def describe_failure(exc: BaseException) -> str:
    code, message = error_code(exc)
    return f"{code}: {message}" if code else message
