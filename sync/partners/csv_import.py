"""Import a partner CSV as the partner's new snapshot, all or nothing (DESIGN.md section 8), in
constant memory whatever the file's size (issue 15.9).

The file streams through validation into temporary staging tables (`staging`); the diff
against the partner's current rows is then set-based SQL in the caller's transaction: new and
changed rows are upserted and queued for matching (sync.dirty), rows missing from the file are
deleted, and the snapshot version and file fingerprint are bumped. The caller commits
(`schema.db.transaction`), so a bad row, a failure at any point or a kill leaves the previous
snapshot in place.

Deleted rows and the matching engine: partner_accounts only ever holds the current snapshot,
so a row that left the file is deleted here (its overlaps' `partner_account_id` becomes NULL by
the foreign key). Before deleting, and for every changed row, the *accounts* of the active
overlaps that point at the row are queued for matching: the incremental matcher re-matches
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

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from schema.models import Overlap, Partner, PartnerAccount
from sync import dirty
from sync.dirty import Kind, Queue
from sync.errors import UserError
from sync.matching.keys import GENERIC_DOMAINS
from sync.matching.worktables import table_of
from sync.partners.csv_read import ParsedRow, RowProblem, check_encoding, file_sha256
from sync.partners.staging import StagedRows, stage_file, stage_records, staged_scope
from sync.progress import SILENT, Progress

# Fields compared to decide whether a row changed (everything the CSV carries).
COMPARED = ("external_id", "name", "domain", "website", "domain_key", "name_key", "duns",
            "population", "owner_name", "owner_email")
MAX_LISTED = 200  # problems spelled out in one error message
GUIDE = "docs/partner-data.md"


class PartnerImportError(UserError):
    """A partner file with bad rows: nothing was imported. `problems` holds the first
    problems by line (`staging.KEEP_PROBLEMS`); `invalid_rows` counts every bad line."""

    def __init__(self, message: str, problems: Sequence[RowProblem],
                 invalid_rows: int | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems)
        self.invalid_rows = (len({p.line for p in problems}) if invalid_rows is None
                             else invalid_rows)


class FileChangedWhileRead(UserError):
    """The file's bytes changed between the first look and the parse: a writer is still at
    it. Nothing was imported; the next attempt reads the finished file."""


@dataclass(frozen=True)
class ImportResult:
    partner_id: str
    path: Path
    rows: int  # valid rows in the file (imported unless the file was unchanged)
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[RowProblem] = field(default_factory=list)  # first problems of rows left out
    skipped_rows: int = 0  # every bad line left out
    skipped_problems: int = 0  # every problem of those lines
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
        if self.skipped_rows:
            text += f"; {self.skipped_rows} invalid rows skipped"
        return text

    def skipped_message(self) -> str:
        """The rows left out, by line and column (empty when none were)."""
        if not self.skipped_rows:
            return ""
        return problems_message(self.path, self.skipped, imported=True,
                                invalid_rows=self.skipped_rows,
                                problem_count=self.skipped_problems)


def problems_message(path: Path, staged: StagedRows | Sequence[RowProblem], *,
                     imported: bool, invalid_rows: int | None = None,
                     problem_count: int | None = None) -> str:
    """Every bad line named (up to MAX_LISTED), with the column and the fix, never a value.
    Given a list of the first problems, `invalid_rows` and `problem_count` say how many
    there were in all."""
    if isinstance(staged, StagedRows):
        problems, total, rows = staged.problems, staged.problem_count, staged.invalid_rows
    else:
        problems = list(staged)
        total = len(problems) if problem_count is None else problem_count
        rows = len({p.line for p in problems}) if invalid_rows is None else invalid_rows
    listed = "\n".join(f"  {path}: {p.describe()}" for p in problems[:MAX_LISTED])
    more = total - min(len(problems), MAX_LISTED)
    if more > 0:
        listed += f"\n  … and {more} more"
    head = (f"{path}: {rows} invalid row{'s' if rows != 1 else ''}"
            + (", skipped" if imported else "; nothing was imported"))
    tail = "" if imported else (
        "\nfix these rows and import again, or pass --skip-invalid to import the valid rows")
    return f"{head}:\n{listed}{tail}"


def file_fingerprint(content_sha256: str, encoding: str, columns: Mapping[str, str] | None,
                     skip_invalid: bool) -> str:
    # The same bytes read with another mapping or encoding give other rows, so the options
    # are part of what "unchanged" means.
    options = json.dumps({"encoding": encoding, "columns": dict(columns or {}),
                          "skip_invalid": skip_invalid}, sort_keys=True)
    return hashlib.sha256(f"{content_sha256}\0{options}".encode()).hexdigest()


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
    content_sha256: str | None = None,
    progress: Progress = SILENT,
) -> ImportResult:
    """Replace the partner's snapshot with the file's rows, in the session's transaction.

    Raises PartnerImportError (nothing written) when any row is bad and not `skip_invalid`;
    UserError for an unknown partner or an unreadable file. An unchanged file (same bytes
    and options as the last import) is skipped unless `force`, without being parsed.
    `content_sha256`: the file's hash when the caller has just taken it.
    """
    path = Path(path)
    now = now or datetime.now(UTC)
    partner = lock_partner(session, partner_id)
    used_encoding = check_encoding(encoding or "utf-8-sig", path)
    fingerprint = file_fingerprint(content_sha256 or file_sha256(path), used_encoding, columns,
                                   skip_invalid)
    if fingerprint == partner.source_fingerprint and not force:
        return ImportResult(partner_id, path, 0, snapshot_version=partner.snapshot_version,
                            fingerprint=fingerprint, file_unchanged=True)
    conn = session.connection()
    staged = stage_file(conn, path, encoding=used_encoding, columns=columns, generic=generic,
                        progress=progress)
    with staged_scope(conn, staged):
        if file_fingerprint(staged.fingerprint, used_encoding, columns,
                            skip_invalid) != fingerprint:
            raise FileChangedWhileRead(
                f"{path}: the file changed while it was being read; nothing was imported. "
                f"Replace partner files by renaming a complete file over the old one "
                f"({GUIDE})")
        if staged.problem_count and not skip_invalid:
            raise PartnerImportError(problems_message(path, staged, imported=False),
                                     staged.problems, staged.invalid_rows)
        progress.start("merge")
        counts = merge_snapshot(session, partner_id, staged, now=now)
        progress.done("merge")
    partner.snapshot_version += 1
    partner.source_fingerprint = fingerprint
    partner.rejected_fingerprint = None
    partner.last_import_at = now
    partner.updated_at = now
    session.flush()
    return ImportResult(partner_id, path, staged.row_count, *counts,
                        skipped=staged.problems, skipped_rows=staged.invalid_rows,
                        skipped_problems=staged.problem_count,
                        snapshot_version=partner.snapshot_version, fingerprint=fingerprint)


def lock_partner(session: Session, partner_id: str) -> Partner:
    partner = session.execute(
        select(Partner).where(Partner.id == partner_id).with_for_update()
    ).scalar_one_or_none()
    if partner is None:
        raise UserError(f"unknown partner '{partner_id}'; add it to [[partners]] in the config "
                        f"or with `ecosync partners add {partner_id} --name NAME`")
    return partner


def replace_snapshot(session: Session, partner_id: str, rows: Iterable[ParsedRow], *,
                     now: datetime) -> tuple[int, int, int, int]:
    """Make the partner's rows equal `rows` (streamed: any iterable, any length); returns
    (added, changed, removed, unchanged). Row keys as in a file import: external id, else
    domain key, else name key, repeats numbered in the iterable's order. The caller bumps
    the partner's snapshot version."""
    conn = session.connection()
    with staged_scope(conn, stage_records(conn, rows)) as staged:
        if staged.problem_count:  # only repeated external ids can get here
            raise UserError(f"partner {partner_id}: {staged.problems[0].describe()}")
        return merge_snapshot(session, partner_id, staged, now=now)


