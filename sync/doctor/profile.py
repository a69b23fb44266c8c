"""What doctor needs to know of one CRM: its config section, object names, and the fixes it
prints. Each CRM supplies one (sync/doctor/salesforce.py, sync/doctor/hubspot.py) and the
checks in sync/doctor/crm.py read only these, never the CRM's name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from schema.records import Stream
from sync.config import Config


class CrmSettings(Protocol):
    """The part of a `[crm.*]` section doctor reads."""

    @property
    def enabled(self) -> bool: ...

    @property
    def name(self) -> str: ...

    @property
    def auth(self) -> str: ...


# (source, object, api name, logical name, whether it exists) -> the fix for an owned field
FieldFix = Callable[[str, str, str, str, bool], str]


@dataclass(frozen=True)
class CrmDoctor:
    section: str  # the config section under [crm], e.g. "salesforce"
    settings: Callable[[Config], CrmSettings]
    objects: Mapping[Stream, str]  # the CRM's own name of each stream's object
    guide: str
    auth_fix: Mapping[str, str]  # by auth mode
    connection_fix: str
    read_fix: Callable[[str], str]  # object -> how to grant reading it
    fields_fix: str  # when the owned fields cannot be listed at all
    field_fix: FieldFix
    read_only_for: str  # who a read-only field is read-only for
    no_daily_limit: str  # the budget line when the platform reports no daily limit

    def key(self, name: str) -> str:
        return f"crm.{self.section}.{name}"
