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

from sqlalchemy import and_, case, false, func, literal, null, or_, select
from sqlalchemy.orm import Session

from schema.models import Overlap, Partner, PartnerAccount, PartnerPopulationCount
from schema.records import POPULATION_RANK
from sync.terminal import crm_text

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


def outbound_level(outbound: Mapping[str, Any] | None, population: str) -> Level:
    """The level WE share one of our populations at with a partner (DESIGN.md 10).

    Unlike `share_level`, an unset population is hidden: nothing leaves without a decision.
    A value that is not a known level fails closed (hidden) too.
    """
    raw = (outbound or {}).get(population, Level.HIDDEN.value)
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
        """`Partner (population)`, as written into CRM fields (sync.terminal.crm_text)."""
        return f"{crm_text(self.partner_name) or self.partner_id} ({self.population})"


@dataclass(frozen=True, slots=True)
class Contact:
    partner_name: str
    owner_name: str | None
    owner_email: str | None

    def label(self) -> str:
        """`Jane Roe <jane@partner.io> (Partner)`; name or e-mail alone when one is missing.
        Partner-supplied, so without control characters or a leading formula character."""
        name, email = crm_text(self.owner_name), crm_text(self.owner_email)
        who = f"{name} <{email}>" if name and email else name or email or ""
        return f"{who} ({crm_text(self.partner_name) or ''})"


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


def account_visibility(session: Session, account_ids: Sequence[int], *,
                       policy: Policies | None = None) -> dict[int, Visibility]:
    """Visibility of each account (accounts without a shown overlap get `EMPTY`). `policy`:
    the share policies the caller loaded in this transaction (not read again)."""
    found: dict[int, list[SharedOverlap]] = {}
    changed: dict[int, datetime] = {}
    shares: Mapping[str, Mapping[str, Any] | None] = (
        policy.shares if policy is not None else
        {pid: share for pid, share in session.execute(select(Partner.id, Partner.share))})
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


# --- Policies: the same rule for views that aggregate in SQL (web pages, API, CSV) ---------

POOLED_KEY = "~counts-only"
POOLED_LABEL = "Partners sharing counts only"
_POPULATIONS = tuple(str(p) for p in POPULATION_RANK)


