"""Importing a partner's file, whichever kind it is: an ecosync exchange file (manifest +
rows, docs/exchange-format.md) is recognised and imported with no column mapping; any other
CSV goes through `sync.partners.csv_import` with the partner's mapping.

An exchange file is checked whole before anything lands: the manifest's fields, the rows'
checksum and count, and every row against the sender's own policy (no row of a population
shared at `counts` or `hidden`, no owner, stage or activity outside `full`). Rows then import
as any partner list (the same validation, all or nothing); populations shared as counts only
are stored as counts (`partner_population_counts`), shown by `sync.sharing`.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.orm import Session

from schema.models import PartnerPopulationCount
from sync.errors import UserError
from sync.exchange.format import (
    COLUMNS,
    GUIDE,
    MANIFEST_SUFFIX,
    ExchangeFileError,
    Manifest,
    looks_like_exchange_rows,
    manifest_path,
    read_manifest,
    row_policy_problem,
)
from sync.matching.keys import GENERIC_DOMAINS
from sync.partners.csv_import import ImportResult, import_partner_csv, lock_partner
from sync.partners.csv_read import file_sha256
from sync.progress import SILENT, Progress


@dataclass(frozen=True)
class FileImport:
    """What an import did; `manifest` is set for an exchange file."""

    result: ImportResult
    manifest: Manifest | None = None
    counts_only: dict[str, int] = field(default_factory=dict)
    # The partner imported into, when the file's sender is neither its id nor its name: the
    # list it had was replaced by a file that may be another partner's.
    other_sender: tuple[str, str] | None = None  # (partner id, partner name)

    def summary(self) -> str:
        text = self.result.summary()
        if self.manifest is not None:
            text += (f"; exchange file from {self.manifest.organisation} (version "
                     f"{self.manifest.schema_version}, generated "
                     f"{self.manifest.generated_at.isoformat(timespec='seconds')})")
            if self.counts_only:
                text += "; counts only: " + ", ".join(
                    f"{p} {n:,}" for p, n in self.counts_only.items())
            if self.other_sender is not None:
                pid, name = self.other_sender
                text += (f". Check the partner: this file comes from "
                         f"'{self.manifest.organisation}', and {pid} is '{name}'; if it is "
                         f"another partner's file, import {pid}'s own file again")
        return text


def find_manifest(path: Path) -> Path | None:
    """The manifest of an exchange pair `path` belongs to (either file of it), else None."""
    if path.name.endswith(MANIFEST_SUFFIX):
        return path
    if path.suffix.lower() == ".csv" and manifest_path(path).is_file():
        return manifest_path(path)
    return None


def _first_line(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            return fh.readline(4096).decode("utf-8", errors="replace")
    except OSError:
        return ""  # the CSV import names the unreadable file


def import_partner_file(
    session: Session, partner_id: str, path: Path, *,
    columns: Mapping[str, str] | None = None, encoding: str | None = None,
    skip_invalid: bool = False, force: bool = False,
    generic: frozenset[str] = GENERIC_DOMAINS, now: datetime,
    content_sha256: str | None = None, progress: Progress = SILENT,
) -> FileImport:
    """Import an exchange file natively, or a partner CSV with the given options."""
    manifest_file = find_manifest(path)
    if manifest_file is None:
        if looks_like_exchange_rows(_first_line(path)):
            raise UserError(f"{path} is the rows file of an ecosync exchange, but its manifest "
                            f"{manifest_path(path).name} is not beside it; import the two "
                            f"files together ({GUIDE})")
        result = import_partner_csv(session, partner_id, path, columns=columns,
                                    encoding=encoding, skip_invalid=skip_invalid, force=force,
                                    generic=generic, now=now, content_sha256=content_sha256,
                                    progress=progress)
        if not result.file_unchanged:
            # A plain list replaces the whole snapshot, counts from an earlier exchange too.
            session.execute(delete(PartnerPopulationCount)
                            .where(PartnerPopulationCount.partner_id == partner_id))
        return FileImport(result)
    return import_exchange(session, partner_id, manifest_file, rows_given=path,
                           force=force, generic=generic, now=now, progress=progress)


def import_exchange(session: Session, partner_id: str, manifest_file: Path, *,
                    rows_given: Path | None = None, force: bool = False,
                    generic: frozenset[str] = GENERIC_DOMAINS, now: datetime,
                    progress: Progress = SILENT) -> FileImport:
    partner = lock_partner(session, partner_id)  # an unknown partner fails before file work
    manifest = read_manifest(manifest_file)
    rows_path = manifest_file.parent / manifest.rows_file
    if rows_given is not None and rows_given.suffix.lower() == ".csv" \
            and rows_given.name != manifest.rows_file:
        raise ExchangeFileError(
            f"{manifest_file}: field 'rows.file' names {manifest.rows_file}, not "
            f"{rows_given.name}; nothing was imported. Import the manifest the rows came "
            f"with ({GUIDE})")
    if not rows_path.is_file():
        raise UserError(f"{rows_path}: the rows file named by {manifest_file.name} is "
                        f"missing; put the two files in one folder ({GUIDE})")
    digest = file_sha256(rows_path)
    if digest != manifest.sha256:
        raise ExchangeFileError(
            f"{rows_path}: its sha256 is not the manifest's field 'rows.sha256'; the file was "
            f"changed or cut short after export; nothing was imported. Ask for it again "
            f"({GUIDE})")
    _check_rows(rows_path, manifest)
    result = import_partner_csv(session, partner_id, rows_path, columns=None,
                                encoding="utf-8-sig", skip_invalid=False, force=force,
                                generic=generic, now=now, content_sha256=digest,
                                progress=progress)
    counts_only = manifest.counts_only()
    session.execute(delete(PartnerPopulationCount)
                    .where(PartnerPopulationCount.partner_id == partner_id))
    session.add_all(PartnerPopulationCount(partner_id=partner_id, population=population,
                                           accounts=n, as_of=manifest.generated_at,
                                           imported_at=now)
                    for population, n in counts_only.items())
    session.flush()
    other = (None if _same_name(manifest.organisation, partner.id)
             or _same_name(manifest.organisation, partner.name) else (partner.id, partner.name))
    return FileImport(replace(result, path=rows_path), manifest, counts_only, other)


def _same_name(a: str, b: str) -> bool:
    """Names as partner names are told apart: ignoring case and spaces."""
    return "".join(a.split()).casefold() == "".join(b.split()).casefold()


def _check_rows(path: Path, manifest: Manifest) -> None:
    """Every row within the sender's policy, and as many per population as the manifest
    says; streamed (one row in memory)."""
    seen: Counter[str] = Counter()
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header != list(COLUMNS):
                raise ExchangeFileError(
                    f"{path}: line 1: the header must be {','.join(COLUMNS)} in version "
                    f"{manifest.schema_version}; nothing was imported ({GUIDE})")
            for cells in reader:
                problem = row_policy_problem(cells, manifest.policy)
                if problem is not None:
                    raise ExchangeFileError(
                        f"{path}: line {reader.line_num}: {problem}; the file exceeds the "
                        f"sender's own policy, so nothing was imported ({GUIDE})")
                seen[cells[COLUMNS.index("population")]] += 1
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ExchangeFileError(f"{path}: not a readable UTF-8 CSV ({exc.__class__.__name__});"
                                f" nothing was imported ({GUIDE})") from None
    for population in manifest.named_populations():
        if seen[population] != manifest.counts[population]:
            raise ExchangeFileError(
                f"{path}: {seen[population]} rows of population {population}, but the "
                f"manifest's field 'counts.{population}' says {manifest.counts[population]}; "
                f"nothing was imported ({GUIDE})")
