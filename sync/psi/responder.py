"""The partner's side of a run: `psi respond` answers a request under OUR outbound policy for
the partner who sent it (DESIGN.md 10-11), and later its contacts request.

Per population of ours: `hidden` is not enrolled (no section at all); `counts` answers in
cardinality mode (one sorted block: the requester learns how many, not which); `names` and
`full` answer in order, so the requester learns which of its keys we hold. Each population and
key kind gets its own fresh secret key, kept in memory for that section only: answers made
under one key could otherwise be lined up with another's, turning counts into members.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from schema.models import PsiRun
from schema.upsert import chunked
from sync.config import POPULATIONS, Config, PartnerConfig
from sync.errors import UserError
from sync.partners.registry import sync_partners_from_config
from sync.progress import SILENT, Progress
from sync.psi import params, protocol, runs
from sync.psi.contacts import ContactsAnswer, answer_contacts, store_tags
from sync.psi.messages import Kind, Message, Part, Writer, read_message, refuse
from sync.psi.protocol import ProtocolError, Server
from sync.psi.requester import check_size
from sync.psi.sets import KINDS, KeyKind, key_of, keys
from sync.sharing import COUNTED, NAMED, Level, outbound_level


@dataclass(frozen=True)
class RespondResult:
    run_id: str
    partner_id: str
    path: Path
    shared: dict[str, str] = field(default_factory=dict)
    their_size: int = 0
    bytes: int = 0
    contacts: ContactsAnswer | None = None

    def summary(self) -> str:
        if self.contacts is not None:
            c = self.contacts
            return (f"run {c.run_id}: {c.sent} owner contacts for {c.partner_id} written to "
                    f"{c.path} ({c.asked} asked for); send it back to the partner")
        shared = ", ".join(f"{p} ({lvl})" for p, lvl in self.shared.items())
        return (f"run {self.run_id}: answered {self.partner_id}'s request of "
                f"{self.their_size} keys, sharing {shared}; response written to {self.path} "
                f"({self.bytes:,} bytes); send it back to the partner")


def requesting_partner(config: Config, message: Message, partner_id: str | None) -> PartnerConfig:
    """The partner a request comes from: `--partner`, else the one whose id or name is the
    request's `from`."""
    sender = str(message.header["from"])
    if partner_id is not None:
        chosen = [p for p in config.partners if p.id == partner_id]
        if not chosen:
            raise UserError(f"unknown partner '{partner_id}': name one from [[partners]] in "
                            f"the config")
        return chosen[0]
    chosen = [p for p in config.partners
              if sender.casefold() in (p.id.casefold(), p.name.casefold())]
    if len(chosen) != 1:
        raise UserError(f"{message.path}: the request comes from '{sender}', which names "
                        f"{'no' if not chosen else 'more than one'} partner in [[partners]] "
                        f"(by id or name); say which with --partner ID")
    return chosen[0]


def respond(session: Any, config: Config, path: Path, out: Path, *, now: datetime,
            partner_id: str | None = None, progress: Progress = SILENT) -> RespondResult:
    """Answer a request (or a contacts request) read from `path`, writing `out`."""
    protocol.check_available()
    message = read_message(path, (Kind.REQUEST, Kind.CONTACTS_REQUEST))
    sync_partners_from_config(session, config, now)
    organisation = params.organisation(config)
    if message.kind is Kind.CONTACTS_REQUEST:
        run = runs.find(session, message.run_id, runs.Role.RESPONDER)
        partner = requesting_partner(config, message, partner_id or
                                     (run.partner_id if run is not None else None))
        full = {p for p in POPULATIONS if outbound_level(partner.outbound, p) is Level.FULL}
        answer = answer_contacts(session, message, out, still_full=full,
                                 organisation=organisation, now=now)
        return RespondResult(answer.run_id, answer.partner_id, out, contacts=answer)
    ours = params.ours(config.psi)
    params.check(message, ours)
    partner = requesting_partner(config, message, partner_id)
    runs.guard_unanswered(session, message)
    asked, sizes = _request_shape(message)
    check_size(sum(sizes.values()), config.psi, f"{message.path}: the partner's",
               "nothing was answered; ask the partner for a request within your limits")
    levels = {p: outbound_level(partner.outbound, p) for p in asked}
    enrolled = [p for p in asked if levels[p] in COUNTED]
    if not enrolled:
        raise UserError(f"{message.path}: our outbound policy for partner '{partner.id}' "
                        f"hides every population the request asks for "
                        f"({', '.join(asked)}); nothing was answered. To share, set e.g. "
                        f"outbound = {{ customer = \"names\" }} under [[partners]] id = "
                        f"\"{partner.id}\"")
    run = PsiRun(run_id=message.run_id, role=runs.Role.RESPONDER.value, partner_id=partner.id,
                 status=runs.Status.RESPONDED.value, params=ours.as_dict(),
                 populations={"asked": asked,
                              "theirs": {p: levels[p].value for p in enrolled}},
                 sizes={"theirs": sizes}, result=None, contacts=None,
                 messages=[runs.received(message, now)], actor=runs.actor(),
                 created_at=now, updated_at=now)
    session.add(run)
    session.flush()
    with tempfile.TemporaryDirectory(prefix="ecosync-psi-") as tmp:
        # Our sets are copied once, so the header's sizes and the answers agree even when a
        # sync tick lands accounts meanwhile.
        sets = {(p, k): _snapshot(session, Path(tmp), p, k) for p in enrolled for k in KINDS
                if sizes[k.value]}
        ours_sizes = {key: n for key, (_, n) in sets.items()}
        sections = [{"population": p, "key": k.value, "level": levels[p].value,
                     "size": ours_sizes[(p, k)]} for (p, k) in sets]
        header = params.header(Kind.RESPONSE, message.run_id, ours, organisation, now,
                               sections, to=str(message.header["from"]))
        try:
            progress.start("answer", total=sum(ours_sizes.values()), unit="keys")
            with Writer(out, header) as writer:
                for index, (population, kind) in enumerate(sets):
                    items = list(_read(sets[(population, kind)][0]))
                    _answer(session, run, writer, message, index, population, kind,
                            levels[population], items, sizes[kind.value], ours)
                    progress.advance("answer", amount=len(items))
                digest = writer.close()
            progress.done("answer")
        except ProtocolError as exc:
            raise refuse(message.path, f"its encrypted elements cannot be read ({exc})",
                         "nothing was answered; ask the partner to send the request again") \
                from None
    run.sizes = {**run.sizes, "ours": {f"{p}/{k.value}": n for (p, k), n in ours_sizes.items()}}
    run.messages = [*run.messages,
                    runs.message_entry(Kind.RESPONSE.value, "out", writer.bytes, digest, now)]
    session.flush()
    return RespondResult(message.run_id, partner.id, out,
                         {p: levels[p].value for p in enrolled}, sum(sizes.values()),
                         writer.bytes)


