"""User-facing errors: each carries one clear message naming where and how to fix it.

The CLI prints the message and exits with the error's code, never a traceback. The classes
are defined in schema.errors (the lowest layer, so schema/ and connectors/ may raise them
without importing sync/) and re-exported here.
"""

from __future__ import annotations

import re

from schema.errors import ConfigError as ConfigError
from schema.errors import UserError as UserError
from schema.errors import WarehouseError as WarehouseError
from sync.masking import MASKER

# A PostgreSQL message may quote the offending value ('invalid input syntax for type
# integer: "x"', 'Key (owner_email)=(x) already exists'): those parts are withheld.
_QUOTED_VALUE = re.compile(r'(:\s*)"[^"\n]*"\s*$|(\bKey \([^)]*\)=)\([^\n]*?\)')


_DRIVERS = frozenset({"sqlite3", "psycopg", "psycopg2", "psycopg_pool"})


def is_database_error(exc: BaseException) -> bool:
    """SQLAlchemy's statement errors, and a driver's own (a raw COPY on PostgreSQL)."""
    from sqlalchemy.exc import StatementError

    return isinstance(exc, StatementError) or (
        type(exc).__module__.partition(".")[0] in _DRIVERS and isinstance(exc, Exception))


def in_chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or while handling, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__)
    return chain


def safe_traceback(exc: BaseException) -> str | None:
    """A traceback for a log line that never quotes a database error's statement, parameters
    or row detail; None when no exception of the chain is a database error (the usual
    rendering is then safe, once masked)."""
    import traceback

    chain = in_chain(exc)
    if not any(is_database_error(e) for e in chain):
        return None
    parts = []
    for e in reversed(chain):
        parts.append("Traceback (most recent call last):\n"
                     + "".join(traceback.format_tb(e.__traceback__)) + describe_error(e))
    return "\n\nwhich led to\n\n".join(parts)


def describe_error(exc: BaseException) -> str:
    """One line about an exception that is safe to log, store and print: secrets masked,
    and for a database error only the driver's first line (never the statement or its bound
    parameters, which carry row data such as a hidden partner population's owner e-mails)."""
    if isinstance(exc, UserError):
        return MASKER.mask(exc.message)
    if is_database_error(exc):
        orig = getattr(exc, "orig", None)
        cause = orig if orig is not None else (exc.__cause__ or exc)
        lines = str(cause).strip().splitlines() if cause is not None else []
        first = _QUOTED_VALUE.sub(lambda m: (m.group(1) or m.group(2) or "") + "(value withheld)",
                                  lines[0]) if lines else "no message"
        kind = type(cause).__name__ if cause is not None else type(exc).__name__
        return MASKER.mask(f"{kind}: {first}")
    text = str(exc).strip()
    return MASKER.mask(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def masked_text(text: str | None) -> str | None:
    """Text about to be stored (a run's error, a dead letter's message), secrets masked."""
    return None if text is None else MASKER.mask(text)
