"""Our side of a run: `psi request` writes our encrypted keys; `psi finish` reads the
partner's answer and lands what it shared (DESIGN.md 11).

Sharing onto the protocol, on this side: the populations we share with the partner at any
level but `hidden` are enrolled in our request (a hidden one takes no part in any run); the
partner's answer, made under *its* outbound policy, lands as partner accounts (names, full)
or as counts only.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from schema.models import PsiRun
from schema.upsert import chunked
from sync.config import POPULATIONS, Config, PartnerConfig, PsiConfig
from sync.errors import UserError
from sync.partners.registry import partner_config, sync_partners_from_config
from sync.progress import SILENT, Progress
from sync.psi import params, protocol, runs, state
from sync.psi.answers import answer_sections, read_answers
from sync.psi.contacts import land_contacts, write_contacts_request
from sync.psi.land import land_intersection
from sync.psi.log import keys_text
from sync.psi.messages import Kind, Part, Writer, read_message
from sync.psi.sets import KINDS, keys
from sync.sharing import COUNTED, NAMED, Level, outbound_level, share_level

CHUNK = 20_000


@dataclass(frozen=True)
class RequestResult:
    run_id: str
    partner_id: str
    path: Path
    sizes: dict[str, int]
    enrolled: list[str]
    bytes: int

    def summary(self) -> str:
        sizes = keys_text(self.sizes)
        return (f"run {self.run_id}: request for {self.partner_id} written to {self.path} "
                f"({sizes}; our populations {', '.join(self.enrolled)}; {self.bytes:,} "
                f"bytes). Send it to the partner; they run `ecosync psi respond --in "
                f"{self.path.name} --out response.psi` and send the response back to you "
                f"for `ecosync psi finish --in response.psi`.")


def psi_partner(config: Config, partner_id: str) -> PartnerConfig:
    partner = partner_config(config, partner_id)
    if partner is None:
        raise UserError(f"unknown partner '{partner_id}': private matching needs the partner "
                        f"in [[partners]] of the config (with its outbound policy)")
    if partner.source != "psi":
        raise UserError(f"partner '{partner_id}' has source = \"{partner.source}\": its rows "
                        f"come from there, and a private-matching result would replace them; "
                        f"set source = \"psi\" under [[partners]] id = \"{partner_id}\"")
    return partner


def check_size(total: int, config: PsiConfig, whose: str, fix: str) -> None:
    if total < config.min_set_size:
        raise UserError(f"{whose} set has {total} keys, fewer than [psi] min_set_size "
                        f"({config.min_set_size}): so small a run would single accounts "
                        f"out; {fix}")
    if total > config.max_set_size:
        raise UserError(f"{whose} set has {total} keys, more than [psi] max_set_size "
                        f"({config.max_set_size}); {fix}")


def request(session: Any, config: Config, partner_id: str, out: Path, *, now: datetime,
            populations: Collection[str] = POPULATIONS,
            progress: Progress = SILENT) -> RequestResult:
    """Write a request for the partner's `populations` (all by default) and record the run.

    Our set: the registrable domains and DUNS numbers of our accounts in every population we
    share with this partner at a level other than hidden. The secret key goes to the pending
    file only (`state`), never into the warehouse or the message.
    """
    protocol.check_available()
    partner = psi_partner(config, partner_id)
    organisation = params.organisation(config)
    unknown = [p for p in populations if p not in POPULATIONS]
    if unknown or not populations:
        raise UserError(f"--population {', '.join(unknown) or '(none)'}: use one or more of "
                        f"{', '.join(POPULATIONS)}")
    levels = {p: outbound_level(partner.outbound, p) for p in POPULATIONS}
    enrolled = [p for p in POPULATIONS if levels[p] in COUNTED]
    if not enrolled:
        raise UserError(f"partner '{partner_id}': our outbound policy hides every population "
                        f"from them, so a run would enrol nothing; set e.g. outbound = "
                        f"{{ customer = \"names\" }} under [[partners]] id = \"{partner_id}\"")
    named = [p for p in enrolled if levels[p] in NAMED]
    sync_partners_from_config(session, config, now)
    run_id = uuid.uuid4().hex
    key = protocol.new_client_key()
    state_dir = Path(config.psi.state_dir)
    pending_writer = state.PendingWriter(state_dir, run_id, partner.id, key)
    try:
        for kind in KINDS:
            for batch in chunked(keys(session, kind, enrolled, named), CHUNK):
                pending_writer.add(kind.value, batch)
        pending_writer.close()
    except BaseException:
        pending_writer.abort()
        raise
    try:
        pending = state.read_pending(state_dir, run_id)
        sizes = {k.value: pending.sections.get(k.value, 0) for k in KINDS}
        check_size(sum(sizes.values()), config.psi, "our",
                   "check the outbound policy and [psi] limits")
        ours = params.ours(config.psi)
        header = params.header(
            Kind.REQUEST, run_id, ours, organisation, now,
            [{"key": k, "size": n} for k, n in sizes.items()],
            to=partner.name, populations=list(populations))
        progress.start("encrypt", total=sum(sizes.values()), unit="keys")
        with Writer(out, header) as writer:
            for index, kind in enumerate(KINDS):
                elements = state.elements(state_dir, pending, kind.value)
                for batch in chunked(elements, CHUNK):
                    writer.frame(index, Part.REQUEST,
                                 protocol.encrypt(key, [e for e, _ in batch]))
                    progress.advance("encrypt", amount=len(batch))
            digest = writer.close()
        progress.done("encrypt")
    except BaseException:
        state.remove_pending(state_dir, run_id)
        raise
    session.add(PsiRun(
        run_id=run_id, role=runs.Role.REQUESTER.value, partner_id=partner.id,
        status=runs.Status.REQUESTED.value, params=ours.as_dict(),
        populations={"asked": list(populations), "ours": {p: levels[p].value for p in enrolled}},
        sizes={"ours": sizes}, result=None, contacts=None,
        messages=[runs.message_entry(Kind.REQUEST.value, "out", writer.bytes, digest, now)],
        actor=runs.actor(), created_at=now, updated_at=now))
    session.flush()
    return RequestResult(run_id, partner.id, out, sizes, enrolled, writer.bytes)


@dataclass(frozen=True)
class FinishResult:
    run_id: str
    partner_id: str
    kind: Kind
    shared: dict[str, str] = field(default_factory=dict)  # their population -> level
    found: dict[str, dict[str, int]] = field(default_factory=dict)
    landed: int = 0
    contacts_request: Path | None = None
    contacts: int = 0

    def summary(self) -> str:
        if self.kind is Kind.CONTACTS:
            return (f"run {self.run_id}: {self.contacts} owner contacts from "
                    f"{self.partner_id} landed on their accounts")
        parts = []
        for population, level in self.shared.items():
            figures = self.found.get(population, {})
            counted = keys_text(figures)
            parts.append(f"{population} ({level}): "
                         + (f"{counted} in common" if counted else "nothing in common"))
        text = (f"run {self.run_id}: {self.partner_id} shared "
                + ("; ".join(parts) if parts else "no population")
                + f"; {self.landed} partner accounts landed (source psi); the next "
                f"`ecosync sync --once` (or daemon tick) matches them to our accounts")
        if self.contacts_request is not None:
            text += (f". Owner contacts: send {self.contacts_request} to the partner; they "
                     f"run `ecosync psi respond` on it, and you `ecosync psi finish` on "
                     f"their answer")
        return text


def finish(session: Any, config: Config, path: Path, *, now: datetime,
           contacts_out: Path | None = None, progress: Progress = SILENT) -> FinishResult:
    """Read a response (or a contacts answer) to one of our runs and land it, all or
    nothing: a message that fails any check changes nothing."""
    protocol.check_available()
    message = read_message(path, (Kind.RESPONSE, Kind.CONTACTS))
    if message.kind is Kind.CONTACTS:
        run = runs.guard_state(session, message, runs.Role.REQUESTER,
                               runs.Status.CONTACTS_REQUESTED, "this contacts answer")
        params.check(message, protocol.Params(**run.params))
        applied = land_contacts(session, run, message, now=now)
        run.status = runs.Status.CONTACTS_RECEIVED.value
        run.contacts = applied
        run.messages = [*run.messages, runs.received(message, now)]
        run.updated_at = now
        session.flush()
        return FinishResult(run.run_id, run.partner_id, Kind.CONTACTS, contacts=applied)
    run = runs.guard_state(session, message, runs.Role.REQUESTER, runs.Status.REQUESTED,
                           "this response")
    params.check(message, protocol.Params(**run.params))
    partner = psi_partner(config, run.partner_id)
    state_dir = Path(config.psi.state_dir)
    pending = state.read_pending(state_dir, run.run_id)
    sections = answer_sections(message, asked=run.populations["asked"],
                               our_sizes=run.sizes["ours"], limit=config.psi.max_set_size)
    # Owners are asked for only where we would show them (our share policy for the partner).
    showable = [p for p in POPULATIONS if share_level(partner.share, p) is Level.FULL]
    progress.start("decrypt answers")
    found = read_answers(message, sections, pending, state_dir, tag_populations=showable)
    progress.done("decrypt answers")
    progress.start("land")
    landed = land_intersection(session, partner.id, run.run_id, found, now=now)
    progress.done("land")
    messages = [*run.messages, runs.received(message, now)]
    out = None
    if any(f.tags for f in found):
        out = contacts_out or path.with_name(f"contacts-request-{run.run_id[:8]}.psi")
        messages.append(write_contacts_request(out, run.run_id, run.params, found,
                                               params.organisation(config), now))
    run.status = (runs.Status.CONTACTS_REQUESTED if out else runs.Status.FINISHED).value
    run.populations = {**run.populations, "theirs": {s.population: s.level.value
                                                     for s in sections}}
    their: dict[str, dict[str, int]] = {}
    for s in sections:
        their.setdefault(s.population, {})[s.kind.value] = s.size
    run.sizes = {**run.sizes, "theirs": their}
    result: dict[str, dict[str, Any]] = {}
    for f in found:
        result.setdefault(f.population, {"level": f.level.value})[f.kind.value] = f.count
    run.result = result
    run.messages = messages
    run.updated_at = now
    session.flush()
    # The key has done its work: gone before the transaction even commits.
    state.remove_pending(state_dir, run.run_id)
    return FinishResult(run.run_id, run.partner_id, Kind.RESPONSE,
                        {s.population: s.level.value for s in sections},
                        {p: {k: v for k, v in r.items() if k != "level"}
                         for p, r in result.items()}, landed, out)
