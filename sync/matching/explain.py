"""`ecosync match explain`: why each partner matched one of our accounts, or why not.

It replays the pure rules of `sync.matching.rules` on the few partner rows that could match
the account (same domain, DUNS or name, or the same fuzzy block) and puts them next to what
the engine recorded (the active overlap) and the overrides in force.

What it may say about a partner follows the partner's sharing policy (`explain_shared`, the
rule in `sync.sharing`): the partner's rows are its data, and a match or a near miss names
them. There is no operator switch to show the rest: whoever must see unshared rows has the
warehouse itself, where database access is the audit boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from schema.models import Account, MatchOverride, Overlap, Partner, PartnerAccount
from sync.config import MatchingConfig
from sync.errors import UserError
from sync.matching.fuzzy import code_point_order
from sync.matching.keys import block_upper, blocking_key
from sync.matching.overrides import BLOCK, PIN, active_overrides, describe
from sync.matching.rules import (
    METHOD_RANK,
    Keys,
    Method,
    Verdict,
    judge,
    population_rank,
)
from sync.sharing import Level, Policies, policies


@dataclass(frozen=True)
class Explanation:
    partner_id: str
    partner_name: str
    matched: bool
    method: str | None
    score: float | None
    population: str | None
    key: str | None  # the key value that matched: a domain, a DUNS number or a name
    partner_row_key: str | None
    override: str | None
    reason: str
    since: datetime | None = None  # first_seen_at of the active overlap


def _key(verdict: Verdict, ours: Keys) -> str | None:
    return {Method.DUNS: ours.duns, Method.DOMAIN: ours.domain_key, Method.NAME: ours.name_key,
            Method.FUZZY: ours.name_key}.get(verdict.method) if verdict.method else None


# Which near miss explains a non-match best: a DUNS conflict, then differing domains, then a
# fuzzy score below the threshold, then anything else.
def _miss_priority(verdict: Verdict) -> int:
    reason = verdict.reason
    for rank, marker in enumerate(("DUNS differ", "domains differ", "too different")):
        if reason.startswith(marker) or marker in reason:
            return rank
    return 9


def _no_candidates(account: Account, ours: Keys) -> str:
    wanted = []
    if ours.domain_key:
        wanted.append(f"domain {ours.domain_key}")
    if ours.duns:
        wanted.append(f"DUNS {ours.duns}")
    if ours.name_key:
        wanted.append(f"a name like {ours.name_key!r}")
    if not wanted:
        return (f"our account has no match key (website {account.website!r} is not a usable "
                f"domain, and name {account.name!r} normalizes to nothing)")
    prefix = "" if ours.domain_key else (
        f"our account has no usable domain (website {account.website!r}); ")
    return f"{prefix}no partner account with {' or '.join(wanted)}"


UNSHARED_REASON = "no match among the rows it shares by name"


def explain_shared(session: Session, source: str, account_external_id: str,
                   config: MatchingConfig | None = None,
                   policy: Policies | None = None) -> list[Explanation]:
    """`explain` under the partners' sharing policies (`Policies.explanation_level`): a
    partner never named is left out; one that keeps a population unnamed shows only "no
    match among the rows it shares by name", whether it does not match or matches a row it
    does not name, so the two look the same; the rest is shown whole."""
    pol = policy or policies(session)
    out = []
    for e in explain(session, source, account_external_id, config):
        level = pol.explanation_level(e.partner_id, e.matched, e.population)
        if level is Level.HIDDEN:
            continue
        if level is Level.FULL:
            out.append(e)
        else:
            out.append(Explanation(e.partner_id, e.partner_name, False, None, None, None,
                                   None, None, None, UNSHARED_REASON))
    return out


def explain(session: Session, source: str, account_external_id: str,
            config: MatchingConfig | None = None, *,
            account: Account | None = None) -> list[Explanation]:
    """One Explanation per partner, in partner name order, whatever the partners share:
    for the matching engine's tests and tools. Every output goes through `explain_shared`.
    `account`: that account already loaded by the caller (the web's account page), so it
    is not read again."""
    config = config or MatchingConfig()
    if account is None or (account.source, account.external_id) != (source,
                                                                      account_external_id):
        account = session.scalar(select(Account).where(
            Account.source == source, Account.external_id == account_external_id))
    if account is None:
        raise UserError(f"no account {source}/{account_external_id} in the warehouse")
    ours = Keys(account.domain_key, account.name_key, account.duns)
    near = []
    if ours.domain_key:
        near.append(PartnerAccount.domain_key == ours.domain_key)
    if ours.duns:
        near.append(PartnerAccount.duns == ours.duns)
    if ours.name_key:
        block = blocking_key(ours.name_key)
        name = PartnerAccount.name_key
        if not code_point_order(session.connection()):
            name = name.collate("C")  # type: ignore[assignment]
        near.append(and_(name >= block, name < block_upper(block)))
    rows = list(session.scalars(select(PartnerAccount).where(or_(*near)))) if near else []
    overlaps = {o.partner_id: o for o in session.scalars(
        select(Overlap).where(Overlap.account_id == account.id, Overlap.ended_at.is_(None)))}
    overrides = active_overrides(session, source, account_external_id)
    out = []
    for partner in session.scalars(select(Partner).order_by(Partner.name, Partner.id)):
        mine = [r for r in rows if r.partner_id == partner.id]
        out.append(_explain_partner(account, ours, partner, mine, overlaps.get(partner.id),
                                    [o for o in overrides if o.partner_id == partner.id],
                                    config))
    return out


def _explain_partner(account: Account, ours: Keys, partner: Partner,
                     rows: list[PartnerAccount], overlap: Overlap | None,
                     overrides: list[MatchOverride], config: MatchingConfig) -> Explanation:
    def result(matched: bool, reason: str, *, verdict: Verdict | None = None,
               row: PartnerAccount | None = None, population: str | None = None,
               override: MatchOverride | None = None) -> Explanation:
        if overlap is not None and not matched:
            reason += "; the recorded overlap ends at the next re-match"
        elif overlap is None and matched:
            reason += "; not recorded yet: it is created at the next re-match"
        return Explanation(
            partner.id, partner.name, matched,
            method=(overlap.method if overlap and matched else
                    (Method.PIN.value if override else
                     (verdict.method.value if verdict and verdict.method else None))),
            score=overlap.score if overlap and matched else (verdict.score if verdict else None),
            population=(overlap.population if overlap and matched else population),
            key=_key(verdict, ours) if verdict and matched else None,
            partner_row_key=row.row_key if row else None,
            override=describe(override) if override else None,
            reason=reason, since=overlap.first_seen_at if overlap and matched else None)

    if account.is_deleted:
        return result(False, "our account is deleted in the CRM")
    partner_block = next((o for o in overrides if o.action == BLOCK
                          and o.partner_row_key is None), None)
    if partner_block is not None:
        return result(False, "blocked by a manual override", override=partner_block)
    blocked_rows = {o.partner_row_key for o in overrides if o.action == BLOCK}
    judged = [(r, judge(ours, Keys(r.domain_key, r.name_key, r.duns), fuzzy=config.fuzzy,
                        threshold=config.name_threshold)) for r in rows]
    hits = [(r, v) for r, v in judged if v.matched and r.row_key not in blocked_rows]
    pin = next((o for o in overrides if o.action == PIN), None)
    if hits:
        row, verdict = min(hits, key=lambda h: (population_rank(h[0].population),
                                                METHOD_RANK[h[1].method or Method.FUZZY],
                                                -(h[1].score or 0.0), h[0].id))
        return result(True, verdict.reason, verdict=verdict, row=row,
                      population=row.population, override=pin)
    if pin is not None:
        population = pin.population or next(
            (r.population for r in rows if r.row_key == pin.partner_row_key), "prospect")
        return result(True, "pinned by a manual override", population=population,
                      override=pin)
    misses = [(r, v) for r, v in judged if r.row_key not in blocked_rows]
    if not misses:
        reason = _no_candidates(account, ours)
        if blocked_rows:
            reason += " (other rows are blocked by an override)"
        return result(False, reason)
    row, verdict = min(misses, key=lambda m: (_miss_priority(m[1]), -(m[1].score or 0.0)))
    return result(False, f"{verdict.reason} (row {row.row_key})", verdict=verdict, row=row)
