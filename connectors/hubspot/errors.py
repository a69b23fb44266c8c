"""One error classifier for every HubSpot call (the retry policy is connectors.base's).

hubspot-api-client raises a different ``ApiException`` class per sub-package (companies,
deals, associations, ...) with no common base but ``Exception``, so exceptions are read by
duck typing on ``.status`` / ``.body`` / ``.headers``. urllib3's own retries are switched off
(see client.py), so ``connectors.base.retry_policy``, acting on this classifier's verdict, is
the only place a request is ever retried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import urllib3.exceptions

from connectors.base import Action, AuthFailed, ConnectorError

DEFAULT_INTERVAL_S = 10.0  # HubSpot's burst window when the headers do not say otherwise
TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
SECONDLY = "SECONDLY"
DAILY = "DAILY"


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    status: int | None = None
    category: str | None = None
    policy: str | None = None
    message: str = ""
    retry_after_s: float | None = None
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


class MissingScopes(AuthFailed):
    """403 MISSING_SCOPES: the app was not granted a scope this call needs."""


class HubSpotApiError(ConnectorError):
    """A request HubSpot refused for a reason retrying cannot fix (400, 404, 409, ...)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"HubSpot {verdict.status} {verdict.category or ''}: "
                         f"{verdict.message}".strip())
        self.status = verdict.status
        self.category = verdict.category
        self.body = verdict.body
        self.verdict = verdict


def is_api_exception(exc: BaseException) -> bool:
    """Any sub-package's ApiException (they share no base class but these attributes)."""
    return isinstance(getattr(exc, "status", None), int) and hasattr(exc, "body")


def exception_headers(exc: BaseException) -> dict[str, str]:
    raw = getattr(exc, "headers", None)
    if raw is None:
        return {}
    try:
        return {str(k).lower(): str(v) for k, v in dict(raw).items()}
    except (TypeError, ValueError):
        return {}


def decode_body(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("utf-8", errors="replace")
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {"message": str(raw)[:500]}
    return value if isinstance(value, dict) else {"message": str(value)[:500]}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date; HubSpot is not known to send one


def _interval_s(headers: Mapping[str, str], default: float) -> float:
    try:
        return int(headers["x-hubspot-ratelimit-interval-milliseconds"]) / 1000
    except (KeyError, ValueError):
        return default


def classify(exc: BaseException, *, can_refresh: bool,
             interval_s: float = DEFAULT_INTERVAL_S) -> Verdict:
    """What to do about one failed request. Pure: no I/O, no sleeping.

    ``interval_s`` is the burst window last learned from the headers, used when a 429
    arrives without them (as HubSpot's edge sometimes answers).
    """
    inner = exc.__context__
    if isinstance(exc, AttributeError) and inner is not None and is_api_exception(inner):
        # A TLS failure raises ApiException(status=0) with no body, and the generated
        # ApiClient then calls `e.body.decode()` on it: what escapes is an AttributeError
        # whose context is the real error.
        exc = inner
    if is_api_exception(exc):
        status = int(exc.status)  # type: ignore[attr-defined]
        headers = exception_headers(exc)
        body = decode_body(getattr(exc, "body", None))
        message = str(body.get("message") or getattr(exc, "reason", "") or "")
        category = str(body["category"]) if body.get("category") else None
        policy = str(body["policyName"]) if body.get("policyName") else None
        base = Verdict(Action.FAIL, status=status, category=category, policy=policy,
                       message=message, retry_after_s=_retry_after(headers), body=body,
                       headers=headers)
        if status == 0:
            # The client turns TLS failures into status 0; an untrusted certificate will not
            # fix itself, a reset connection might.
            reason = str(getattr(exc, "reason", ""))
            untrusted = "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify" in reason
            return replace(base, action=Action.MISCONFIGURED if untrusted else Action.RETRY,
                           message=reason)
        if status == 429:
            if policy == DAILY:
                return replace(base, action=Action.RATE_LIMITED)
            wait = base.retry_after_s
            if wait is None:
                # No Retry-After from HubSpot: wait for the window of the policy to roll over.
                wait = 1.0 if policy == SECONDLY else _interval_s(headers, interval_s)
            return replace(base, action=Action.THROTTLE, retry_after_s=wait)
        if status == 401:
            return replace(base, action=Action.REAUTH if can_refresh else Action.AUTH_FAILED)
        if status == 403:
            return replace(base, action=Action.AUTH_FAILED)
        if status == 408 or status >= 500:
            return replace(base, action=Action.RETRY)
        return base
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return Verdict(Action.RETRY, message=f"{type(exc).__name__}: {exc}")
    return Verdict(Action.FAIL, message=f"{type(exc).__name__}: {exc}")
