"""The checklist's vocabulary: one `Check` line, the report that holds them, the guides the
fixes point to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sync.logs import MASKER

Status = Literal["ok", "warn", "fail", "skip"]
# A warning is worth reading but does not stop a production run, so it still passes.
PASSING: frozenset[str] = frozenset({"ok", "warn"})

PARTNER_GUIDE = "docs/partner-data.md"
OPS_GUIDE = "docs/operations.md"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist."""

    area: str  # config, warehouse, a CRM source name, "partner <id>", sharing, daemon
    name: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.status in PASSING

    def as_dict(self) -> dict[str, str]:
        return {"area": self.area, "name": self.name, "status": self.status,
                "detail": self.detail, "fix": self.fix}

    def masked(self) -> Check:
        return Check(self.area, self.name, self.status, MASKER.mask(self.detail),
                     MASKER.mask(self.fix))


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "warn": 0, "fail": 0, "skip": 0}
        for c in self.checks:
            out[c.status] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(),
                "checks": [c.as_dict() for c in self.checks]}


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]
