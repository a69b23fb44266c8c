"""`ecosync share log`: every export of our accounts, newest first. The log holds what we
sent (policy, counts per population, file checksums), never a row of it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import ShareExport


def export_log(session: Session, *, partner_id: str | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
    query = select(ShareExport).order_by(ShareExport.exported_at.desc(), ShareExport.id.desc())
    if partner_id is not None:
        query = query.where(ShareExport.partner_id == partner_id)
    out = []
    for e in session.scalars(query.limit(limit)):
        out.append({
            "id": e.id, "exported_at": e.exported_at.isoformat(), "exported_by": e.exported_by,
            "partner_id": e.partner_id, "format": e.format,
            "schema_version": e.schema_version, "organisation": e.organisation,
            "policy": dict(e.policy), "counts": dict(e.counts), "rows": e.rows,
            "file": e.file_name, "sha256": e.checksum, "manifest_sha256": e.manifest_checksum,
        })
    return out