@dataclass(frozen=True)
class Policies:
    """Every partner's share policy, loaded once: what a view may show of which partner.

    An unknown partner is hidden. Views that aggregate in SQL take their predicates from
    here (`overlap_clause`, `key_expression`), so no view decides visibility itself.
    """

    names: Mapping[str, str]
    shares: Mapping[str, Mapping[str, Any]]

    def level(self, partner_id: str, population: str | None) -> Level:
        """None (no population known, e.g. a credit without one) fails closed: hidden."""
        if partner_id not in self.shares or population is None:
            return Level.HIDDEN
        return share_level(self.shares[partner_id], population)

    def named(self, partner_id: str, population: str | None) -> bool:
        return self.level(partner_id, population) in NAMED

    def counted(self, partner_id: str, population: str | None) -> bool:
        return self.level(partner_id, population) in COUNTED

    def owner_shown(self, partner_id: str, population: str | None) -> bool:
        return self.level(partner_id, population) is Level.FULL

    def key(self, partner_id: str, population: str | None) -> tuple[str, str] | None:
        """(key, label) a partner appears under: itself, the pool, or None (hidden)."""
        level = self.level(partner_id, population)
        if level in NAMED:
            return partner_id, self.names[partner_id]
        return (POOLED_KEY, POOLED_LABEL) if level in COUNTED else None

    def explanation_level(self, partner_id: str, matched: bool,
                          population: str | None) -> Level:
        """How much of `match explain`'s answer for one partner may be shown.

        A match at a population shared by name: everything (FULL). A partner named in every
        population: everything too, its near misses are rows it shares by name. A partner
        that keeps some population unnamed: only "no match by name" (NAMES), whether it does
        not match or matches on a row it does not name: the two must look the same. A
        partner never named: nothing (HIDDEN).
        """
        if matched and self.named(partner_id, population):
            return Level.FULL
        named = self.named_populations(partner_id)
        if len(named) == len(_POPULATIONS):
            return Level.FULL
        return Level.NAMES if named else Level.HIDDEN

    def redact(self, text: str) -> str:
        """System text (a run's error, a dead letter) without any partner never named."""
        for pid, name in sorted(self.names.items(), key=lambda p: -len(p[1])):
            if not self.named_populations(pid):
                text = text.replace(name, "a partner").replace(pid, "a partner")
        return text

    def named_partners(self) -> list[tuple[str, str]]:
        """(id, name) of partners named in at least one population, by name."""
        found = [(pid, name) for pid, name in self.names.items()
                 if any(self.named(pid, p) for p in _POPULATIONS)]
        return sorted(found, key=lambda p: (p[1].casefold(), p[0]))

    def named_populations(self, partner_id: str) -> list[str]:
        return [p for p in _POPULATIONS if self.named(partner_id, p)]

    def has_pool(self) -> bool:
        """Whether some partner shares some population as counts only."""
        return any(self.level(pid, p) is Level.COUNTS for pid in self.shares
                   for p in _POPULATIONS)

    def pairs(self, levels: frozenset[Level],
              populations: Sequence[str] = _POPULATIONS) -> dict[str, list[str]]:
        """partner id -> the populations it shares at one of `levels`."""
        out: dict[str, list[str]] = {}
        for pid in sorted(self.shares):
            pops = [p for p in populations if self.level(pid, p) in levels]
            if pops:
                out[pid] = pops
        return out

    def overlap_clause(self, partner: Any, population: Any,
                       levels: frozenset[Level] = COUNTED, *, credited: bool = False) -> Any:
        """SQL: (partner, population) is shared at one of `levels` (false when none is).
        `credited`: the population is a credit's (sync.attribution.credited), which may also
        be REFERRAL."""
        pops_known = (*_POPULATIONS, REFERRAL) if credited else _POPULATIONS
        terms = [and_(partner == pid, population.in_(pops))
                 for pid, pops in self.pairs(levels, pops_known).items()]
        return or_(*terms) if terms else false()

    def key_expression(self, partner: Any, population: Any, *, credited: bool = False) -> Any:
        """SQL: the key a row appears under (partner id, POOLED_KEY, or NULL when hidden),
        as `key` decides it in Python. NULL population: hidden."""
        named = self.overlap_clause(partner, population, NAMED, credited=credited)
        counted = self.overlap_clause(partner, population, COUNTED, credited=credited)
        return case((named, partner), (counted, literal(POOLED_KEY)), else_=null())

    def fingerprint(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """What SQL built from these policies depends on (each partner's level per
        population): equal fingerprints build the same statements, so they can be reused."""
        return tuple((pid, tuple(self.level(pid, p).value for p in (*_POPULATIONS, REFERRAL)))
                     for pid in sorted(self.shares))

    def label(self, key: str) -> str:
        """The label of a key `key`/`key_expression` gave."""
        return POOLED_LABEL if key == POOLED_KEY else self.names[key]


def policies(session: Session) -> Policies:
    rows = session.execute(select(Partner.id, Partner.name, Partner.share)).all()
    return Policies({r[0]: r[1] for r in rows}, {r[0]: dict(r[2] or {}) for r in rows})


# --- Populations a partner shares as counts only (its exchange file's manifest) -----------


@dataclass(frozen=True, slots=True)
class PopulationCount:
    """A partner population known by its size only, as a view may show it: under the
    partner (`partner_id` set) or pooled with other unnamed partners (`partner_id` None)."""

    partner_id: str | None
    partner_name: str
    population: str
    accounts: int


def shown_population_counts(session: Session) -> list[PopulationCount]:
    """Counts-only populations, through our `share` policy for each partner: named where
    we name the partner in that population, pooled where it is counts, left out where it is
    hidden. Never a member: there are none to show."""
    policy = policies(session)
    shown: dict[tuple[str, str], PopulationCount] = {}
    for partner_id, population, accounts in session.execute(
            select(PartnerPopulationCount.partner_id, PartnerPopulationCount.population,
                   PartnerPopulationCount.accounts)):
        key = policy.key(partner_id, population)
        if key is None:
            continue
        pooled = key[0] == POOLED_KEY
        before = shown.get((key[0], population))
        total = accounts + (before.accounts if before else 0)
        shown[(key[0], population)] = PopulationCount(None if pooled else partner_id, key[1],
                                                      population, total)
    rank = {str(p): r for p, r in POPULATION_RANK.items()}
    return sorted(shown.values(), key=lambda c: (c.partner_id is None,
                                                 c.partner_name.casefold(),
                                                 rank.get(c.population, 9)))
