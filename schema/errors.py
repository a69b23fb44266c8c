"""User-facing errors: each carries one clear message naming where and how to fix it.

They live in the lowest layer so that every layer may raise them (schema.db refuses a bad
warehouse URL); sync.errors re-exports them. The CLI prints the message and exits with the
error's code, never a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix (bad config, bad file, missing CRM field, bad credentials)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(UserError):
    exit_code = 2


class WarehouseError(UserError):
    exit_code = 3
