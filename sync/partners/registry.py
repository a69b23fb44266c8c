"""The partner registry: partners from `[[partners]]` and from `ecosync partners add`.

Config partners are upserted on every command that needs partners, so the config stays the
source of truth for the partners it names; partners added from the CLI live only in the
warehouse. A partner is never deleted here: its overlaps and stamps keep referring to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schema.models import Partner, PartnerAccount
from schema.records import Population
from schema.upsert import bulk_upsert
from sync.config import POPULATIONS, SHARE_LEVELS, Config, PartnerConfig, partner_name_key
from sync.errors import ConfigError, UserError
from sync.sharing import Level, share_level

KINDS = ("technology", "services", "channel")
SOURCES = ("csv", "salesforce", "hubspot", "manual", "psi")
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class PartnerSummary:
    id: str
    name: str
    kind: str
    source: str
    share: dict[str, str]
    rows: int  # rows of the populations it does not hide
    by_population: dict[str, int | None]  # None: a population it hides (not even counted)
    snapshot_version: int
    last_import_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "source": self.source,
                "share": self.share, "rows": self.rows, "by_population": self.by_population,
                "snapshot_version": self.snapshot_version,
                "last_import_at": self.last_import_at.isoformat() if self.last_import_at
                else None}


def full_share(share: Mapping[str, str] | None) -> dict[str, str]:
    """A share policy with every population set; unset populations are shared in full,
    as in `PartnerConfig`'s default."""
    out = {p: "full" for p in POPULATIONS}
    for population, level in (share or {}).items():
        if population not in POPULATIONS:
            raise UserError(f"share: '{population}' is not a population; use "
                            f"{', '.join(POPULATIONS)}")
        if level not in SHARE_LEVELS:
            raise UserError(f"share.{population}: '{level}' is not a sharing level; use "
                            f"{', '.join(SHARE_LEVELS)}")
        out[population] = level
    return out


def _row(partner: PartnerConfig, now: datetime) -> dict[str, Any]:
    return {"id": partner.id, "name": partner.name, "kind": partner.kind,
            "source_kind": partner.source, "share": full_share(partner.share),
            "created_at": now, "updated_at": now}


def sync_partners_from_config(session: Session, config: Config,
                              now: datetime | None = None) -> int:
    """Upsert a Partner row per `[[partners]]` entry; returns how many the config names."""
    now = now or datetime.now(UTC)
    compared = ("name", "kind", "source_kind", "share")
    current = {
        row[0]: tuple(row[1:])
        for row in session.execute(select(Partner.id, *(getattr(Partner, c) for c in compared)))
    }
    # Only new or edited partners are written, so `updated_at` says when the config changed
    # (this runs on every daemon tick).
    rows = [r for r in (_row(p, now) for p in config.partners)
            if current.get(r["id"]) != tuple(r[c] for c in compared)]
    # A partner added from the CLI may already carry a name the config now gives another
    # (the config's own names are unique: `sync.config` checks them).
    configured = {p.id for p in config.partners}
    for row in rows:
        twin = _named(session, row["name"], besides=configured)
        if twin is not None:
            raise ConfigError(
                f"{config.source_path or 'config'}: partner '{row['id']}' is named "
                f"'{row['name']}', the name of partner '{twin}' in the warehouse (added with "
                f"`ecosync partners add`); give one of them another name")
    if rows:
        bulk_upsert(session, Partner, rows, ["id"], [*compared, "updated_at"])
    return len(config.partners)


def add_partner(session: Session, partner_id: str, name: str, *, kind: str = "technology",
                source: str = "csv", share: Mapping[str, str] | None = None,
                now: datetime | None = None) -> Partner:
    """Register a new partner; an existing id is an error (partners are never overwritten
    silently: their snapshot and overlaps hang off the id)."""
    now = now or datetime.now(UTC)
    if not _ID.fullmatch(partner_id):
        raise UserError(f"partner id '{partner_id}' must be 1-64 letters, digits, '_', '.' "
                        f"or '-'")
    if not name.strip():
        raise UserError(f"partner '{partner_id}' needs a non-empty --name")
    if kind not in KINDS:
        raise UserError(f"partner kind '{kind}' is not one of {', '.join(KINDS)}")
    if source not in SOURCES:
        raise UserError(f"partner source '{source}' is not one of {', '.join(SOURCES)}")
    if session.get(Partner, partner_id) is not None:
        raise UserError(f"partner '{partner_id}' already exists; pick another id (see "
                        f"`ecosync partners list`)")
    policy = full_share(share)
    twin = _named(session, name, besides={partner_id})
    if twin is not None:
        raise UserError(f"partner '{twin}' is already named '{name.strip()}'; pick another "
                        f"--name (reps could not tell the two apart)")
    partner = Partner(id=partner_id, name=name.strip(), kind=kind, source_kind=source,
                      share=policy, snapshot_version=0, created_at=now,
                      updated_at=now)
    session.add(partner)
    session.flush()
    return partner


def _named(session: Session, name: str, *, besides: set[str]) -> str | None:
    """The id of a partner outside `besides` with this display name (`partner_name_key`)."""
    key = partner_name_key(name)
    for partner_id, other in session.execute(select(Partner.id, Partner.name)
                                             .where(Partner.id.not_in(besides))):
        if partner_name_key(other) == key:
            return str(partner_id)
    return None


def list_partners(session: Session) -> list[PartnerSummary]:
    """Every partner with its row counts by population, ordered by id. A population the
    partner hides is not counted (None), and its rows are not in the total either: hidden
    means not shown at all, in this list as in every report."""
    counts: dict[str, dict[str, int]] = {}
    for partner_id, population, n in session.execute(
        select(PartnerAccount.partner_id, PartnerAccount.population, func.count())
        .group_by(PartnerAccount.partner_id, PartnerAccount.population)
    ):
        counts.setdefault(partner_id, {})[population] = n
    out = []
    for partner in session.scalars(select(Partner).order_by(Partner.id)):
        by_population: dict[str, int | None] = {
            p.value: None if share_level(partner.share, p.value) is Level.HIDDEN
            else counts.get(partner.id, {}).get(p.value, 0) for p in Population}
        out.append(PartnerSummary(
            partner.id, partner.name, partner.kind, partner.source_kind,
            dict(partner.share), sum(n for n in by_population.values() if n is not None),
            by_population,
            partner.snapshot_version, partner.last_import_at,
        ))
    return out


def partner_config(config: Config, partner_id: str) -> PartnerConfig | None:
    return next((p for p in config.partners if p.id == partner_id), None)
