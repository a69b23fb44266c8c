"""A controllable clock and HubSpot's timestamp format.

Real portals hold many records that share one ``hs_lastmodifieddate`` (imports, workflows),
and incremental sync must survive that. Freezing the clock lets tests and seeds create such
ties on purpose; by default the clock follows real time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from functools import lru_cache


class Clock:
    """Milliseconds since the epoch, real by default, frozen or shifted on request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen_ms: int | None = None
        self._offset_ms = 0

    def now_ms(self) -> int:
        with self._lock:
            if self._frozen_ms is not None:
                return self._frozen_ms
            return int(time.time() * 1000) + self._offset_ms

    def now(self) -> datetime:
        return from_ms(self.now_ms())

    def freeze(self, at: datetime | None = None) -> None:
        """Stop the clock at ``at`` (tz-aware; naive means UTC), or at the current time."""
        target = self.now_ms() if at is None else to_ms(at)
        with self._lock:
            self._frozen_ms = target

    def unfreeze(self) -> None:
        """Resume real time from the frozen instant (time never goes backwards)."""
        with self._lock:
            if self._frozen_ms is not None:
                self._offset_ms = self._frozen_ms - int(time.time() * 1000)
            self._frozen_ms = None

    def advance(self, seconds: float) -> None:
        with self._lock:
            delta = round(seconds * 1000)
            if self._frozen_ms is not None:
                self._frozen_ms += delta
            else:
                self._offset_ms += delta

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen_ms is not None


def to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@lru_cache(maxsize=65536)
def iso(ms: int) -> str:
    """HubSpot's v3 timestamp form: ``2024-01-01T12:00:00.123Z`` (always milliseconds, Z)."""
    dt = from_ms(ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_time(value: str) -> int | None:
    """Epoch milliseconds from what HubSpot accepts: epoch ms digits, ISO datetime or date."""
    text = value.strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return to_ms(parsed)
