"""No message of a run says anything about an account outside the intersection: every byte
of every message, both directions, is scanned for each such domain in every form a
dictionary attack would use."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from psi_world import ACME_ONLY, BOTH_OPEN, DUNS_A, DUNS_B, GLOBEX_ONLY, run_both_ways

from sync.matching.keys import registrable_domain
from sync.psi.sets import element


def _forms(text: str) -> set[bytes]:
    raw = text.encode("utf-8")
    out = {raw, raw.upper(), base64.b64encode(raw), base64.urlsafe_b64encode(raw),
           base64.b64encode(raw).rstrip(b"=")}
    for name in ("md5", "sha1", "sha256"):
        digest = hashlib.new(name, raw).digest()
        hexed = digest.hex().encode()
        out |= {digest, hexed, hexed.upper(), base64.b64encode(digest),
                base64.urlsafe_b64encode(digest)}
    return out


def forms_of(site: str) -> set[bytes]:
    """Plaintext (as written, and its IDN Unicode form), punycode (the normalized key), the
    PSI element, and MD5 / SHA-1 / SHA-256 of each in hex, raw and base64."""
    key = registrable_domain(site)
    assert key is not None
    texts = {key, key.encode("ascii").decode("idna"), element("domain", key)}
    out: set[bytes] = set()
    for text in texts:
        out |= _forms(text)
    return out


def test_no_message_byte_reveals_a_domain_outside_the_intersection(make_pair: Any,
                                                                   tmp_path: Path) -> None:
    acme, globex = make_pair()
    files = run_both_ways(acme, globex, tmp_path)
    messages = [p for tag in ("a", "g") for p in files[tag]]
    assert len(messages) == 8  # request, response, contacts request, contacts; both ways
    # Outside the intersection: each side's own accounts, the websites behind the one DUNS
    # match, and the keys shared only as counts (their members must not leak either).
    outside = [*ACME_ONLY, *GLOBEX_ONLY, DUNS_A[0], DUNS_B[0], *BOTH_OPEN]
    needles = {form: site for site in outside for form in forms_of(site)}
    assert any(b"xn--" in n for n in needles)  # IDN keys are scanned in punycode too
    for path in messages:
        data = path.read_bytes()
        hits = sorted({site for form, site in needles.items() if form in data})
        assert hits == [], f"{path.name} reveals {hits}"
