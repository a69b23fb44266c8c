"""Calendar quarters, the period every attribution report is cut by."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sync.errors import UserError

_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]\s*([1-4])\s*$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    q: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        found = _QUARTER.match(text)
        if not found:
            raise UserError(f"--quarter '{text}' is not a quarter; write it like 2026Q3")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def label(self) -> str:
        return f"{self.year}Q{self.q}"

    @property
    def start(self) -> date:
        return date(self.year, 3 * (self.q - 1) + 1, 1)

    @property
    def end(self) -> date:
        """First day after the quarter (exclusive bound)."""
        nxt = self.next()
        return date(nxt.year, 3 * (nxt.q - 1) + 1, 1)

    def next(self) -> Quarter:
        return Quarter(self.year + (self.q == 4), self.q % 4 + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - (self.q == 1), (self.q - 2) % 4 + 1)

    def trailing(self, n: int = 4) -> list[Quarter]:
        """The n quarters ending with this one, oldest first."""
        out = [self]
        while len(out) < n:
            out.insert(0, out[0].previous())
        return out


def at_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