def _answer(session: Any, run: PsiRun, writer: Writer, message: Message, index: int,
            population: str, kind: KeyKind, level: Level, items: list[str],
            client_inputs: int, ours: protocol.Params) -> None:
    server = Server(reveal=level in NAMED)
    writer.frame(index, Part.SETUP, server.setup(items, client_inputs, ours))
    blocks = _request_blocks(message, kind)
    if level in NAMED:
        for blob in blocks:
            writer.frame(index, Part.ANSWER, server.answer([blob]))
    else:
        writer.frame(index, Part.ANSWER, server.answer(list(blocks)))
    if level is Level.FULL:
        for batch in chunked(items, 20_000):
            store_tags(session, run, population, kind,
                       zip(server.tags(batch), (key_of(i) for i in batch), strict=True))
    del server  # the section's key goes with it


def _request_shape(message: Message) -> tuple[list[str], dict[str, int]]:
    """The populations asked for and our element count per key kind, checked against the
    header and the frames."""
    asked = message.header.get("populations")
    if (not isinstance(asked, list) or not asked
            or any(p not in POPULATIONS for p in asked) or len(set(asked)) != len(asked)):
        raise refuse(message.path, "the request names no valid populations",
                     "ask the partner to make a new request")
    declared: dict[str, int] = {}
    if len(message.header["sections"]) != len(KINDS):
        raise refuse(message.path, f"the request has {len(message.header['sections'])} "
                     f"sections, not {len(KINDS)}", "ask the partner to make a new request")
    for index, raw in enumerate(message.header["sections"]):
        try:
            kind, size = KeyKind(raw["key"]), int(raw["size"])
        except (KeyError, TypeError, ValueError):
            raise refuse(message.path, f"section {index} of the header is malformed",
                         "ask the partner to make a new request") from None
        if KINDS[index] is not kind:
            raise refuse(message.path, f"section {index} is {kind}, expected {KINDS[index]}",
                         "ask the partner to make a new request")
        declared[kind.value] = size
    counted = dict.fromkeys(declared, 0)
    for index, part, payload in message.frames():
        if part is not Part.REQUEST:
            raise refuse(message.path, f"section {index} holds a {part.name.lower()} block",
                         "ask the partner to make a new request")
        try:
            counted[KINDS[index].value] += protocol.count(payload, "request")
        except ProtocolError as exc:
            raise refuse(message.path, f"section {index}: {exc}",
                         "ask the partner to make a new request") from None
    if counted != declared or set(declared) != {k.value for k in KINDS}:
        raise refuse(message.path, f"it holds {counted} elements but its header says "
                     f"{declared}", "ask the partner to make a new request")
    return [str(p) for p in asked], declared


def _request_blocks(message: Message, kind: KeyKind) -> Iterator[bytes]:
    index = KINDS.index(kind)
    for section, _, payload in message.frames():
        if section == index:
            yield payload


def _snapshot(session: Any, tmp: Path, population: str, kind: KeyKind) -> tuple[Path, int]:
    path = tmp / f"{population}-{kind.value}.txt"
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for batch in chunked(keys(session, kind, [population]), 10_000):
            fh.writelines(f"{element}\n" for element, _ in batch)
            n += len(batch)
    return path, n


def _read(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield line.rstrip("\n")
