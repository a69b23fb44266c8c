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

# A PostgreSQL message may quote the offending value ('invalid input syntax for type
# integer: "x"', 'Key (owner_email)=(x) already exists'): those parts are withheld.
_QUOTED_VALUE = re.compile(r'(:\s*)"[^"\n]*"\s*$|(\bKey \([^)]*\)=)\([^\n]*?\)')


def is_database_error(exc: BaseException) -> bool:
    from sqlalchemy.exc import StatementError

    return isinstance(exc, StatementError)


def describe_error(exc: BaseException) -> str:
    """One line about an exception that is safe to log, store and print: secrets masked,
    and for a database error only the driver's first line (never the statement or its bound
    parameters, which carry row data such as a hidden partner population's owner e-mails)."""
    from sync.logs import MASKER

    if isinstance(exc, UserError):
        return MASKER.mask(exc.message)
    if is_database_error(exc):
        orig = getattr(exc, "orig", None)
        cause = orig if orig is not None else exc.__cause__
        lines = str(cause).strip().splitlines() if cause is not None else []
        first = _QUOTED_VALUE.sub(lambda m: (m.group(1) or m.group(2) or "") + "(value withheld)",
                                  lines[0]) if lines else "no message"
        kind = type(cause).__name__ if cause is not None else type(exc).__name__
        return MASKER.mask(f"{kind}: {first}")
    text = str(exc).strip()
    return MASKER.mask(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def masked_text(text: str | None) -> str | None:
    """Text about to be stored (a run's error, a dead letter's message), secrets masked."""
    from sync.logs import MASKER

    return None if text is None else MASKER.mask(text)
