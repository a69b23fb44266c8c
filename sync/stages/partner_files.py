"""Watched partner files: the daemon re-imports a partner's file when it changes (issue 17.11).

A file refused for bad rows keeps the partner's previous list, and is reported once per
version of the file: its fingerprint is remembered (`partners.rejected_fingerprint`), so the
next ticks pass over the same bytes quietly instead of failing every run until someone fixes
the file. A partner with `skip_invalid = true` imports the good rows; its skipped lines are
reported once per version too (an unchanged file is not imported again).

Messages name lines and columns, never a cell's value (csv_read).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session

from schema.models import Partner
from sync.config import PartnerConfig
from sync.errors import UserError
from sync.matching.keys import GENERIC_DOMAINS
from sync.partners.csv_import import FileChangedWhileRead, ImportResult, file_fingerprint
from sync.partners.csv_read import check_encoding, file_sha256

Transaction = Callable[[], AbstractContextManager[Session]]


class Imported(Protocol):
    @property
    def result(self) -> ImportResult: ...

    def summary(self) -> str: ...


# Imports one partner file into the session (CSV or exchange: sync.exchange.importer's
# `import_partner_file`, handed in by the tick, which sits above both packages).
Importer = Callable[..., Imported]


class WatchStatus(StrEnum):
    UNCHANGED = "unchanged"  # same bytes and options as the last import
    IMPORTED = "imported"  # a new version, imported (maybe with rows skipped)
    REJECTED = "rejected"  # a new version, refused: say it (once)
    STILL_REJECTED = "still_rejected"  # the version refused before: said already
    UNREADABLE = "unreadable"  # missing, unreadable or being written: try again next tick


@dataclass(frozen=True)
class WatchOutcome:
    partner_id: str
    status: WatchStatus
    message: str = ""  # rejected/unreadable: why; imported: the summary
    skipped: str = ""  # imported: the rows left out, by line and column
    skipped_rows: int = 0

    @property
    def reportable(self) -> bool:
        """Worth a line in the run's errors: a new bad version, or a file we cannot read."""
        return self.status in (WatchStatus.REJECTED, WatchStatus.UNREADABLE)


def refresh_watched_file(transaction: Transaction, partner: PartnerConfig, path: Path, *,
                         importer: Importer, generic: frozenset[str] = GENERIC_DOMAINS,
                         now: datetime) -> WatchOutcome:
    """Import the partner's watched file if it changed; each `transaction()` is one unit of
    work (the import's, then the refusal's, so the refusal outlives the import's rollback)."""
    columns = partner.columns or None
    try:
        encoding = check_encoding(partner.encoding, path)
        digest = file_sha256(path)
    except UserError as exc:
        return WatchOutcome(partner.id, WatchStatus.UNREADABLE, exc.message)
    fingerprint = file_fingerprint(digest, encoding, columns, partner.skip_invalid)
    with transaction() as session:
        known = session.get(Partner, partner.id)
        if known is not None and fingerprint == known.rejected_fingerprint:
            return WatchOutcome(partner.id, WatchStatus.STILL_REJECTED)
    try:
        with transaction() as session:
            imported = importer(
                session, partner.id, path, columns=columns, encoding=encoding,
                skip_invalid=partner.skip_invalid, generic=generic, now=now,
                content_sha256=digest)
    except FileChangedWhileRead as exc:
        return WatchOutcome(partner.id, WatchStatus.UNREADABLE, exc.message)
    except UserError as exc:
        # All or nothing: the previous snapshot stays. Remember this version as refused.
        with transaction() as session:
            session.execute(update(Partner).where(Partner.id == partner.id)
                            .values(rejected_fingerprint=fingerprint))
        return WatchOutcome(partner.id, WatchStatus.REJECTED, exc.message)
    result = imported.result
    if result.file_unchanged:
        return WatchOutcome(partner.id, WatchStatus.UNCHANGED)
    return WatchOutcome(partner.id, WatchStatus.IMPORTED, imported.summary(),
                        result.skipped_message(), result.skipped_rows)
