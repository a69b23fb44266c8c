"""HubSpot's rate limits: a rolling 10-second burst window, a per-second search limit, a daily cap.

The windows run on real (monotonic) time, because they model how fast a client calls (a test
may swap in its own monotonic source with ``configure(monotonic=...)``); the
daily counter resets at midnight UTC of the sandbox clock (HubSpot uses the account's time
zone), so a test can move to the next day with ``clock.advance``.

``Retry-After``: HubSpot does not document sending it on a 429, and urllib3 (inside
hubspot-api-client) silently re-sends GETs that carry it. By default the emulator therefore
sends none and a client must back off from the 429 itself; set ``retry_after_s`` to emulate
a server that does send it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
SECONDLY = "SECONDLY"
DAILY = "DAILY"

_MESSAGES = {
    TEN_SECONDLY: "You have reached your ten_secondly_rolling limit.",
    SECONDLY: "You have reached your secondly limit.",
    DAILY: "You have reached your daily limit.",
}


def rate_limit_body(policy: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": _MESSAGES[policy],
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "category": "RATE_LIMITS",
    }


@dataclass(slots=True)
class Decision:
    """The outcome of admitting one request: the headers to send, and a policy if refused."""

    headers: dict[str, str]
    refused: str | None = None


@dataclass(slots=True)
class RateLimits:
    burst_max: int = 100
    burst_interval_s: float = 10.0
    search_per_s: int = 5
    daily_max: int = 250_000
    enabled: bool = True
    retry_after_s: float | None = None
    # The windows' time source; a test injects a manual one to move past a window.
    monotonic: Callable[[], float] = time.monotonic
    _burst: deque[float] = field(default_factory=deque)
    _search: deque[float] = field(default_factory=deque)
    _day: int = -1
    _daily_used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, **settings: Any) -> None:
        with self._lock:
            for name, value in settings.items():
                if name.startswith("_") or not hasattr(self, name):
                    raise AttributeError(f"unknown rate-limit setting {name!r}")
                setattr(self, name, value)

    def reset(self) -> None:
        with self._lock:
            self._burst.clear()
            self._search.clear()
            self._daily_used = 0

    @property
    def daily_used(self) -> int:
        with self._lock:
            return self._daily_used

    def admit(self, *, search: bool, day: int, with_daily: bool) -> Decision:
        """Count one request against the limits, unless a limit refuses it."""
        now = self.monotonic()
        with self._lock:
            if day != self._day:
                self._day, self._daily_used = day, 0
            _expire(self._burst, now - self.burst_interval_s)
            _expire(self._search, now - 1.0)
            refused: str | None = None
            if self.enabled:
                if self._daily_used >= self.daily_max:
                    refused = DAILY
                elif len(self._burst) >= self.burst_max:
                    refused = TEN_SECONDLY
                elif search and len(self._search) >= self.search_per_s:
                    refused = SECONDLY
            if refused is None:  # refused calls do not use up the budget
                self._burst.append(now)
                self._daily_used += 1
                if search:
                    self._search.append(now)
            headers = {
                "X-HubSpot-RateLimit-Max": str(self.burst_max),
                "X-HubSpot-RateLimit-Remaining": str(max(0, self.burst_max - len(self._burst))),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(
                    round(self.burst_interval_s * 1000)),
            }
            if with_daily:  # OAuth apps have no daily limit and get no daily headers
                headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_max)
                headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                    max(0, self.daily_max - self._daily_used))
            if refused is not None and self.retry_after_s is not None:
                headers["Retry-After"] = f"{self.retry_after_s:g}"
            return Decision(headers, refused)


def _expire(window: deque[float], horizon: float) -> None:
    while window and window[0] <= horizon:
        window.popleft()
