"""Waiting on what another process or thread does, never on the wall clock for its own sake.

Importable from every test folder (tests/ is on sys.path through its conftest.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], timeout: float, *, every: float = 0.1) -> bool:
    """Whether `condition` came true within `timeout` seconds; returns as soon as it does. For
    state another process writes (a warehouse row, a process exit), which sends no event."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not condition():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        tick.wait(min(every, left))
    return True
