"""The requester's pending run: its secret key and the order of its elements, between
`psi request` and `psi finish`, in a private file that `finish` deletes.

Why a file and not the warehouse: the key, with the request the partner holds, would reveal
our whole set to the partner; it must not travel with warehouse backups or replicas, and it
must not outlive the run. It lives in `[psi] state_dir` (mode 0700, file mode 0600), next to
nothing that is sent, and is removed once the response is read. The responder's keys are
never written anywhere.

Layout: one JSON line (run id, partner, key in hex, sections), then per section its elements,
one per line, each with a flag (1: an account of a population we share with this partner by
name, so asking for its contacts tells the partner nothing it may not know).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sync.errors import UserError


@dataclass(frozen=True)
class Pending:
    run_id: str
    partner_id: str
    key: bytes
    sections: dict[str, int]  # key kind -> number of elements, in file order

    def __repr__(self) -> str:  # never print the key
        return f"Pending(run_id={self.run_id!r}, partner_id={self.partner_id!r})"


_HEAD = 511


def _path(state_dir: Path, run_id: str) -> Path:
    return state_dir / f"{run_id}.pending"


class PendingWriter:
    """Writes the pending file as the request is made; `close` makes it durable."""

    def __init__(self, state_dir: Path, run_id: str, partner_id: str, key: bytes) -> None:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
        self.path = _path(state_dir, run_id)
        self._tmp = self.path.with_suffix(".tmp")
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._fh = os.fdopen(fd, "w", encoding="utf-8")
        self._head = {"run_id": run_id, "partner_id": partner_id, "key": key.hex()}
        self.sections: dict[str, int] = {}
        # The head is rewritten with the counts at the end: reserve a fixed-width line.
        self._fh.write(" " * _HEAD + "\n")

    def add(self, kind: str, batch: Iterable[tuple[str, bool]]) -> None:
        """Append elements of `kind`; the kinds come one after the other."""
        n = 0
        for element, named in batch:
            self._fh.write(f"{int(named)}{element}\n")
            n += 1
        self.sections[kind] = self.sections.get(kind, 0) + n

    def close(self) -> Path:
        self._fh.seek(0)
        self._fh.write(json.dumps({**self._head, "sections": self.sections}).ljust(_HEAD))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


def read_pending(state_dir: Path, run_id: str) -> Pending:
    path = _path(state_dir, run_id)
    try:
        with path.open(encoding="utf-8") as fh:
            head: dict[str, Any] = json.loads(fh.readline())
    except FileNotFoundError:
        raise UserError(
            f"run {run_id}: its pending state {path} is missing (was the request made on "
            f"another machine or with another [psi] state_dir?); finish it where the request "
            f"was made, or start a new run with `ecosync psi request`") from None
    return Pending(head["run_id"], head["partner_id"], bytes.fromhex(head["key"]),
                   {str(k): int(v) for k, v in head["sections"].items()})


def elements(state_dir: Path, pending: Pending, kind: str) -> Iterator[tuple[str, bool]]:
    """The elements of one key kind, in request order, streamed."""
    skip = 0
    for name, n in pending.sections.items():
        if name == kind:
            break
        skip += n
    with _path(state_dir, pending.run_id).open(encoding="utf-8") as fh:
        _skip(fh, 1 + skip)
        for _ in range(pending.sections.get(kind, 0)):
            line = fh.readline().rstrip("\n")
            yield line[1:], line[:1] == "1"


def _skip(fh: IO[str], lines: int) -> None:
    for _ in range(lines):
        fh.readline()


def remove_pending(state_dir: Path, run_id: str) -> None:
    _path(state_dir, run_id).unlink(missing_ok=True)
