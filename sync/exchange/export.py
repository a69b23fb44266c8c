"""`ecosync share export`: our accounts for one partner, under OUR outbound policy for it
(DESIGN.md 10, docs/exchange-format.md).

Which of our accounts is a customer, an open opportunity or a prospect is `sync.populations`'
rule; what leaves for each population is `sync.sharing.outbound_level`'s: rows for `names`
and `full` (the owner's name and e-mail, stage and activity only at `full`), a count for
`counts`, nothing for `hidden`. Rows stream from the warehouse to the file (bounded memory at
any size); the files appear under their final names only once complete, and every export is
recorded in the share log (`share_exports`) in the same transaction.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, case, false, func, null, select
from sqlalchemy.orm import Session

from schema.models import Account, CrmOwner, Opportunity, ShareExport
from sync.config import Config, PartnerConfig
from sync.errors import UserError
from sync.exchange.format import (
    COLUMNS,
    GUIDE,
    MANIFEST_SUFFIX,
    PLAIN_COLUMNS,
    POPULATIONS,
    SCHEMA_VERSION,
    Manifest,
)
from sync.matching.keys import GENERIC_DOMAINS
from sync.owners import OWNER_OF_ACCOUNT
from sync.partners.csv_read import ParsedRow, file_sha256, parse_record
from sync.partners.registry import partner_config, sync_partners_from_config
from sync.populations import our_populations
from sync.progress import SILENT, Progress, counting
from sync.sharing import NAMED, Level, outbound_level

BATCH = 5_000
_SLUG = re.compile(r"[^a-z0-9]+")
# Where each exchange column sits, for the importer's own row check (`parse_record`).
_INDEX = {c: COLUMNS.index(c) for c in ("name", "domain", "duns", "population", "owner_name",
                                        "owner_email")}


class ExportFormat(StrEnum):
    ECOSYNC = "ecosync"  # manifest + rows, read natively by `ecosync partners import`
    PLAIN = "plain"  # "Company Name,Website", for hosted account-mapping tools


@dataclass(frozen=True)
class ExportResult:
    export_id: int
    partner_id: str
    format: ExportFormat
    rows_path: Path
    manifest_path: Path | None
    policy: dict[str, Level]
    counts: dict[str, int]  # population -> rows written, or the count shared
    rows: int
    checksum: str
    left_out: int = 0  # accounts a partner's import would refuse (no name and no domain…)

    def summary(self) -> str:
        parts = []
        plain = self.format is ExportFormat.PLAIN
        for population in POPULATIONS:
            level = self.policy[population]
            if level is Level.HIDDEN:
                parts.append(f"{population} hidden")
            elif level is Level.COUNTS and plain:
                # The plain file has rows only: the count is not sent at all.
                parts.append(f"{population} not sent (counts only; the plain format carries "
                             f"no counts)")
            elif level is Level.COUNTS:
                parts.append(f"{population} {self.counts.get(population, 0):,} (count only)")
            elif plain:
                parts.append(f"{population} {self.counts.get(population, 0):,} rows "
                             f"(name and website)")
            else:
                parts.append(f"{population} {self.counts.get(population, 0):,} rows ({level})")
        text = (f"export #{self.export_id} for {self.partner_id}: {self.rows:,} rows in "
                f"{self.rows_path}" + (f" with {self.manifest_path.name}"
                                       if self.manifest_path else "")
                + f"; {'; '.join(parts)}; sha256 {self.checksum}")
        if self.left_out:
            text += (f"; {self.left_out:,} accounts left out (no name or usable domain, or a "
                     f"value the format cannot carry)")
        return text


@dataclass
class _Tally:
    rows: int = 0
    left_out: int = 0
    per_population: Counter[str] = field(default_factory=Counter)


def outbound_policy(config: Config, partner_id: str) -> tuple[PartnerConfig, dict[str, Level]]:
    """The partner's config entry and our outbound level per population; an export with
    nothing to share says how to set a policy."""
    partner = partner_config(config, partner_id)
    example = (f'outbound = {{ customer = "names", open_opportunity = "counts" }} under '
               f'[[partners]] id = "{partner_id}" in the config ({GUIDE})')
    if partner is None:
        raise UserError(f"partner '{partner_id}' is not in the config: what we share with a "
                        f"partner is its outbound policy there; add it with e.g. {example}")
    policy = {p: outbound_level(partner.outbound, p) for p in POPULATIONS}
    if all(level is Level.HIDDEN for level in policy.values()):
        raise UserError(f"partner '{partner_id}' has no outbound policy: nothing of ours may "
                        f"leave for them (every population is hidden until you decide); set "
                        f"{example}")
    return partner, policy


def export_for_partner(session: Session, config: Config, partner_id: str, out_dir: Path, *,
                       fmt: ExportFormat = ExportFormat.ECOSYNC, by: str, now: datetime,
                       generic: frozenset[str] = GENERIC_DOMAINS,
                       progress: Progress = SILENT) -> ExportResult:
    """Write the export files into `out_dir` and record the export; the caller commits."""
    partner, policy = outbound_policy(config, partner_id)
    # One name for both ways of sharing: [exchange], else [psi] organisation.
    organisation = config.exchange.organisation.strip() or config.psi.organisation.strip()
    if fmt is ExportFormat.ECOSYNC and not organisation:
        raise UserError("[exchange] organisation is not set: every exchange manifest says who "
                        "sent it; set organisation = \"Your Company\" under [exchange] (or "
                        f"[psi]) in the config ({GUIDE})")
    named = [p for p in POPULATIONS if policy[p] in NAMED]
    if fmt is ExportFormat.PLAIN and not named:
        raise UserError(f"partner '{partner_id}': the plain format carries company names only, "
                        f"and our outbound policy shares no population by name with them; "
                        f"use the ecosync format for counts, or share a population at names")
    sync_partners_from_config(session, config, now=now)
    base = f"{_slug(organisation or 'ecosync')}-to-{_slug(partner.id)}-{now:%Y%m%dT%H%M%SZ}"
    rows_path = out_dir / (base + (".csv" if fmt is ExportFormat.ECOSYNC else "-plain.csv"))
    manifest_file = out_dir / (base + MANIFEST_SUFFIX) if fmt is ExportFormat.ECOSYNC else None
    for target in (rows_path, manifest_file):
        if target is not None and target.exists():
            raise UserError(f"{target} already exists; pass another --out folder or wait a "
                            f"second (export names carry the time)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
    partial = [rows_path.with_name(f".{rows_path.name}.part")]
    try:
        progress.start("export", partner.id, unit="rows")
        tally = _write_rows(session, partial[0], policy, fmt, generic, progress, partner.id)
        progress.done("export", partner.id)
        checksum = file_sha256(partial[0])
        counts = _counts(session, policy, tally, with_sizes=fmt is ExportFormat.ECOSYNC)
        manifest_checksum = None
        if manifest_file is not None:
            manifest = Manifest(SCHEMA_VERSION, now, organisation, policy, counts,
                                rows_path.name, tally.rows, checksum)
            partial.append(manifest_file.with_name(f".{manifest_file.name}.part"))
            _write_json(partial[1], manifest.as_json())
            manifest_checksum = file_sha256(partial[1])
        record = ShareExport(
            partner_id=partner.id, format=str(fmt),
            schema_version=SCHEMA_VERSION if fmt is ExportFormat.ECOSYNC else None,
            exported_at=now, exported_by=by[:120], organisation=organisation[:255],
            policy={p: str(level) for p, level in policy.items()}, counts=counts,
            rows=tally.rows, file_name=rows_path.name, checksum=checksum,
            manifest_checksum=manifest_checksum)
        session.add(record)
        session.flush()
        # Complete files only, under their final names: the manifest last, so a reader that
        # finds it finds its rows.
        os.replace(partial[0], rows_path)
        if manifest_file is not None:
            os.replace(partial[1], manifest_file)
    except BaseException:
        for path in partial:
            path.unlink(missing_ok=True)
        raise
    return ExportResult(record.id, partner.id, fmt, rows_path, manifest_file, policy, counts,
                        tally.rows, checksum, tally.left_out)


def discard_files(result: ExportResult) -> None:
    """Remove an export's files when its transaction could not commit (no log, no files)."""
    for path in (result.rows_path, result.manifest_path):
        if path is not None:
            path.unlink(missing_ok=True)


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.casefold()).strip("-")[:60] or "x"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    import json

    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_query(policy: dict[str, Level]) -> Select[Any]:
    """Our accounts of the populations shared by name, with what a `full` row may carry."""
    pops = our_populations().subquery("pops")
    full = [p for p in POPULATIONS if policy[p] is Level.FULL]
    named = [p for p in POPULATIONS if policy[p] in NAMED]
    o = Opportunity
    of_account = and_(o.source == Account.source, o.account_external_id == Account.external_id,
                      o.is_deleted == false())
    # The stage a partner's rep would ask about: the latest open deal's, else the latest
    # closed one's.
    stage = (select(o.stage).where(of_account)
             .order_by(case((o.status == "open", 0), else_=1), o.modified_at.desc(),
                       o.id.desc())
             .limit(1).scalar_subquery())
    created = select(func.max(o.created_at)).where(of_account).scalar_subquery()
    closed = (select(func.max(o.close_date)).where(of_account, o.status != "open")
              .scalar_subquery())
    is_full = pops.c.population.in_(full) if full else false()
    return (
        select(Account.name, Account.name_key, Account.domain_key, Account.duns,
               pops.c.population,
               case((is_full, stage), else_=null()).label("stage"),
               case((is_full, created), else_=null()).label("created"),
               case((is_full, closed), else_=null()).label("closed"),
               # Personal data: the owner leaves only with a population shared in full.
               case((is_full, CrmOwner.name), else_=null()).label("owner_name"),
               case((is_full, CrmOwner.email), else_=null()).label("owner_email"))
        .join(pops, pops.c.account_id == Account.id)
        .outerjoin(CrmOwner, OWNER_OF_ACCOUNT)
        .where(pops.c.population.in_(named))
        .order_by(Account.id)
    )


