"""What one re-match did: counts per stage and seconds per stage (logs, reports, bench)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MatchStats:
    full: bool
    dirty_accounts: int = 0
    dirty_partner_accounts: int = 0
    scope_accounts: int | None = None  # None on a full run: every account
    candidates: int = 0
    fuzzy_pairs: int = 0
    # How the fuzzy stage scored names (sync.matching.fuzzy.SCORING), "" when it did not run.
    fuzzy_scoring: str = ""
    overlaps: int = 0  # desired overlaps in scope
    inserted: int = 0
    still_present: int = 0
    ended: int = 0
    changed_accounts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "seconds"} | {
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()}}
