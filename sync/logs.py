"""structlog setup: readable on a terminal, JSON lines otherwise, secrets always masked.

Masking happens before rendering, on every string of the event dict (nested values, the
formatted exception included), so a secret is replaced before JSON or the console renderer
escapes it; the rendered line is masked again, and so is everything the CLI writes to stdout
and stderr (`install_masking_streams`). Known secrets (from config) are replaced in every
form a message may carry them in: raw, JSON- and repr-escaped, percent-encoded; common
credential shapes (bearer and basic tokens, session ids, password=…) by pattern.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from sync.masking import MASK, MASKER, MIN_SECRET, SecretMasker, escaped_forms

__all__ = ["MASK", "MASKER", "MIN_SECRET", "SecretMasker", "escaped_forms"]


def _mask_event(_logger: Any, _name: str,
                event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        event[key] = MASKER.mask_value(value)
    return event


def _safe_exc_info(_logger: Any, _name: str,
                   event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A database error's traceback without its statement parameters (they carry row data)."""
    from sync.errors import safe_traceback

    exc_info = event.get("exc_info")
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and len(exc_info) == 3 and exc_info[1] is not None:
        safe = safe_traceback(exc_info[1])
        if safe is not None:
            del event["exc_info"]
            event["exception"] = safe
    return event


class _MaskingRenderer:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        return MASKER.mask(str(self._inner(logger, name, event)))


class _MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return MASKER.mask(super().format(record))

    def formatException(self, ei: Any) -> str:
        from sync.errors import safe_traceback

        safe = safe_traceback(ei[1]) if ei and ei[1] is not None else None
        return safe if safe is not None else super().formatException(ei)


_WRITE_LOCKS: dict[int, threading.RLock] = {}

# The level `configure_logging` was last given, and whether progress bars own the terminal.
_LEVEL = logging.INFO
_BARS_SHOWN = False


def _quiet_under_bars(logger: Any, name: str, event: MutableMapping[str, Any]
                      ) -> MutableMapping[str, Any]:
    if _BARS_SHOWN and _LEVEL >= logging.INFO and event.get("level") in ("info", "debug"):
        raise structlog.DropEvent
    return event


@contextmanager
def quiet_under_bars() -> Iterator[None]:
    """While progress bars show a command's stages on a terminal, its info lines only repeat
    them (what each stage pulled and wrote, the tick summary the command prints in words),
    so the terminal gets warnings and errors only, above the bars. `logging.level = "debug"`
    keeps every line; without bars (a pipe, a log file, the daemon) nothing changes."""
    global _BARS_SHOWN
    before, _BARS_SHOWN = _BARS_SHOWN, True
    try:
        yield
    finally:
        _BARS_SHOWN = before


class _LineLogger:
    """structlog's PrintLogger, with a reentrant lock per stream: a signal handler that logs
    (the daemon's) may run while the main thread is inside a write, where a plain lock, as
    PrintLogger's, would deadlock the process for good."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = _WRITE_LOCKS.setdefault(id(file), threading.RLock())

    def msg(self, message: str) -> None:
        with self._lock:
            self._file.write(message + "\n")
            self._file.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class MaskingStream(io.TextIOBase):
    """A text stream that masks secrets in whatever goes through it, line by line.

    The CLI puts one over stdout and stderr, so no output path (a table, an error line, a
    traceback, a progress bar) can print a secret the masker knows. It has no `buffer`: click
    and rich then write text through it instead of bytes around it.
    """

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner
        self._pending = ""
        self._lock = threading.RLock()  # reentrant: a signal handler may log mid-write

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._pending += text
            cut = self._pending.rfind("\n") + 1
            if cut:
                ready, self._pending = self._pending[:cut], self._pending[cut:]
                self.inner.write(MASKER.mask(ready))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self.inner.write(MASKER.mask(self._pending))
                self._pending = ""
        self.inner.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.inner, "errors", None)

    @property
    def name(self) -> str:
        return str(getattr(self.inner, "name", "<masked>"))


def install_masking_streams() -> None:
    """Route sys.stdout and sys.stderr through the masker (once; idempotent). Left in place
    for the life of the process, so even an unexpected traceback is masked."""
    for attr in ("stdout", "stderr"):
        stream = getattr(sys, attr)
        if stream is not None and not isinstance(stream, MaskingStream):
            setattr(sys, attr, MaskingStream(stream))


def configure_logging(
    fmt: str = "auto", level: str = "info", *, stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Configure structlog and stdlib logging; safe to call more than once."""
    MASKER.add(secrets)
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json" else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    global _LEVEL
    numeric = getattr(logging, level.upper(), logging.INFO)
    _LEVEL = numeric
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _quiet_under_bars,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            _safe_exc_info,
            structlog.processors.format_exc_info,
            _mask_event,
            _MaskingRenderer(renderer),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_args: _LineLogger(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(_MaskingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))  # libraries' chatter stays out by default


def get_logger(name: str | None = None, **bound: Any) -> Any:
    """A lazy logger: it renders with the configuration in force when it logs, so one made at
    import time (a module's `log`) follows a later `configure_logging` (the CLI's)."""
    return structlog.get_logger(name, **bound)
