"""Owner contacts for populations shared in full, exchanged after the intersection, for
intersecting accounts only (messages 3 and 4 of a run).

Why tags: the responder never learns the intersection, so it cannot pick the owners to send
by itself, and the requester must not be able to ask for owners of accounts it did not put
in its request (that would be a look-up service for the responder's whole list). So:
- while answering, the responder stores, for each key it shares in full, the digest of
  H(y)^b (`protocol.Server.tags`), and forgets b;
- the requester, for each key in common, removes its own key from the answer and gets the
  same digest (`protocol.client_tags`); it can do so only for keys it sent;
- the contacts request carries those digests; the responder answers the owners of the keys
  they name, once, and deletes its digests. Nothing about other accounts is ever sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from schema.models import Account, CrmOwner, PsiContactTag, PsiRun
from schema.upsert import chunked
from sync.owners import OWNER_OF_ACCOUNT
from sync.psi import params, runs
from sync.psi.answers import Found
from sync.psi.land import external_id, land_owners
from sync.psi.messages import Kind, Message, Part, Writer, refuse
from sync.psi.protocol import Params
from sync.psi.sets import KeyKind, accounts_with
from sync.sharing import Level

TAG_BYTES = 32
CHUNK = 20_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def write_contacts_request(out: Path, run_id: str, run_params: dict[str, Any],
                           found: list[Found], organisation: str,
                           now: datetime) -> dict[str, Any]:
    """Message 3: the tags of the keys in common whose owners we ask for."""
    asked = [f for f in found if f.tags]
    header = params.header(
        Kind.CONTACTS_REQUEST, run_id, Params(**run_params), organisation, now,
        [{"population": f.population, "key": f.kind.value, "size": len(f.tags)}
         for f in asked])
    with Writer(out, header) as writer:
        for index, f in enumerate(asked):
            for batch in chunked(f.tags, CHUNK):
                writer.frame(index, Part.TAGS, b"".join(tag for tag, _ in batch))
        digest = writer.close()
    return runs.message_entry(Kind.CONTACTS_REQUEST.value, "out", writer.bytes, digest, now)


# ---- responder --------------------------------------------------------------------------

def store_tags(session: Session, run: PsiRun, population: str, kind: KeyKind,
               tagged: Iterable[tuple[bytes, str]]) -> None:
    for batch in chunked(tagged, CHUNK):
        session.execute(insert(PsiContactTag), [
            {"run_pk": run.id, "tag": tag.hex(), "population": population,
             "key_kind": kind.value, "key": key} for tag, key in batch])


@dataclass(frozen=True)
class ContactsAnswer:
    run_id: str
    partner_id: str
    path: Path
    sent: int
    asked: int


def answer_contacts(session: Session, message: Message, out: Path, *, still_full: set[str],
                    organisation: str, now: datetime) -> ContactsAnswer:
    """Message 4: the owners of the keys the tags name, for populations we still share in
    full; tags naming nothing of ours get nothing (and tell nothing)."""
    run = runs.guard_state(session, message, runs.Role.RESPONDER, runs.Status.RESPONDED,
                           "this contacts request")
    params.check(message, Params(**run.params))
    sections = _tag_sections(message)
    asked = 0
    answers: list[tuple[str, KeyKind, list[list[str | None]]]] = []
    wanted: dict[int, list[str]] = {i: [] for i in range(len(sections))}
    for index, part, payload in message.frames():
        if part is not Part.TAGS or len(payload) % TAG_BYTES:
            raise refuse(message.path, f"section {index} holds no whole contact tags",
                         "ask the partner to write the contacts request again")
        wanted[index].extend(payload[i:i + TAG_BYTES].hex()
                             for i in range(0, len(payload), TAG_BYTES))
    for index, (population, kind) in enumerate(sections):
        asked += len(wanted[index])
        if population not in still_full:
            continue
        rows: list[list[str | None]] = []
        for batch in chunked(wanted[index], 1000):
            for key in session.scalars(
                select(PsiContactTag.key).where(
                    PsiContactTag.run_pk == run.id, PsiContactTag.tag.in_(batch),
                    PsiContactTag.population == population,
                    PsiContactTag.key_kind == kind.value)):
                owner = owner_contact(session, kind, key, population)
                if owner is not None:
                    rows.append([key, *owner])
        answers.append((population, kind, rows))
    header = params.header(Kind.CONTACTS, run.run_id, Params(**run.params), organisation, now,
                           [{"population": p, "key": k.value, "size": len(r)}
                            for p, k, r in answers])
    with Writer(out, header) as writer:
        for index, (_, _, rows) in enumerate(answers):
            for batch in chunked(rows, CHUNK):
                writer.frame(index, Part.CONTACTS, json.dumps(batch).encode())
        digest = writer.close()
    sent = sum(len(r) for _, _, r in answers)
    session.execute(delete(PsiContactTag).where(PsiContactTag.run_pk == run.id))
    run.status = runs.Status.CONTACTS_SENT.value
    run.contacts = sent
    run.messages = [*run.messages, runs.received(message, now),
                    runs.message_entry(Kind.CONTACTS.value, "out", writer.bytes, digest, now)]
    run.updated_at = now
    session.flush()
    return ContactsAnswer(run.run_id, run.partner_id, out, sent, asked)


def owner_contact(session: Session, kind: KeyKind, key: str,
                  population: str) -> tuple[str | None, str | None] | None:
    """(name, e-mail) of the owner of our most recently modified account of `population`
    holding `key` whose owner the CRM described (sync.owners); None when none is known.
    Never the CRM's owner id: it means nothing to the partner."""
    for account_id in accounts_with(session, kind, key, population):
        found = session.execute(
            select(CrmOwner.name, CrmOwner.email)
            .join(Account, OWNER_OF_ACCOUNT).where(Account.id == account_id)).first()
        if found is not None and (found.name or found.email):
            return found.name, found.email
    return None


