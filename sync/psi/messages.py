"""The private-matching message file: versioned, self-checking, streamed.

Layout (docs/private-matching.md):

    ECOSYNC-PSI\\n                        magic
    u32 length, JSON header               format, version, kind, run id, parameters, sections
    frames: b"F", u8 section, u8 part, u32 length, payload      (any number)
    b"Z", SHA-256 of every byte before it

The header says everything a person auditing the file may want to know (who sent it, for
which run, under which parameters and populations, how many elements per section); the
payloads are blocks made by `protocol` (elements under a secret key: noise to anyone else)
or, in a contacts message, the owner contacts of intersecting accounts. A file is checked
whole (magic, version, header, frame structure, checksum) before anything is computed from
it, so a damaged, truncated or future-version file is refused whole with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO

from sync.errors import UserError

MAGIC = b"ECOSYNC-PSI\n"
FORMAT = "ecosync-psi"
VERSION = 1
MAX_HEADER = 1 << 20
MAX_FRAME = 1 << 30
_LEN = struct.Struct(">I")
_FRAME = struct.Struct(">cBBI")
RUN_ID = re.compile(r"[0-9a-f]{32}")


class Kind(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"
    CONTACTS_REQUEST = "contacts_request"
    CONTACTS = "contacts"


class Part(StrEnum):
    """What a frame's payload holds."""

    REQUEST = "R"  # our elements under our key
    SETUP = "S"  # the responder's elements under its key, compressed
    ANSWER = "A"  # the requester's elements under both keys
    TAGS = "T"  # contact tags, 32 bytes each
    CONTACTS = "C"  # JSON list of [key, owner name, owner e-mail]


class MessageError(UserError):
    """A message refused whole: the file is named, with what is wrong and what to do."""


def refuse(path: Path | str, reason: str, fix: str) -> MessageError:
    return MessageError(f"{path}: refused: {reason}; {fix}")


def _damaged(path: Path | str, reason: str) -> MessageError:
    return refuse(path, reason, "nothing was read from it; ask the partner to send the file "
                  "again, unchanged (as a binary attachment)")


