"""User-facing errors: each carries one clear message naming where and how to fix it.

The CLI prints the message and exits with the error's code, never a traceback. The classes
are defined in schema.errors (the lowest layer, so schema/ and connectors/ may raise them
without importing sync/) and re-exported here.
"""

from __future__ import annotations

from schema.errors import ConfigError as ConfigError
from schema.errors import UserError as UserError
from schema.errors import WarehouseError as WarehouseError
