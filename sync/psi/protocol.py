"""ECDH private set intersection: the one module that knows the PSI library (openmined-psi).

Everything else handles opaque byte strings ("blobs") that this module makes and reads, so
the library can be replaced by changing this file (and `PROTOCOL`, which both sides compare).

The protocol (commutative encryption on P-256, elements hashed to the curve with SHA-256):
- the client (requester) sends H(x)^a for each of its elements x, under a fresh key a;
- the server (responder) answers H(x)^ab, in the same order, and a setup message: its own
  elements H(y)^b in a compressed set (GCS, Bloom filter or raw), under a fresh key b;
- the client removes a and looks H(x)^b up in the setup: the positions that hit are the
  intersection. Without b, H(y)^b says nothing about y; without a, H(x)^a says nothing
  about x. In cardinality mode the server sorts its answer, so only the count of hits
  survives.
Contacts (full-level sharing) use the same primitives: both sides can compute H(v)^b for an
element of the intersection (the server from its own elements, the client by removing a from
H(x)^ab), and its digest is a tag only the two holders of that element can name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sync.errors import UserError

# What both sides compare before anything is computed: a different library, curve or hash
# could never find a match, so a mismatch is refused rather than answered with nothing.
PROTOCOL = "ecdh-psi/openmined-psi-2/P-256/SHA-256"
DATA_STRUCTURES = ("gcs", "raw", "bloom_filter")
# The order of the P-256 group: removing the client's key a is raising to a^-1 mod N.
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_TAG_CONTEXT = b"ecosync psi contact tag v1\0"
INSTALL_HINT = ("private matching needs the optional PSI library; install it with "
                "pip install 'ecosync[psi]'")


class ProtocolError(Exception):
    """A blob the library cannot read (damaged or forged message). Callers name the file."""


def _lib() -> Any:
    try:
        import private_set_intersection.python as psi
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return psi


def check_available() -> None:
    """Raise a UserError naming the install command when the PSI library is missing."""
    _lib()


@dataclass(frozen=True, slots=True)
class Params:
    """The protocol parameters both sides must share (carried in every message)."""

    protocol: str
    data_structure: str
    false_positive_rate: float

    def as_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "data_structure": self.data_structure,
                "false_positive_rate": self.false_positive_rate}


def _ds(psi: Any, name: str) -> Any:
    return {"gcs": psi.DataStructure.GCS, "raw": psi.DataStructure.RAW,
            "bloom_filter": psi.DataStructure.BLOOM_FILTER}[name]


def _call(fn: Any, *args: Any) -> Any:
    """Run a library call on untrusted input; its failures become ProtocolError."""
    try:
        return fn(*args)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ProtocolError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) \
            from None


def _parse(cls: Any, blob: bytes) -> Any:
    from google.protobuf.message import DecodeError

    msg = cls()
    try:
        msg.ParseFromString(blob)
    except DecodeError:
        raise ProtocolError("not a valid PSI block") from None
    return msg


# ---- the client (requester) -------------------------------------------------------------

def new_client_key() -> bytes:
    """A fresh random secret key for one run (32 bytes)."""
    psi = _lib()
    key: bytes = psi.client.CreateWithNewKey(True).GetPrivateKeyBytes()
    return key


def _client(key: bytes) -> Any:
    psi = _lib()
    return _call(psi.client.CreateFromKey, key, True)


def encrypt(key: bytes, items: Sequence[str]) -> bytes:
    """The request block for `items`: H(x)^key for each, in order."""
    request = _client(key).CreateRequest(list(items))
    out: bytes = request.SerializeToString()
    return out


def count(blob: bytes, kind: str) -> int:
    """Elements in a request or response block (`kind`: "request" or "response")."""
    psi = _lib()
    cls = psi.Request if kind == "request" else psi.Response
    return len(_parse(cls, blob).encrypted_elements)


def intersect(key: bytes, setup: bytes, response: bytes) -> list[int]:
    """Positions (in the request order) of the elements the server's set holds."""
    psi = _lib()
    found = _call(_client(key).GetIntersection, _parse(psi.ServerSetup, setup),
                  _parse(psi.Response, response))
    return sorted(int(i) for i in found)


def intersection_size(key: bytes, setup: bytes, response: bytes) -> int:
    psi = _lib()
    return int(_call(_client(key).GetIntersectionSize, _parse(psi.ServerSetup, setup),
                     _parse(psi.Response, response)))


def client_tags(key: bytes, response: bytes, positions: Sequence[int]) -> list[bytes]:
    """Contact tags of the response elements at `positions` (elements of the intersection):
    the digest of H(x)^b, obtained by raising H(x)^ab to a^-1."""
    if not positions:
        return []
    psi = _lib()
    answered = _parse(psi.Response, response).encrypted_elements
    inverse = pow(int.from_bytes(key, "big"), -1, _ORDER).to_bytes(32, "big")
    unblind = _call(psi.server.CreateFromKey, inverse, True)
    request = psi.Request()
    request.reveal_intersection = True
    request.encrypted_elements.extend(answered[i] for i in positions)
    plain = _call(unblind.ProcessRequest, request).encrypted_elements
    return [_tag(p) for p in plain]


def _tag(point: bytes) -> bytes:
    return hashlib.sha256(_TAG_CONTEXT + point).digest()


# ---- the server (responder) -------------------------------------------------------------

class Server:
    """One PSI under a fresh key (one population and key kind of one run), kept in memory
    only: it is gone when the object is."""

    def __init__(self, *, reveal: bool) -> None:
        psi = _lib()
        self._psi = psi
        self.reveal = reveal
        self._server = psi.server.CreateWithNewKey(reveal)

    def setup(self, items: Sequence[str], client_inputs: int, params: Params) -> bytes:
        """The setup block: our elements under our key, in the agreed data structure."""
        msg = self._server.CreateSetupMessage(
            params.false_positive_rate, max(client_inputs, 1), list(items),
            _ds(self._psi, params.data_structure))
        out: bytes = msg.SerializeToString()
        return out

    def answer(self, blocks: Sequence[bytes]) -> bytes:
        """The client's elements under our key too. In cardinality mode every block of the
        request must come in one call: the library sorts what it answers, and sorting block
        by block would let a client learn members by sending blocks of one element."""
        psi = self._psi
        request = psi.Request()
        for blob in blocks:
            request.encrypted_elements.extend(_parse(psi.Request, blob).encrypted_elements)
        request.reveal_intersection = self.reveal
        response = _call(self._server.ProcessRequest, request)
        out: bytes = response.SerializeToString()
        return out

    def tags(self, items: Sequence[str]) -> list[bytes]:
        """The contact tag of each of our elements (digest of H(y)^b), in order."""
        psi = self._psi
        as_client = psi.client.CreateFromKey(self._server.GetPrivateKeyBytes(), True)
        return [_tag(p) for p in as_client.CreateRequest(list(items)).encrypted_elements]
