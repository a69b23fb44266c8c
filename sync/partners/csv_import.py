"""Import a partner CSV as the partner's new snapshot, all or nothing (DESIGN.md section 8).

The whole file is read and validated before the first write. Then, in the caller's
transaction, the partner's rows are diffed against the file by `row_key`: new and changed rows
are upserted with `match_dirty`, rows missing from the file are deleted, and the snapshot
version and file fingerprint are bumped. The caller commits (`schema.db.transaction`), so a
failure at any point leaves the previous snapshot in place.

Deleted rows and the matching engine: partner_accounts only ever holds the current snapshot,
so a row that left the file is deleted here (its overlaps' `partner_account_id` becomes NULL by
the foreign key). Before deleting, and for every changed row, the *accounts* of the active
overlaps that point at the row are marked `match_dirty`: the incremental matcher re-matches
dirty accounts and dirty partner accounts, and ends the overlaps it no longer finds, so no
vanished row keeps an overlap alive.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from schema.models import Account, Overlap, Partner, PartnerAccount
from schema.upsert import bulk_upsert, chunked
from sync.errors import UserError
from sync.matching.keys import GENERIC_DOMAINS
from sync.partners.csv_read import ParsedRow, RowProblem, read_partner_csv

# Fields compared to decide whether a row changed (everything the CSV carries).
COMPARED = ("external_id", "name", "domain", "website", "domain_key", "name_key", "duns",
            "population", "owner_name", "owner_email")
MAX_LISTED = 200  # problems spelled out in one error message; all are on the exception
_ID_CHUNK = 500


class PartnerImportError(UserError):
    """A partner file with bad rows: nothing was imported. `problems` lists every one."""

    def __init__(self, message: str, problems: Sequence[RowProblem]) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class ImportResult:
    partner_id: str
    path: Path
    rows: int  # valid rows in the file (imported unless the file was unchanged)
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[RowProblem] = field(default_factory=list)  # bad rows left out
    snapshot_version: int = 0
    fingerprint: str = ""
    file_unchanged: bool = False  # same file and options as the last import: nothing done

    def summary(self) -> str:
        if self.file_unchanged:
            return (f"{self.partner_id}: {self.path} is unchanged since the last import "
                    f"(snapshot {self.snapshot_version}); nothing to do (use --force to "
                    f"re-import)")
        text = (f"{self.partner_id}: imported {self.rows} rows from {self.path} "
                f"(snapshot {self.snapshot_version}): {self.added} added, {self.changed} "
                f"changed, {self.removed} removed, {self.unchanged} unchanged")
        if self.skipped:
            text += f"; {len(self.skipped)} invalid rows skipped"
        return text


def problems_message(path: Path, problems: Sequence[RowProblem], *, imported: bool) -> str:
    listed = "\n".join(f"  {path}: {p.describe()}" for p in problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    if more > 0:
        listed += f"\n  … and {more} more"
    head = (f"{path}: {len(problems)} invalid row{'s' if len(problems) != 1 else ''}"
            + (", skipped" if imported else "; nothing was imported"))
    tail = "" if imported else (
        "\nfix these rows and import again, or pass --skip-invalid to import the valid rows")
    return f"{head}:\n{listed}{tail}"


def _fingerprint(content_sha256: str, encoding: str, columns: Mapping[str, str] | None,
                 skip_invalid: bool) -> str:
    # The same bytes read with another mapping or encoding give other rows, so the options
    # are part of what "unchanged" means.
    options = json.dumps({"encoding": encoding, "columns": dict(columns or {}),
                          "skip_invalid": skip_invalid}, sort_keys=True)
    return hashlib.sha256(f"{content_sha256}\0{options}".encode()).hexdigest()


def row_keys(rows: Iterable[ParsedRow]) -> list[str]:
    """Stable identity of each row within one partner's list: external id, else domain key,
    else name key; repeats of one key (no external id) get an ordinal suffix."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for row in rows:
        if row.external_id is not None:
            base = f"x:{row.external_id}"
        elif row.domain_key is not None:
            base = f"d:{row.domain_key}"
        else:
            assert row.name_key is not None  # validated: a name or a usable domain
            base = f"n:{row.name_key}"
        if len(base) > 200:  # row_key is VARCHAR(255), with room for a "#n" suffix
            base = f"{base[:2]}sha256:{hashlib.sha256(base.encode()).hexdigest()}"
        count = seen.get(base, 0) + 1
        seen[base] = count
        out.append(base if count == 1 else f"{base}#{count}")
    return out