def merge_snapshot(session: Session, partner_id: str, staged: StagedRows, *,
                   now: datetime) -> tuple[int, int, int, int]:
    """Make the partner's rows equal the staged rows, set-based in the warehouse; returns
    (added, changed, removed, unchanged)."""
    pa = table_of(PartnerAccount)
    k = staged.rows
    conn = session.connection()
    mine = pa.c.partner_id == partner_id
    twin = select(k.c.row_key).where(k.c.row_key == pa.c.row_key)
    differs = or_(*(pa.c[c].is_distinct_from(k.c[c]) for c in COMPARED))
    added = conn.execute(select(func.count()).select_from(k).where(
        ~exists(select(pa.c.id).where(mine, pa.c.row_key == k.c.row_key)))).scalar_one()
    changed = conn.execute(select(func.count()).select_from(
        k.join(pa, and_(mine, pa.c.row_key == k.c.row_key))).where(differs)).scalar_one()
    vanished = and_(mine, ~exists(twin))
    removed = conn.execute(select(func.count()).select_from(pa).where(vanished)).scalar_one()
    # Accounts overlapping through a changed or vanished row must be re-matched, or an
    # overlap could outlive the row that made it.
    # (Outer joins, not EXISTS under an OR: PostgreSQL runs those as a subplan per row,
    # which turns quadratic once the partner's rows outgrow work_mem.)
    stale = (select(pa.c.id).select_from(pa.outerjoin(k, k.c.row_key == pa.c.row_key))
             .where(mine, or_(k.c.row_key.is_(None), differs)))
    dirty.mark(conn, Queue.MATCH, Kind.ACCOUNT, select(Overlap.account_id).where(
        Overlap.partner_account_id.in_(stale), Overlap.ended_at.is_(None)))
    if removed:
        conn.execute(delete(pa).where(vanished))
    if added or changed:
        _upsert_staged(conn, partner_id, k, now)
        # The rows just written (only new and changed ones are): to be re-matched.
        dirty.mark(conn, Queue.MATCH, Kind.PARTNER_ACCOUNT, select(pa.c.id).where(
            mine, pa.c.updated_at == bindparam("now", now, type_=pa.c.updated_at.type)))
    return added, changed, removed, staged.row_count - added - changed