def _tag_sections(message: Message) -> list[tuple[str, KeyKind]]:
    out = []
    for index, raw in enumerate(message.header["sections"]):
        try:
            out.append((str(raw["population"]), KeyKind(raw["key"])))
        except (KeyError, TypeError, ValueError):
            raise refuse(message.path, f"section {index} of the header is malformed",
                         "ask the partner to write the contacts request again") from None
    return out


# ---- requester --------------------------------------------------------------------------

def land_contacts(session: Session, run: PsiRun, message: Message, *, now: datetime) -> int:
    """Message 4 on our side: owners onto the partner accounts of this run's full-level
    populations; anything else in the message is refused whole."""
    full = {p for p, level in (run.populations.get("theirs") or {}).items()
            if level == Level.FULL.value}
    sections = _tag_sections(message)
    for population, _ in sections:
        if population not in full:
            raise refuse(message.path, f"it carries owners for {population}, which the "
                         f"partner did not share in full in run {run.run_id}",
                         "nothing was landed; ask the partner to answer again")
    owners: dict[str, tuple[str | None, str | None]] = {}
    for index, part, payload in message.frames():
        if part is not Part.CONTACTS:
            raise refuse(message.path, f"section {index} holds no contacts",
                         "nothing was landed; ask the partner to answer again")
        population, kind = sections[index]
        for key, name, email in _contact_rows(message, index, payload):
            owners[external_id(population, kind, key)] = (name, email)
    return land_owners(session, run.partner_id, run.run_id, owners, now=now)


def _contact_rows(message: Message, index: int,
                  payload: bytes) -> Iterator[tuple[str, str | None, str | None]]:
    try:
        rows = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        rows = None
    if not isinstance(rows, list):
        raise refuse(message.path, f"section {index}: its contacts are not a JSON list",
                     "nothing was landed; ask the partner to answer again")
    for row in rows:
        if (not isinstance(row, list) or len(row) != 3 or not isinstance(row[0], str)
                or not all(v is None or isinstance(v, str) for v in row[1:])):
            raise refuse(message.path, f"section {index}: a contact is not [key, owner name, "
                         f"owner e-mail]", "nothing was landed; ask the partner to answer "
                         "again")
        yield row[0], _clean(row[1]), _clean(row[2])


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = _CONTROL.sub(" ", value).strip()[:255]
    return text or None