def _cells(row: Any, level: Level) -> list[str]:
    activity: date | None = None
    if level is Level.FULL:
        dates = [d for d in (row.created.date() if row.created else None, row.closed) if d]
        activity = max(dates) if dates else None
    full = level is Level.FULL
    owner = [(row.owner_name or ""), (row.owner_email or "")] if full else ["", ""]
    return [row.name or "", row.domain_key or "", row.duns or "", row.population, *owner,
            (row.stage or "") if full else "", activity.isoformat() if activity else ""]


def _stream(session: Session, policy: dict[str, Level]) -> Iterator[Any]:
    result = session.execute(export_query(policy).execution_options(yield_per=BATCH))
    yield from result


def _write_rows(session: Session, path: Path, policy: dict[str, Level], fmt: ExportFormat,
                generic: frozenset[str], progress: Progress = SILENT, item: str = "") -> _Tally:
    tally = _Tally()
    header = list(COLUMNS)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS if fmt is ExportFormat.ECOSYNC else PLAIN_COLUMNS)
        for row in counting(_stream(session, policy), progress, "export", item):
            cells = _cells(row, policy[row.population])
            # A row the partner's import would refuse would make it refuse the whole file.
            # The keys were computed at ingest by the same functions the import uses.
            parsed = list(parse_record(tally.rows + 2, cells, header, _INDEX, generic,
                                       keys=(row.name_key, row.domain_key)))
            owner = slice(_INDEX["owner_name"], _INDEX["owner_email"] + 1)
            if not _accepted(parsed) and any(cells[owner]):
                # An owner the format cannot carry (an e-mail the CRM let through, an
                # over-long name): the account goes without its owner rather than not at all.
                cells[owner] = ["", ""]
                parsed = list(parse_record(tally.rows + 2, cells, header, _INDEX, generic,
                                           keys=(row.name_key, row.domain_key)))
            if not _accepted(parsed):
                tally.left_out += 1
                continue
            tally.rows += 1
            tally.per_population[row.population] += 1
            writer.writerow(cells if fmt is ExportFormat.ECOSYNC else cells[:2])
    return tally


def _accepted(parsed: list[Any]) -> bool:
    return len(parsed) == 1 and isinstance(parsed[0], ParsedRow)


def _counts(session: Session, policy: dict[str, Level], tally: _Tally, *,
            with_sizes: bool) -> dict[str, int]:
    """Rows written per population shared by name; the population's size for `counts` when
    the format sends it (`with_sizes`: the plain format has no place for it, so the share
    log does not claim it was sent); nothing for `hidden`."""
    counted = [p for p in POPULATIONS if policy[p] is Level.COUNTS and with_sizes]
    sizes: dict[str, int] = {}
    if counted:
        pops = our_populations().subquery("pops")
        sizes = {pop: n for pop, n in session.execute(
            select(pops.c.population, func.count()).where(pops.c.population.in_(counted))
            .group_by(pops.c.population))}
    out: dict[str, int] = {}
    for population in POPULATIONS:
        if policy[population] in NAMED:
            out[population] = tally.per_population[population]
        elif policy[population] is Level.COUNTS and with_sizes:
            out[population] = sizes.get(population, 0)
    return out
