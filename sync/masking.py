"""The secret masker: every known secret, in every escaped form, and common credential
shapes, replaced by `***` (used by the log pipeline, the CLI's output streams and every stored
error; its own module so errors and logs both use it without importing each other)."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
# (pattern, words one of which the lower-cased text must hold for the pattern to apply): the
# words are a cheap test that spares a 1M-line CSV export five regular-expression passes.
_PATTERNS = [
    (re.compile(r"(?i)((?:bearer|basic)\s+)[A-Za-z0-9._~+/=!-]{6,}"), ("bearer", "basic")),
    (re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|password|session_?id|"
        r"security_token|sessionid|authorization|token)[\"']?\s*[:=]\s*[\"']?"
        r"(?:(?:bearer|basic|oauth)\s+)?+)[^\s\"',;&}*]{4,}"
    ), ("token", "secret", "password", "session", "authorization")),
    (re.compile(r"(?i)(<sessionId>)[^<]+"), ("session",)),
    (re.compile(r"(?i)(<(?:\w+:)?password>)[^<]+"), ("password",)),
    # Salesforce session ids: 00D org id prefix, '!' and a long opaque tail.
    (re.compile(r"()00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}"), ("00d",)),
]
_WORDS = frozenset(word for _, words in _PATTERNS for word in words)
MIN_SECRET = 4  # shorter values would mask ordinary words


def escaped_forms(secret: str) -> set[str]:
    """The ways a message can carry a secret: as is, escaped once or twice for JSON (a JSON
    body quoted inside a JSON log line), repr-escaped, percent-encoded (URLs, form bodies),
    XML/HTML-escaped (a SOAP login envelope)."""
    once = json.dumps(secret)[1:-1]
    forms = {secret, once, json.dumps(secret, ensure_ascii=False)[1:-1],
             json.dumps(once)[1:-1], repr(secret)[1:-1], quote(secret, safe=""),
             quote_plus(secret), secret.encode("unicode_escape").decode("ascii"),
             html.escape(secret), html.escape(secret, quote=False)}
    return {f for f in forms if len(f) >= MIN_SECRET}


class SecretMasker:
    def __init__(self) -> None:
        self._secrets: list[str] = []
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            merged = set(self._secrets)
            for secret in secrets:
                if secret and len(secret) >= MIN_SECRET:
                    merged |= escaped_forms(secret)
            # Longest first, so a secret containing another is masked whole.
            self._secrets = sorted(merged, key=len, reverse=True)

    def clear(self) -> None:
        with self._lock:
            self._secrets = []

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        lower = text.lower()
        present = {word for word in _WORDS if word in lower}
        for pattern, words in _PATTERNS:
            if present.intersection(words):
                text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text

    def mask_value(self, value: Any) -> Any:
        """Every string inside a value (dicts, lists, tuples), masked; other objects are
        rendered to text first, since a renderer would call str() or repr() on them anyway."""
        if isinstance(value, str):
            return self.mask(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {self.mask(str(k)): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.mask_value(v) for v in value]
        return self.mask(str(value))


MASKER = SecretMasker()