class Writer:
    """Writes one message atomically: to a temporary file beside `path`, renamed on close."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.bytes = 0
        self._hash = hashlib.sha256()
        self._whole = hashlib.sha256()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        self._tmp = Path(tmp)
        self._file: IO[bytes] = os.fdopen(fd, "wb")
        body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        self._write(MAGIC + _LEN.pack(len(body)) + body)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)  # the trailer's checksum (the trailer's own bytes excluded)
        self._whole.update(data)  # the file's SHA-256, recorded in the run log
        self.bytes += len(data)

    def frame(self, section: int, part: Part, payload: bytes) -> None:
        self._write(_FRAME.pack(b"F", section, ord(part.value), len(payload)))
        self._write(payload)

    def close(self) -> str:
        """Seal the file (checksum trailer), make it durable, and give its SHA-256."""
        self._write(b"Z")
        self._write(self._hash.copy().digest())
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)
        return self._whole.hexdigest()

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Message:
    """A message checked whole; `frames()` streams its payloads."""

    path: Path
    header: dict[str, Any]
    sha256: str
    size: int
    _body_start: int

    @property
    def kind(self) -> Kind:
        return Kind(self.header["kind"])

    @property
    def run_id(self) -> str:
        return str(self.header["run_id"])

    def frames(self) -> Iterator[tuple[int, Part, bytes]]:
        with self.path.open("rb") as fh:
            fh.seek(self._body_start)
            while True:
                tag = fh.read(1)
                if tag != b"F":
                    return
                section, part, length = _FRAME.unpack(tag + fh.read(_FRAME.size - 1))[1:]
                yield section, Part(chr(part)), fh.read(length)


def read_message(path: Path, expected: tuple[Kind, ...]) -> Message:
    """Check a message whole and return it; a MessageError (one line) otherwise."""
    try:
        size = path.stat().st_size
        fh: BinaryIO = path.open("rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; check the path given to --in") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror}); check its permissions") \
            from None
    with fh:
        header, body_start = _read_header(path, fh, size)
        digest = _check_frames(path, fh, size, body_start, header)
    _check_header(path, header, expected)
    return Message(path, header, digest, size, body_start)


def _read_header(path: Path, fh: BinaryIO, size: int) -> tuple[dict[str, Any], int]:
    start = fh.read(len(MAGIC) + _LEN.size)
    if not start.startswith(MAGIC):
        raise refuse(path, "not an ecosync private-matching message (no ECOSYNC-PSI "
                     "signature)", "pass the .psi file the partner's `ecosync psi` wrote")
    if len(start) < len(MAGIC) + _LEN.size:
        raise _damaged(path, "the file is truncated")
    (length,) = _LEN.unpack(start[len(MAGIC):])
    if length > MAX_HEADER or len(MAGIC) + _LEN.size + length > size:
        raise _damaged(path, "the header is truncated or too long")
    raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _damaged(path, "the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _damaged(path, "the header is not a JSON object")
    # Version first: a newer format may be laid out differently from here on.
    version = header.get("version")
    if header.get("format") != FORMAT or not isinstance(version, int) or version < 1:
        raise _damaged(path, "the header has no valid format and version")
    if version > VERSION:
        raise refuse(path, f"message version {version} is newer than this ecosync "
                     f"supports ({VERSION})", "upgrade ecosync, or ask the partner to "
                     "write version 1")
    return header, len(MAGIC) + _LEN.size + length


def _check_frames(path: Path, fh: BinaryIO, size: int, body_start: int,
                  header: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    fh.seek(0)
    digest.update(fh.read(body_start))
    sections = header.get("sections")
    count = len(sections) if isinstance(sections, list) else 0
    position = body_start
    while True:
        tag = fh.read(1)
        digest.update(tag)
        position += 1
        if tag == b"Z":
            break
        if tag != b"F" or position + _FRAME.size - 1 > size:
            raise _damaged(path, f"bad frame at byte {position - 1}")
        rest = fh.read(_FRAME.size - 1)
        digest.update(rest)
        section, part, length = _FRAME.unpack(tag + rest)[1:]
        position += len(rest)
        if section >= count or chr(part) not in {p.value for p in Part}:
            raise _damaged(path, f"frame at byte {position - _FRAME.size} names no section "
                           f"of the header")
        if length > MAX_FRAME or position + length > size:
            raise _damaged(path, "the file is truncated")
        remaining = length
        while remaining:
            block = fh.read(min(remaining, 1 << 20))
            digest.update(block)
            remaining -= len(block)
        position += length
    trailer = fh.read(33)
    if len(trailer) != 32 or trailer != digest.digest():
        raise _damaged(path, "its checksum does not match its content (damaged or edited)")
    return _file_sha256(path)


def _check_header(path: Path, header: dict[str, Any], expected: tuple[Kind, ...]) -> None:
    kind = header.get("kind")
    if kind not in {k.value for k in Kind}:
        raise _damaged(path, f"unknown message kind {kind!r}")
    if Kind(kind) not in expected:
        names = " or a ".join(k.value.replace("_", " ") for k in expected)
        raise refuse(path, f"this is a {kind.replace('_', ' ')} message, not a {names}",
                     _wrong_step(Kind(kind)))
    if not isinstance(header.get("run_id"), str) or not RUN_ID.fullmatch(header["run_id"]):
        raise _damaged(path, "the header has no valid run id")
    params = header.get("params")
    if not isinstance(params, dict) or not isinstance(header.get("sections"), list):
        raise _damaged(path, "the header has no parameters or sections")
    if not isinstance(header.get("from"), str):
        raise _damaged(path, "the header does not say who sent it ('from')")


def _wrong_step(kind: Kind) -> str:
    return {
        Kind.REQUEST: "a request is answered with `ecosync psi respond --in FILE --out FILE`",
        Kind.CONTACTS_REQUEST: "a contacts request is answered with `ecosync psi respond`",
        Kind.RESPONSE: "a response is read with `ecosync psi finish --in FILE`",
        Kind.CONTACTS: "contacts are read with `ecosync psi finish --in FILE`",
    }[kind]