def _upsert_staged(conn: Connection, partner_id: str, k: Table, now: datetime) -> None:
    pa = table_of(PartnerAccount)
    insert = sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert
    stamp = bindparam("now", now, type_=pa.c.updated_at.type)
    target = ["partner_id", "row_key", *COMPARED, "imported_at", "updated_at"]
    # Only new and changed rows are offered: an unchanged one would cost a conflict probe.
    # An outer join finds them (see merge_snapshot); its WHERE also settles SQLite's parse
    # of INSERT … SELECT … ON CONFLICT.
    cur = pa.alias("cur")
    differs = or_(*(cur.c[c].is_distinct_from(k.c[c]) for c in COMPARED))
    rows = (select(literal(partner_id, pa.c.partner_id.type), k.c.row_key,
                   *(k.c[c] for c in COMPARED), stamp, stamp)
            .select_from(k.outerjoin(cur, and_(cur.c.partner_id == partner_id,
                                               cur.c.row_key == k.c.row_key)))
            .where(or_(cur.c.id.is_(None), differs)))
    statement = insert(pa).from_select(target, rows)
    # imported_at only satisfies NOT NULL on the insert half: an update keeps the
    # first-import time. Unchanged rows are not touched at all.
    conn.execute(statement.on_conflict_do_update(
        index_elements=["partner_id", "row_key"],
        set_={**{c: statement.excluded[c] for c in COMPARED},
              "updated_at": statement.excluded.updated_at},
        where=or_(*(pa.c[c].is_distinct_from(statement.excluded[c]) for c in COMPARED))))
