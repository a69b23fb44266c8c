"""Landing a private-matching result as the partner's snapshot of partner accounts, so the
matcher, the written fields, reports and the web view treat it like any partner list.

One partner account per key in common and population it was shared in: a domain row carries
the registrable domain (matched by domain), a DUNS row the number (matched by DUNS). Rows get
no name and no name key: a key found privately is never matched again by name. Counts-only
populations land no row; their figures stay on the run (`psi log`, reports). The result
replaces the partner's whole list, so the sizes an earlier exchange file gave of its
counts-only populations go with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from schema.models import Partner, PartnerAccount, PartnerPopulationCount
from schema.records import Population
from sync.partners.csv_import import replace_snapshot
from sync.partners.csv_read import ParsedRow
from sync.psi.answers import Found
from sync.psi.sets import KeyKind
from sync.sharing import NAMED

ROW_PREFIX = "psi:"


def external_id(population: str, kind: KeyKind | str, key: str) -> str:
    return f"{ROW_PREFIX}{population}:{kind}:{key}"


def _row(population: str, kind: KeyKind | str, key: str, owner_name: str | None = None,
         owner_email: str | None = None) -> ParsedRow:
    domain = key if kind == KeyKind.DOMAIN else None
    return ParsedRow(line=0, external_id=external_id(population, kind, key), name=None,
                     domain=domain, website=None, population=Population(population),
                     owner_name=owner_name, owner_email=owner_email,
                     duns=key if kind == KeyKind.DUNS else None, domain_key=domain,
                     name_key=None)


def _rows(found: Iterable[Found]) -> Iterator[ParsedRow]:
    for f in found:
        if f.level in NAMED:
            for key in f.keys:
                yield _row(f.population, f.kind, key)


def land_intersection(session: Session, partner_id: str, run_id: str,
                      found: Iterable[Found], *, now: datetime) -> int:
    """Replace the partner's rows with this run's intersection; returns the rows landed."""
    added, changed, _, unchanged = replace_snapshot(session, partner_id, _rows(found),
                                                    now=now)
    session.execute(delete(PartnerPopulationCount)
                    .where(PartnerPopulationCount.partner_id == partner_id))
    _bump(session, partner_id, run_id, now)
    return added + changed + unchanged


def land_owners(session: Session, partner_id: str, run_id: str,
                owners: Mapping[str, tuple[str | None, str | None]], *,
                now: datetime) -> int:
    """Set the owner of the partner's rows named by external id in `owners`; rows not in
    the partner's current snapshot are ignored. Returns how many rows got an owner."""
    current = session.execute(
        select(PartnerAccount.external_id, PartnerAccount.population,
               PartnerAccount.domain_key, PartnerAccount.duns,
               PartnerAccount.owner_name, PartnerAccount.owner_email)
        .where(PartnerAccount.partner_id == partner_id)
        .order_by(PartnerAccount.id)).all()
    rows: list[ParsedRow] = []
    applied = 0
    for ext, population, domain_key, duns, owner_name, owner_email in current:
        kind, key = (KeyKind.DOMAIN, domain_key) if domain_key else (KeyKind.DUNS, duns)
        if key is None:
            continue  # not a row this module landed
        if ext is not None and ext in owners:
            owner_name, owner_email = owners[ext]
            applied += 1
        rows.append(_row(population, kind, key, owner_name, owner_email))
    replace_snapshot(session, partner_id, rows, now=now)
    _bump(session, partner_id, run_id, now)
    return applied


def _bump(session: Session, partner_id: str, run_id: str, now: datetime) -> None:
    partner = session.get(Partner, partner_id)
    assert partner is not None  # the run's foreign key
    partner.snapshot_version += 1
    partner.source_fingerprint = f"{ROW_PREFIX}{run_id}"
    partner.last_import_at = now
    partner.updated_at = now
    session.flush()
