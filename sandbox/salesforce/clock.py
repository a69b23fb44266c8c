"""The org's clock: real time unless a test freezes or advances it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Real UTC time by default; `freeze` pins it, `advance` moves it (frozen or not).

    Salesforce stores datetimes to the second, so `now()` is truncated: many writes in the same
    second share one SystemModstamp, as they do in real orgs.
    """

    def __init__(self) -> None:
        self._frozen: datetime | None = None
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            base = self._frozen if self._frozen is not None else datetime.now(UTC) + self._offset
        return base.replace(microsecond=0)

    def freeze(self, at: datetime | None = None) -> None:
        with self._lock:
            at = at or datetime.now(UTC) + self._offset
            self._frozen = at if at.tzinfo else at.replace(tzinfo=UTC)

    def unfreeze(self) -> None:
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - datetime.now(UTC)
            self._frozen = None

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def sleep_until_next_second(self) -> None:
        """For real-time clocks: make the next write land in a later second than the last."""
        if self._frozen is None:
            time.sleep(1.0 - (time.time() % 1.0) + 0.001)
