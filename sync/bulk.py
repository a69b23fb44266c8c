"""Helpers for bulk passes that run in Python over every row of the warehouse."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a bulk pass.

    A full match allocates millions of short-lived rows, names and tuples, none in a cycle,
    and each full collection walks every live object: at 1M accounts, 19% of SQLite's fuzzy
    stage and 30% of PostgreSQL's (bench/matching.py). Reference counting still frees each
    row as soon as it is dropped, so memory stays bounded; the few cycles made meanwhile are
    collected once the collector resumes. It resumes only if it was running.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
