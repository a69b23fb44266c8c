"""Pacing below HubSpot's limits, the daily budget guard and call accounting.

HubSpot's limits are per portal and shared with every other app installed there, so ecosync
paces itself to ``max_burst_share`` of the rolling burst limit (learned from the
``X-HubSpot-RateLimit-*`` headers of every response) and spaces search requests at
``search_requests_per_second``, which has its own, lower limit. The daily budget is read from
``X-HubSpot-RateLimit-Daily(-Remaining)`` (private apps only; OAuth apps have no daily cap).
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from connectors.base import ApiUsage, BudgetExhausted

# Until the first response tells us, assume the smallest tier (Free/Starter: 100 / 10 s).
ASSUMED_BURST_MAX = 100
ASSUMED_INTERVAL_S = 10.0
# Search spacing is measured at send time but HubSpot counts arrivals, which jitter by tens of
# milliseconds (a TLS handshake, a slow hop); 10% extra spacing keeps that jitter in budget.
SEARCH_SPACING_MARGIN = 1.1
# When the portal (all apps together) is this close to its burst limit, let the window roll.
LOW_REMAINING_SHARE = 0.1


def _int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


@dataclass(slots=True)
class Pacer:
    """Blocks before a request until sending it keeps us under our share of the limits."""

    burst_share: float = 0.5
    search_per_s: float = 4.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    burst_max: int = ASSUMED_BURST_MAX
    interval_s: float = ASSUMED_INTERVAL_S
    remaining: int | None = None
    slept_s: float = 0.0
    _sent: deque[float] = field(default_factory=deque)
    _last_search: float | None = None
    _hold_until: float = 0.0

    @property
    def allowed(self) -> int:
        """Our requests per rolling interval: a share of the burst limit, at least one."""
        return max(1, math.floor(self.burst_max * self.burst_share))

    def before(self, *, search: bool) -> None:
        now = self.clock()
        wait = max(0.0, self._hold_until - now)
        horizon = now + wait - self.interval_s
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()
        if len(self._sent) >= self.allowed:
            # The oldest call in the window must leave it before another may enter.
            wait = max(wait, self._sent[len(self._sent) - self.allowed] + self.interval_s - now)
        if self.remaining is not None and self.remaining < max(
            2, self.burst_max * LOW_REMAINING_SHARE
        ):
            # Other apps are eating the shared limit: give the window a tenth to roll.
            wait = max(wait, self.interval_s / 10)
            self.remaining = None
        if search and self.search_per_s > 0 and self._last_search is not None:
            wait = max(wait, self._last_search + SEARCH_SPACING_MARGIN / self.search_per_s - now)
        if wait > 0:
            self.sleep(wait)
            self.slept_s += wait
            now = self.clock()
        self._sent.append(now)
        if search:
            self._last_search = now

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the portal's burst limit and what is left of it from response headers."""
        burst_max = _int(headers, "x-hubspot-ratelimit-max")
        if burst_max:
            self.burst_max = burst_max
        interval = _int(headers, "x-hubspot-ratelimit-interval-milliseconds")
        if interval:
            self.interval_s = interval / 1000
        remaining = _int(headers, "x-hubspot-ratelimit-remaining")
        if remaining is not None:
            self.remaining = remaining

    def hold(self, seconds: float) -> None:
        """After a 429, no request of ours goes out before ``seconds`` from now."""
        self._hold_until = max(self._hold_until, self.clock() + seconds)


@dataclass(slots=True)
class Budget:
    """Calls made, by endpoint, and the portal's daily use as last reported."""

    max_share: float = 0.5
    calls: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    daily_limit: int | None = None
    daily_used: int | None = None

    def check(self, source: str) -> None:
        """Raise before a call that would take the portal past our share of the daily limit."""
        if self.daily_limit is None or self.daily_used is None:
            return
        ceiling = math.floor(self.daily_limit * self.max_share)
        if self.daily_used + 1 > ceiling:
            raise BudgetExhausted(
                f"{source}: HubSpot daily API use is {self.daily_used} of {self.daily_limit}; "
                f"ecosync stops at crm.hubspot.max_api_share = {self.max_share:g} "
                f"({ceiling} calls) until the daily limit resets at midnight (portal time)"
            )

    def count(self, endpoint: str) -> None:
        self.calls[endpoint] += 1
        if self.daily_used is not None:
            self.daily_used += 1  # corrected by the headers of the response

    def observe(self, headers: Mapping[str, str]) -> None:
        limit = _int(headers, "x-hubspot-ratelimit-daily")
        remaining = _int(headers, "x-hubspot-ratelimit-daily-remaining")
        if limit is not None and remaining is not None:
            self.daily_limit = limit
            self.daily_used = max(0, limit - remaining)

    def usage(self) -> ApiUsage:
        cap = (None if self.daily_limit is None
               else math.floor(self.daily_limit * self.max_share))
        return ApiUsage(calls=sum(self.calls.values()), daily_used=self.daily_used,
                        daily_limit=self.daily_limit, by_endpoint=dict(self.calls),
                        daily_cap=cap)
