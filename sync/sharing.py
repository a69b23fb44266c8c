"""What may be shown about an account's overlaps: the ONE place that decides visibility.

Each partner's `share` policy sets a level per population (DESIGN.md section 5):
`full` (partner name, population, partner account owner), `names` (no owner), `counts` (adds
to the overlap count, never named) or `hidden` (not shown at all). Written fields, reports and
log lines all take their partner data from a `Visibility`, so a `counts` partner is never
named and a `hidden` one never counted anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schema.models import Overlap, Partner, PartnerAccount
from schema.records import POPULATION_RANK

SEPARATOR = "; "
# The population label of a partner credited as source by our own CRM's referring field that
# has no overlap with the account at all: it is named, as that field is our own data (DESIGN 5).
REFERRAL = "referral"


class Level(StrEnum):
    FULL = "full"
    NAMES = "names"
    COUNTS = "counts"
    HIDDEN = "hidden"


COUNTED = frozenset({Level.FULL, Level.NAMES, Level.COUNTS})
NAMED = frozenset({Level.FULL, Level.NAMES})


def share_level(share: Mapping[str, Any] | None, population: str) -> Level:
    """The level a partner shares one population at.

    An unset population is shared in full, as `PartnerConfig`'s default policy is; a value
    that is not a known level fails closed (hidden): a typo must not leak data. `REFERRAL`
    (no partner data at all, only our own referring field) is named.
    """
    if population == REFERRAL:
        return Level.NAMES
    raw = (share or {}).get(population, Level.FULL.value)
    try:
        return Level(raw)
    except ValueError:
        return Level.HIDDEN


@dataclass(frozen=True, slots=True)
class SharedOverlap:
    """One active overlap of an account, with what the sharing rule needs to know."""

    partner_id: str
    partner_name: str
    share: Mapping[str, Any]
    population: str
    owner_name: str | None = None
    owner_email: str | None = None


@dataclass(frozen=True, slots=True)
class NamedPartner:
    partner_id: str
    partner_name: str
    population: str

    def label(self) -> str:
        return f"{self.partner_name} ({self.population})"


@dataclass(frozen=True, slots=True)
class Contact:
    partner_name: str
    owner_name: str | None
    owner_email: str | None

    def label(self) -> str:
        """`Jane Roe <jane@partner.io> (Partner)`; name or e-mail alone when one is missing."""
        if self.owner_name and self.owner_email:
            who = f"{self.owner_name} <{self.owner_email}>"
        else:
            who = self.owner_name or self.owner_email or ""
        return f"{who} ({self.partner_name})"


@dataclass(frozen=True, slots=True)
class Visibility:
    """What may be shown for one account. Build it with `visibility()`, nothing else."""

    overlap_count: int
    named: tuple[NamedPartner, ...]
    contacts: tuple[Contact, ...]
    changed_at: datetime | None = None  # last change of the overlaps that may be shown

    def partners_field(self) -> str:
        """`Partner (population)` joined by `; `, strongest population first, then by name."""
        return SEPARATOR.join(n.label() for n in self.named)

    def contacts_field(self) -> str:
        return SEPARATOR.join(c.label() for c in self.contacts)

    def log_fields(self) -> dict[str, Any]:
        """The only partner data a log line may carry about an account."""
        return {"overlap_count": self.overlap_count,
                "partners": [n.partner_id for n in self.named]}


EMPTY = Visibility(0, (), ())


_RANK: dict[str, int] = {str(p): r for p, r in POPULATION_RANK.items()}


def _order(item: SharedOverlap) -> tuple[int, str, str]:
    return _RANK.get(item.population, len(_RANK)), item.partner_name.casefold(), item.partner_id


def visibility(overlaps: Iterable[SharedOverlap],
               changed_at: datetime | None = None) -> Visibility:
    """Apply each partner's share policy to an account's active overlaps (pure).

    One entry per partner (the strongest population if several are given). Order: customer
    first, then open_opportunity, then prospect; by partner name within a population.
    """
    per_partner: dict[str, SharedOverlap] = {}
    for item in sorted(overlaps, key=_order):
        per_partner.setdefault(item.partner_id, item)
    count = 0
    named: list[NamedPartner] = []
    contacts: list[Contact] = []
    for item in sorted(per_partner.values(), key=_order):
        level = share_level(item.share, item.population)
        if level not in COUNTED:
            continue
        count += 1
        if level in NAMED:
            named.append(NamedPartner(item.partner_id, item.partner_name, item.population))
        if level is Level.FULL and (item.owner_name or item.owner_email):
            contacts.append(Contact(item.partner_name, item.owner_name, item.owner_email))
    return Visibility(count, tuple(named), tuple(contacts), changed_at)


def account_visibility(session: Session, account_ids: Sequence[int]) -> dict[int, Visibility]:
    """Visibility of each account (accounts without a shown overlap get `EMPTY`)."""
    found: dict[int, list[SharedOverlap]] = {}
    changed: dict[int, datetime] = {}
    shares: dict[str, dict[str, Any]] = {
        pid: share for pid, share in session.execute(select(Partner.id, Partner.share))}
    for start in range(0, len(account_ids), 500):
        chunk = list(account_ids[start:start + 500])
        rows = session.execute(
            select(Overlap.account_id, Partner.id, Partner.name, Partner.share,
                   Overlap.population, PartnerAccount.owner_name, PartnerAccount.owner_email)
            .join(Partner, Partner.id == Overlap.partner_id)
            .outerjoin(PartnerAccount, PartnerAccount.id == Overlap.partner_account_id)
            .where(Overlap.account_id.in_(chunk), Overlap.ended_at.is_(None)))
        for r in rows:
            found.setdefault(r[0], []).append(SharedOverlap(r[1], r[2], r[3] or {}, r[4],
                                                            r[5], r[6]))
        # A change is shown only if the overlap that changed may be shown: a hidden
        # partner's comings and goings must not move the date either.
        history = session.execute(
            select(Overlap.account_id, Overlap.partner_id, Overlap.population,
                   func.max(Overlap.first_seen_at), func.max(Overlap.ended_at))
            .where(Overlap.account_id.in_(chunk))
            .group_by(Overlap.account_id, Overlap.partner_id, Overlap.population))
        for account_id, partner_id, population, first, ended in history:
            if share_level(shares.get(partner_id), population) in COUNTED:
                latest = max(t for t in (first, ended) if t is not None)
                if account_id not in changed or latest > changed[account_id]:
                    changed[account_id] = latest
    return {i: visibility(found.get(i, ()), changed.get(i)) for i in account_ids}
