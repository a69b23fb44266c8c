"""Completeness audit: live records a CRM holds against the warehouse's live rows.

The CRM is counted as of each stream's watermark (records created up to it), so rows created
since the last pull are no false alarm; what remains is rows missing from the warehouse, or
deleted since the last pull (which the next tick fixes). Repairing a difference is a re-pull
of the window, the engine's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from connectors.base import Connector
from schema.records import Stream
from sync.ingest import live_count, read_watermark

log = structlog.get_logger("ecosync.audit")


@dataclass(frozen=True, slots=True)
class AuditResult:
    """Live records in the CRM (created up to `as_of`) against live rows in the warehouse."""

    stream: Stream
    crm: int
    warehouse: int
    as_of: datetime | None = None

    @property
    def difference(self) -> int:
        return self.crm - self.warehouse

    @property
    def ok(self) -> bool:
        return self.difference == 0


def audit(session: Session, connector: Connector) -> list[AuditResult]:
    out = []
    for stream in (Stream.ACCOUNTS, Stream.OPPORTUNITIES):
        mark = read_watermark(session, connector.name, stream)
        as_of = mark.modified_at if mark else None
        result = AuditResult(stream, connector.count(stream, created_until=as_of),
                             live_count(session, connector.name, stream), as_of)
        if not result.ok:
            log.warning("completeness audit: counts differ", source=connector.name,
                        stream=stream.value, crm=result.crm, warehouse=result.warehouse,
                        as_of=str(result.as_of))
        out.append(result)
    return out