def import_partner_csv(
    session: Session,
    partner_id: str,
    path: Path | str,
    *,
    columns: Mapping[str, str] | None = None,
    encoding: str | None = None,
    skip_invalid: bool = False,
    force: bool = False,
    generic: frozenset[str] = GENERIC_DOMAINS,
    now: datetime | None = None,
) -> ImportResult:
    """Replace the partner's snapshot with the file's rows, in the session's transaction.

    Raises PartnerImportError (nothing written) when any row is bad and not `skip_invalid`;
    UserError for an unknown partner or an unreadable file. An unchanged file (same bytes
    and options as the last import) is skipped unless `force`.
    """
    path = Path(path)
    now = now or datetime.now(UTC)
    partner = session.execute(
        select(Partner).where(Partner.id == partner_id).with_for_update()
    ).scalar_one_or_none()
    if partner is None:
        raise UserError(f"unknown partner '{partner_id}'; add it to [[partners]] in the config "
                        f"or with `ecosync partners add {partner_id} --name NAME`")
    used_encoding = encoding or "utf-8-sig"
    result = read_partner_csv(path, encoding=used_encoding, columns=columns, generic=generic)
    if result.problems and not skip_invalid:
        raise PartnerImportError(problems_message(path, result.problems, imported=False),
                                 result.problems)
    fingerprint = _fingerprint(result.fingerprint, used_encoding, columns, skip_invalid)
    if fingerprint == partner.source_fingerprint and not force:
        return ImportResult(partner_id, path, len(result.rows), skipped=result.problems,
                            snapshot_version=partner.snapshot_version,
                            fingerprint=fingerprint, file_unchanged=True)
    counts = replace_snapshot(session, partner_id, result.rows, now=now)
    partner.snapshot_version += 1
    partner.source_fingerprint = fingerprint
    partner.last_import_at = now
    partner.updated_at = now
    session.flush()
    return ImportResult(partner_id, path, len(result.rows), *counts, skipped=result.problems,
                        snapshot_version=partner.snapshot_version, fingerprint=fingerprint)


def replace_snapshot(session: Session, partner_id: str, rows: Sequence[ParsedRow], *,
                     now: datetime) -> tuple[int, int, int, int]:
    """Make the partner's rows equal `rows`; returns (added, changed, removed, unchanged)."""
    table = PartnerAccount.__table__
    existing: dict[str, tuple[int, tuple[Any, ...]]] = {}
    for rec in session.execute(
        select(table.c.id, table.c.row_key, *(table.c[c] for c in COMPARED))
        .where(table.c.partner_id == partner_id)
    ):
        existing[rec[1]] = (rec[0], tuple(rec[2:]))
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    changed_ids: list[int] = []
    keep: set[str] = set()
    for key, row in zip(row_keys(rows), rows, strict=True):
        keep.add(key)
        values = {"external_id": row.external_id, "name": row.name, "domain": row.domain,
                  "website": row.website, "domain_key": row.domain_key,
                  "name_key": row.name_key, "duns": row.duns,
                  "population": row.population.value, "owner_name": row.owner_name,
                  "owner_email": row.owner_email}
        before = existing.get(key)
        if before is None:
            added.append({"partner_id": partner_id, "row_key": key, **values,
                          "match_dirty": True, "imported_at": now, "updated_at": now})
        elif before[1] != tuple(values[c] for c in COMPARED):
            # imported_at only satisfies NOT NULL on the insert half of the upsert: the
            # conflict update below leaves the first-import time alone.
            changed.append({"partner_id": partner_id, "row_key": key, **values,
                            "match_dirty": True, "imported_at": now, "updated_at": now})
            changed_ids.append(before[0])
    removed_ids = [rid for key, (rid, _) in existing.items() if key not in keep]
    # Accounts overlapping through a changed or vanished row must be re-matched, or an
    # overlap could outlive the row that made it.
    _mark_accounts_dirty(session, changed_ids + removed_ids)
    for chunk in chunked(removed_ids, _ID_CHUNK):
        session.execute(delete(PartnerAccount).where(PartnerAccount.id.in_(chunk)))
    if added:
        bulk_upsert(session, PartnerAccount, added, ["partner_id", "row_key"])
    if changed:
        bulk_upsert(session, PartnerAccount, changed, ["partner_id", "row_key"],
                    [*COMPARED, "match_dirty", "updated_at"])
    unchanged = len(rows) - len(added) - len(changed)
    return len(added), len(changed), len(removed_ids), unchanged


def _mark_accounts_dirty(session: Session, partner_account_ids: Sequence[int]) -> None:
    for chunk in chunked(partner_account_ids, _ID_CHUNK):
        overlapping = (
            select(Overlap.account_id)
            .where(Overlap.partner_account_id.in_(chunk), Overlap.ended_at.is_(None))
        )
        session.execute(
            update(Account).where(Account.id.in_(overlapping)).values(match_dirty=True)
            .execution_options(synchronize_session=False)
        )
