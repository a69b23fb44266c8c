"""The record of every private-matching run, on both sides, in the warehouse (`psi log`).

A run id is made by the requester and used once per side: the responder answers a request
once, the requester reads a response once, so a replayed message is refused (`guard_*`).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import PsiRun
from sync.psi.messages import Message, refuse


class Role(StrEnum):
    REQUESTER = "requester"
    RESPONDER = "responder"


class Status(StrEnum):
    REQUESTED = "requested"  # requester: request written, waiting for the response
    RESPONDED = "responded"  # responder: request answered
    FINISHED = "finished"  # requester: intersection landed
    CONTACTS_REQUESTED = "contacts_requested"  # requester: landed, owners asked for
    CONTACTS_SENT = "contacts_sent"  # responder: owners of intersecting accounts sent
    CONTACTS_RECEIVED = "contacts_received"  # requester: owners landed


def actor() -> str:
    """Who ran the command, for the log (the operating-system user)."""
    try:
        return getpass.getuser()[:120]
    except (KeyError, OSError):
        return "unknown"


def find(session: Session, run_id: str, role: Role) -> PsiRun | None:
    return session.execute(
        select(PsiRun).where(PsiRun.run_id == run_id, PsiRun.role == role.value)
        .with_for_update()).scalar_one_or_none()


def message_entry(kind: str, direction: str, size: int, sha256: str,
                  at: datetime) -> dict[str, Any]:
    return {"kind": kind, "direction": direction, "bytes": size, "sha256": sha256,
            "at": at.isoformat()}


def received(message: Message, at: datetime) -> dict[str, Any]:
    return message_entry(message.kind.value, "in", message.size, message.sha256, at)


def guard_unanswered(session: Session, message: Message) -> None:
    """Refuse a request this side has answered before (replay)."""
    done = find(session, message.run_id, Role.RESPONDER)
    if done is not None:
        raise refuse(message.path, f"run {message.run_id} was already answered here on "
                     f"{done.created_at:%Y-%m-%d %H:%M} UTC (a request is answered once)",
                     "ask the partner for a new request (`ecosync psi request`)")


def guard_state(session: Session, message: Message, role: Role, expected: Status,
                what: str) -> PsiRun:
    """The run this message continues, in the state it must be in; refused otherwise."""
    run = find(session, message.run_id, role)
    if run is None:
        raise refuse(message.path, f"no run {message.run_id} was started here",
                     "check that this file answers a request made from this warehouse "
                     "(`ecosync psi log`)")
    if run.status != expected.value:
        raise refuse(message.path, f"run {message.run_id} is {run.status}, so {what} was "
                     f"already used (a message is read once)",
                     "start a new run with `ecosync psi request` for fresh results")
    return run


@dataclass(frozen=True)
class RunRow:
    run_id: str
    role: str
    partner_id: str
    status: str
    populations: dict[str, Any]
    sizes: dict[str, Any]
    result: dict[str, Any] | None
    contacts: int | None
    messages: list[dict[str, Any]]
    actor: str | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "role": self.role, "partner_id": self.partner_id,
                "status": self.status, "populations": self.populations, "sizes": self.sizes,
                "result": self.result, "contacts": self.contacts, "messages": self.messages,
                "actor": self.actor, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


def list_runs(session: Session, *, partner_id: str | None = None,
              limit: int = 50) -> list[RunRow]:
    """The latest runs, newest first."""
    query = select(PsiRun).order_by(PsiRun.created_at.desc(), PsiRun.id.desc()).limit(limit)
    if partner_id is not None:
        query = query.where(PsiRun.partner_id == partner_id)
    return [RunRow(r.run_id, r.role, r.partner_id, r.status, dict(r.populations),
                   dict(r.sizes), dict(r.result) if r.result is not None else None,
                   r.contacts, list(r.messages), r.actor, r.created_at, r.updated_at)
            for r in session.scalars(query)]
