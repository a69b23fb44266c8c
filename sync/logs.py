"""structlog setup: readable on a terminal, JSON lines otherwise, secrets always masked.

Masking happens on the final rendered line, so a secret cannot slip through a nested
value, an exception message or a traceback. Known secrets (from config) are replaced
exactly; common credential shapes (bearer tokens, session ids, password=…) by pattern.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

MASK = "***"
_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=!-]{6,}"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|password|session_?id|"
        r"security_token|sessionid|authorization|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]{4,}"
    ),
    re.compile(r"(?i)(<sessionId>)[^<]+"),
    # Salesforce session ids: 00D org id prefix, '!' and a long opaque tail.
    re.compile(r"()00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}"),
]


class SecretMasker:
    def __init__(self) -> None:
        self._secrets: list[str] = []
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            merged = {*self._secrets, *(s for s in secrets if s and len(s) >= 4)}
            # Longest first, so a secret containing another is masked whole.
            self._secrets = sorted(merged, key=len, reverse=True)

    def clear(self) -> None:
        with self._lock:
            self._secrets = []

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text


MASKER = SecretMasker()


class _MaskingRenderer:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        return MASKER.mask(str(self._inner(logger, name, event)))


class _MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return MASKER.mask(super().format(record))


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
    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _MaskingRenderer(renderer),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(_MaskingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))  # libraries' chatter stays out by default


def get_logger(name: str | None = None, **bound: Any) -> Any:
    return structlog.get_logger(name).bind(**bound)
