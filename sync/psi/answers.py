"""Reading a response on the requester's side: its sections checked whole, then each
section's answer turned into the intersection (names, full) or its size (counts)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from sync.psi import protocol, state
from sync.psi.messages import Message, Part, refuse
from sync.psi.protocol import ProtocolError
from sync.psi.sets import KeyKind, key_of
from sync.sharing import COUNTED, Level


@dataclass(frozen=True)
class AnswerSection:
    index: int
    population: str
    kind: KeyKind
    level: Level
    size: int  # their set size for this population and key kind


@dataclass
class Found:
    """What one section of the answer told us."""

    population: str
    kind: KeyKind
    level: Level
    count: int = 0
    keys: list[str] = field(default_factory=list)  # names / full: the keys in common
    tags: list[tuple[bytes, str]] = field(default_factory=list)  # full: (tag, key) to ask


def _damaged(message: Message, reason: str) -> Exception:
    return refuse(message.path, reason, "nothing was landed; ask the partner to answer "
                  "again, or start a new run with `ecosync psi request`")


def answer_sections(message: Message, *, asked: Collection[str], our_sizes: Mapping[str, int],
                    limit: int) -> list[AnswerSection]:
    """The response's sections, checked against the header and our request: each names a
    population we asked for at a level that is shared, a key kind, its set size (within our
    limit); each has one setup then answers covering exactly our elements of that kind."""
    sections: list[AnswerSection] = []
    seen: set[tuple[str, str]] = set()
    for index, raw in enumerate(message.header["sections"]):
        try:
            population, kind = str(raw["population"]), KeyKind(raw["key"])
            level, size = Level(raw["level"]), int(raw["size"])
        except (KeyError, TypeError, ValueError):
            raise _damaged(message, f"section {index} of the header is malformed") from None
        if population not in asked or level not in COUNTED or (population, kind) in seen:
            raise _damaged(message, f"section {index} answers {population}/{kind} at "
                           f"{level}, which our request did not ask for")
        if not 0 <= size <= limit:
            raise refuse(message.path, f"the partner's {population} {kind} set has {size} "
                         f"keys, more than [psi] max_set_size ({limit})",
                         "raise max_set_size if that is expected, and finish again")
        seen.add((population, kind))
        sections.append(AnswerSection(index, population, kind, level, size))
    setups: dict[int, int] = {}
    answered: dict[int, int] = {}
    blocks: dict[int, int] = {}
    last = 0
    for index, part, payload in message.frames():
        if index < last:
            raise _damaged(message, f"section {index} comes after section {last}")
        last = index
        if part is Part.SETUP:
            setups[index] = setups.get(index, 0) + 1
            if index in answered:
                raise _damaged(message, f"section {index}: its setup comes after its answer")
        elif part is Part.ANSWER:
            try:
                answered[index] = answered.get(index, 0) + protocol.count(payload, "response")
            except ProtocolError as exc:
                raise _damaged(message, f"section {index}: {exc}") from None
            blocks[index] = blocks.get(index, 0) + 1
        else:
            raise _damaged(message, f"section {index} holds a {part.name.lower()} block")
    for s in sections:
        ours = our_sizes.get(s.kind.value, 0)
        if setups.get(s.index, 0) != 1 or answered.get(s.index, 0) != ours:
            raise _damaged(message, f"section {s.index} ({s.population}/{s.kind}) answers "
                           f"{answered.get(s.index, 0)} of our {ours} elements")
        if s.level is Level.COUNTS and blocks.get(s.index, 0) > 1:
            raise _damaged(message, f"section {s.index} answers counts in several blocks")
    return sections


def read_answers(message: Message, sections: list[AnswerSection], pending: state.Pending,
                 state_dir: Path, *, tag_populations: Collection[str]) -> list[Found]:
    """Each section's intersection (or its size). For full-level sections of
    `tag_populations`, the contact tags of the keys in common that we may ask about."""
    by_index = {s.index: s for s in sections}
    found = {s.index: Found(s.population, s.kind, s.level) for s in sections}
    setups: dict[int, bytes] = {}
    cursors: dict[int, Iterator[tuple[str, bool]]] = {}
    try:
        for index, part, payload in message.frames():
            section = by_index.get(index)
            if section is None:
                continue
            if part is Part.SETUP:
                # Sections come one after the other (checked): keep the current one only.
                setups.clear()
                cursors.clear()
                setups[index] = payload
                cursors[index] = state.elements(state_dir, pending, section.kind.value)
                continue
            result = found[index]
            if section.level is Level.COUNTS:
                result.count += protocol.intersection_size(pending.key, setups[index], payload)
                continue
            block = list(islice(cursors[index], protocol.count(payload, "response")))
            positions = protocol.intersect(pending.key, setups[index], payload)
            result.count += len(positions)
            result.keys.extend(key_of(block[p][0]) for p in positions)
            if section.level is Level.FULL and section.population in tag_populations:
                askable = [p for p in positions if block[p][1]]
                tags = protocol.client_tags(pending.key, payload, askable)
                result.tags.extend(zip(tags, (key_of(block[p][0]) for p in askable),
                                       strict=True))
    except ProtocolError as exc:
        raise _damaged(message, f"its encrypted elements cannot be read ({exc})") from None
    return [found[s.index] for s in sections]

