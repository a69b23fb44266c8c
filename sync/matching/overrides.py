"""Manual match overrides (`ecosync match pin|block`): audited, revocable, winning over rules.

An override names one of our accounts by (source, external id), so it survives re-ingestion
and applies even before the account is next pulled. Rows are never deleted: revoking stamps
`revoked_at`/`revoked_by`, and a new override for the same pair revokes the one it replaces,
so the table is the audit trail of who decided what, when and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from schema.models import Account, MatchOverride, Partner, PartnerAccount
from schema.records import Population
from sync import dirty
from sync.dirty import Kind, Queue
from sync.errors import UserError
from sync.matching.keys import registrable_domain

PIN = "pin"
BLOCK = "block"
ACTIONS = (PIN, BLOCK)


def resolve_account(session: Session, account: str, source: str | None = None) -> Account:
    """Find one of our accounts by external id (or by website/domain when no id matches)."""
    stmt = select(Account).where(Account.external_id == account)
    if source:
        stmt = stmt.where(Account.source == source)
    found = list(session.scalars(stmt.limit(20)))
    if not found and (domain := registrable_domain(account)) is not None:
        by_domain = select(Account).where(Account.domain_key == domain,
                                          Account.is_deleted.is_(False))
        if source:
            by_domain = by_domain.where(Account.source == source)
        found = list(session.scalars(by_domain.order_by(Account.source, Account.external_id)
                                     .limit(20)))
    if not found:
        where = f" in source '{source}'" if source else ""
        raise UserError(f"no account '{account}'{where} in the warehouse; give the CRM record "
                        "id (or the account's website) and check `ecosync status` shows the "
                        "source pulled")
    if len(found) > 1:
        listed = ", ".join(f"{a.source}/{a.external_id} ({a.name})" for a in found[:10])
        raise UserError(f"'{account}' matches {len(found)} accounts: {listed}; pass the record "
                        "id, and --source when ids repeat across CRMs")
    return found[0]


def _check(session: Session, partner_id: str, row_key: str | None, who: str, why: str,
           population: str | None) -> None:
    if session.get(Partner, partner_id) is None:
        raise UserError(f"no partner '{partner_id}'; see `ecosync partners list`")
    if row_key is not None and session.scalar(
            select(PartnerAccount.id).where(PartnerAccount.partner_id == partner_id,
                                            PartnerAccount.row_key == row_key)) is None:
        raise UserError(f"partner '{partner_id}' has no account with row key '{row_key}'; "
                        "`ecosync match explain ACCOUNT` lists the candidate rows")
    if not who.strip():
        raise UserError("an override needs --by (who decided); it is kept for the audit trail")
    if not why.strip():
        raise UserError("an override needs --reason (why); it is kept for the audit trail")
    if population is not None and population not in {p.value for p in Population}:
        raise UserError(f"population '{population}' is not one of "
                        f"{', '.join(p.value for p in Population)}")


def _record(session: Session, action: str, account: Account, partner_id: str, *,
            who: str, why: str, now: datetime, row_key: str | None,
            population: str | None) -> MatchOverride:
    _check(session, partner_id, row_key, who, why, population)
    # The newest decision wins. A partner-wide override replaces every active override for
    # that partner; a row override replaces those on the same row and a partner-wide one
    # of the opposite action (a row pin under a partner block, or the reverse).
    replaced = [MatchOverride.partner_id == partner_id]
    if row_key is not None:
        replaced.append(or_(
            MatchOverride.partner_row_key == row_key,
            (MatchOverride.partner_row_key.is_(None)) & (MatchOverride.action != action),
        ))
    session.execute(
        update(MatchOverride)
        .where(MatchOverride.source == account.source,
               MatchOverride.account_external_id == account.external_id,
               MatchOverride.revoked_at.is_(None), *replaced)
        .values(revoked_at=now, revoked_by=who)
    )
    override = MatchOverride(
        source=account.source, account_external_id=account.external_id, partner_id=partner_id,
        partner_row_key=row_key, action=action, population=population, reason=why.strip(),
        created_by=who.strip(), created_at=now,
    )
    session.add(override)
    dirty.mark(session, Queue.MATCH, Kind.ACCOUNT, [account.id])  # the next re-match applies it
    session.flush()
    return override


def pin(session: Session, account: Account, partner_id: str, *, who: str, why: str,
        now: datetime, row_key: str | None = None,
        population: str | None = None) -> MatchOverride:
    """Force an overlap of `account` with a partner (optionally with one of its rows).

    The overlap's population is `population`, else the pinned row's, else prospect; a
    stronger population from a rule-matched row of the same partner still wins.
    """
    return _record(session, PIN, account, partner_id, who=who, why=why, now=now,
                   row_key=row_key, population=population)


def block(session: Session, account: Account, partner_id: str, *, who: str, why: str,
          now: datetime, row_key: str | None = None) -> MatchOverride:
    """Forbid an overlap of `account` with a partner (or with one of its rows only)."""
    return _record(session, BLOCK, account, partner_id, who=who, why=why, now=now,
                   row_key=row_key, population=None)


def revoke(session: Session, override_id: int, *, who: str, now: datetime) -> MatchOverride:
    """Withdraw an override; the rules decide again at the next re-match."""
    override = session.get(MatchOverride, override_id)
    if override is None:
        raise UserError(f"no override #{override_id}; `ecosync match explain ACCOUNT` lists "
                        "an account's overrides")
    if override.revoked_at is not None:
        raise UserError(f"override #{override_id} was already revoked on "
                        f"{override.revoked_at:%Y-%m-%d %H:%M} by {override.revoked_by}")
    override.revoked_at, override.revoked_by = now, who
    dirty.mark(session, Queue.MATCH, Kind.ACCOUNT, select(Account.id).where(
        Account.source == override.source,
        Account.external_id == override.account_external_id))
    session.flush()
    return override


def active_overrides(session: Session, source: str,
                     account_external_id: str) -> Sequence[MatchOverride]:
    return session.scalars(
        select(MatchOverride)
        .where(MatchOverride.source == source,
               MatchOverride.account_external_id == account_external_id,
               MatchOverride.revoked_at.is_(None))
        .order_by(MatchOverride.created_at, MatchOverride.id)
    ).all()


def describe(override: MatchOverride) -> str:
    """One line for explain/CLI output: `pinned by ana on 2026-06-01: reason (#12)`."""
    verb = "pinned" if override.action == PIN else "blocked"
    row = f" row {override.partner_row_key}" if override.partner_row_key else ""
    return (f"{verb}{row} by {override.created_by} on {override.created_at:%Y-%m-%d}: "
            f"{override.reason} (#{override.id})")
