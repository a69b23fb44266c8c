"""Guards: damaged, future-version, foreign-parameter and replayed messages are refused whole
(one line, nothing written, nothing recorded); set-size limits; fresh keys; hidden is never
enrolled."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from psi_world import BOTH_CUSTOMERS, GLOBEX_ONLY, Side
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from schema.models import PartnerAccount, PsiRun
from sync.errors import UserError
from sync.psi import state
from sync.psi.answers import Found
from sync.psi.messages import MAGIC, Kind, Part, read_message
from sync.psi.sets import KeyKind
from sync.sharing import Level


def _runs(side: Side) -> list[tuple[str, str]]:
    with Session(side.engine) as s:
        return [(r.role, r.status) for r in s.scalars(select(PsiRun).order_by(PsiRun.id))]


def _rewrite_header(src: Path, dst: Path, change: dict[str, Any]) -> None:
    """A copy of `src` with header fields changed and a valid checksum: a well-formed
    message that says something else."""
    data = src.read_bytes()
    (length,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    header = json.loads(data[start:start + length])
    header.update(change)
    body = json.dumps(header).encode()
    out = MAGIC + struct.pack(">I", len(body)) + body + data[start + length:-32]
    dst.write_bytes(out + hashlib.sha256(out).digest())


def _refused(call: Any, *needles: str) -> str:
    with pytest.raises(UserError) as info:
        call()
    message = info.value.message
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.fixture
def pair(make_pair: Any, tmp_path: Path) -> tuple[Side, Side, Path]:
    acme, globex = make_pair()
    req = tmp_path / "req.psi"
    acme.request(req)
    return acme, globex, req


@pytest.mark.parametrize(("damage", "needle"), [
    (lambda b: b"NOT-PSI" + b[7:], "not an ecosync private-matching message"),
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:-40] + bytes([b[-40] ^ 1]) + b[-39:], "checksum does not match"),
    (lambda b: b[:len(MAGIC) + 4] + b"x" + b[len(MAGIC) + 5:], "not valid JSON"),
    (lambda b: b"", "not an ecosync private-matching message"),
])
def test_a_damaged_request_is_refused_whole(pair: Any, tmp_path: Path, damage: Any,
                                            needle: str) -> None:
    _acme, globex, req = pair
    bad = tmp_path / "bad.psi"
    bad.write_bytes(damage(req.read_bytes()))
    out = tmp_path / "resp.psi"
    _refused(lambda: globex.respond(bad, out), str(bad), needle)
    assert not out.exists()
    assert list(tmp_path.glob(".resp.psi*")) == []
    assert _runs(globex) == []


def test_a_future_version_is_refused_naming_the_versions(pair: Any, tmp_path: Path) -> None:
    _acme, globex, req = pair
    future = tmp_path / "future.psi"
    _rewrite_header(req, future, {"version": 2})
    _refused(lambda: globex.respond(future, tmp_path / "r.psi"),
             "message version 2 is newer than this ecosync supports (1)", "upgrade")
    assert _runs(globex) == []


def test_a_request_with_other_parameters_is_refused(pair: Any, tmp_path: Path) -> None:
    _acme, globex, req = pair
    globex.psi = {"min_set_size": 3, "false_positive_rate": 1e-6}
    _refused(lambda: globex.respond(req, tmp_path / "r.psi"),
             "parameter false_positive_rate is 1e-09 in the message but 1e-06 here")
    globex.psi = {"min_set_size": 3, "data_structure": "raw"}
    _refused(lambda: globex.respond(req, tmp_path / "r.psi"),
             "parameter data_structure is 'gcs' in the message but 'raw' here")
    assert _runs(globex) == []


def test_replays_are_refused_on_both_sides(pair: Any, tmp_path: Path) -> None:
    acme, globex, req = pair
    resp = tmp_path / "resp.psi"
    globex.respond(req, resp)
    _refused(lambda: globex.respond(req, tmp_path / "again.psi"),
             "was already answered here", "a request is answered once")
    assert not (tmp_path / "again.psi").exists()
    acme.finish(resp)
    rows = acme.partner_rows()
    _refused(lambda: acme.finish(resp), "so this response was already used")
    assert acme.partner_rows() == rows
    # A response to a run this warehouse never started.
    stranger = tmp_path / "stranger.psi"
    _rewrite_header(resp, stranger, {"run_id": "0" * 32})
    _refused(lambda: acme.finish(stranger), "no run 00000000000000000000000000000000 was "
             "started here")


def test_a_message_for_another_step_is_refused(pair: Any, tmp_path: Path) -> None:
    acme, globex, req = pair
    _refused(lambda: acme.finish(req), "this is a request message, not a response or a "
             "contacts", "ecosync psi respond")
    # Kinds in words, as the rest of the message says them: never 'contacts_request'.
    resp = tmp_path / "resp.psi"
    globex.respond(req, resp)
    _refused(lambda: globex.respond(resp, tmp_path / "again.psi"),
             "this is a response message, not a request or a contacts request",
             "ecosync psi finish")


def test_set_size_limits_on_both_sides(make_pair: Any, tmp_path: Path) -> None:
    acme, globex = make_pair()
    acme.psi = {"min_set_size": 1000}
    _refused(lambda: acme.request(tmp_path / "small.psi"),
             "fewer than [psi] min_set_size (1000)")
    assert not (tmp_path / "small.psi").exists()
    assert _runs(acme) == []
    assert list((acme.tmp / "state").iterdir()) == []  # no key left behind
    acme.psi = {"min_set_size": 3}
    req = tmp_path / "req.psi"
    acme.request(req)
    globex.psi = {"min_set_size": 3, "max_set_size": 5}
    _refused(lambda: globex.respond(req, tmp_path / "r.psi"),
             "the partner's set has", "more than [psi] max_set_size (5)")
    assert _runs(globex) == []


def test_hidden_is_not_enrolled(make_pair: Any, tmp_path: Path) -> None:
    acme, globex = make_pair(
        share_a={"customer": "names"},  # our open opportunities and prospects: hidden
        share_b={"customer": "names", "prospect": "hidden"})
    req, resp = tmp_path / "req.psi", tmp_path / "resp.psi"
    made = acme.request(req)
    assert made.enrolled == ["customer"]
    # Only our customers' keys were sent: 5 shared + 1 DUNS company + 3 of our own.
    assert made.sizes == {"domain": 9, "duns": 1}
    answered = globex.respond(req, resp)
    assert answered.shared == {"customer": "names"}
    header = read_message(resp, (Kind.RESPONSE,)).header
    assert {s["population"] for s in header["sections"]} == {"customer"}
    done = acme.finish(resp)
    assert done.shared == {"customer": "names"}
    assert {p for p, _, _ in acme.partner_rows()} == {"customer"}
    # An outbound policy hiding everything enrols nothing: no request at all.
    acme.outbound = {}
    _refused(lambda: acme.request(tmp_path / "none.psi"),
             "our outbound policy hides every population")


def test_fresh_keys_every_run_and_none_kept(make_pair: Any, tmp_path: Path) -> None:
    acme, globex = make_pair()
    first, second = tmp_path / "1.psi", tmp_path / "2.psi"
    run1 = acme.request(first)
    run2 = acme.request(second)
    state_dir = acme.tmp / "state"
    keys = [state.read_pending(state_dir, r.run_id).key for r in (run1, run2)]
    assert keys[0] != keys[1]
    blocks = [_blocks(f) for f in (first, second)]
    # Same set, fresh keys: not one encrypted element in common.
    assert not set(_elements(blocks[0])) & set(_elements(blocks[1]))
    resp = tmp_path / "resp.psi"
    globex.respond(first, resp)
    acme.finish(resp)
    assert not (state_dir / f"{run1.run_id}.pending").exists()
    with acme.engine.connect() as conn:
        dump = " ".join(str(row) for table in ("psi_runs", "partner_accounts")
                        for row in conn.execute(text(f"SELECT * FROM {table}")))
    assert keys[0].hex() not in dump
    assert (state_dir.stat().st_mode & 0o777) == 0o700
    pending = state_dir / f"{run2.run_id}.pending"
    assert (pending.stat().st_mode & 0o777) == 0o600


def _blocks(path: Path) -> list[bytes]:
    message = read_message(path, (Kind.REQUEST,))
    return [p for _, part, p in message.frames() if part is Part.REQUEST]


def _elements(blocks: list[bytes]) -> list[bytes]:
    from private_set_intersection.python import Request

    out: list[bytes] = []
    for blob in blocks:
        request = Request()
        request.ParseFromString(blob)
        out.extend(request.encrypted_elements)
    return out


def test_each_section_answers_under_its_own_key(pair: Any, tmp_path: Path) -> None:
    """Counts must not be lined up with a names answer made under the same key."""
    from private_set_intersection.python import Response

    _acme, globex, req = pair
    resp = tmp_path / "resp.psi"
    globex.respond(req, resp)
    per_section: dict[int, set[bytes]] = {}
    for index, part, payload in read_message(resp, (Kind.RESPONSE,)).frames():
        if part is Part.ANSWER:
            answer = Response()
            answer.ParseFromString(payload)
            per_section.setdefault(index, set()).update(answer.encrypted_elements)
    assert len(per_section) == 6  # three populations x two key kinds
    sections = list(per_section.values())
    for i, a in enumerate(sections):
        for b in sections[i + 1:]:
            assert not a & b


def test_unknown_sender_needs_partner(pair: Any, tmp_path: Path) -> None:
    _acme, globex, req = pair
    stranger = tmp_path / "stranger.psi"
    _rewrite_header(req, stranger, {"from": "Initech"})
    _refused(lambda: globex.respond(stranger, tmp_path / "r.psi"),
             "comes from 'Initech'", "--partner ID")
    done = globex.respond(stranger, tmp_path / "r.psi", partner_id="acme")
    assert done.partner_id == "acme"


def test_nothing_lands_from_a_response_with_a_bad_element(pair: Any, tmp_path: Path) -> None:
    acme, globex, req = pair
    resp = tmp_path / "resp.psi"
    globex.respond(req, resp)
    # The last answer's last element gets an impossible point prefix, and the file is
    # re-sealed: a well-formed message carrying an element that is no curve point.
    body = resp.read_bytes()[:-32]
    at = max(body.rfind(b"\x0a\x21\x02"), body.rfind(b"\x0a\x21\x03")) + 2
    tampered = body[:at] + b"\x07" + body[at + 1:]
    bad = tmp_path / "bad-resp.psi"
    bad.write_bytes(tampered + hashlib.sha256(tampered).digest())
    with Session(acme.engine) as s:
        before = s.scalar(select(func.count()).select_from(PartnerAccount))
    with pytest.raises(UserError) as info:
        acme.finish(bad)
    assert "refused" in info.value.message
    with Session(acme.engine) as s:
        assert s.scalar(select(func.count()).select_from(PartnerAccount)) == before
    assert _runs(acme) == [("requester", "requested")]


def test_contacts_only_for_tags_the_run_made(make_pair: Any, tmp_path: Path) -> None:
    """Tags are digests of H(key)^b: a requester can only name keys it sent. Made-up tags
    (here: digests of every Globex domain, as a guesser would compute them) get nothing."""
    from sync.matching.keys import registrable_domain
    from sync.psi.contacts import write_contacts_request
    from sync.psi.sets import element

    acme, globex = make_pair()
    req, resp = tmp_path / "req.psi", tmp_path / "resp.psi"
    made = acme.request(req)
    globex.respond(req, resp)
    with Session(acme.engine) as s:
        run = s.scalars(select(PsiRun).where(PsiRun.run_id == made.run_id)).one()
        run_params = dict(run.params)
    guesses = [registrable_domain(site) or "" for site in GLOBEX_ONLY + BOTH_CUSTOMERS]
    forged = Found("customer", KeyKind.DOMAIN, Level.FULL)
    for key in guesses:
        for text_ in (key, element("domain", key)):
            forged.tags.append((hashlib.sha256(text_.encode()).digest(), key))
    ask = tmp_path / "forged.psi"
    write_contacts_request(ask, made.run_id, run_params, [forged], "Acme", acme.now)
    answer = globex.respond(ask, tmp_path / "contacts.psi")
    assert answer.contacts is not None
    assert (answer.contacts.asked, answer.contacts.sent) == (2 * len(guesses), 0)
    # Answered once: the same contacts request again is refused.
    _refused(lambda: globex.respond(ask, tmp_path / "again.psi"),
             "so this contacts request was already used")


@pytest.mark.parametrize("change", [
    {"sections": "all"},
    {"sections": [{"key": "domain", "size": 1}]},
    {"sections": [{"key": "duns", "size": 0}, {"key": "domain", "size": 0}]},
    {"sections": [1, 2]},
    {"populations": ["customers"]},
    {"populations": []},
    {"run_id": "../../etc/passwd"},
    {"params": "gcs"},
    {"from": None},
    {"kind": "invoice"},
    {"keys": ["domain"]},
])
def test_a_request_with_a_malformed_header_is_refused_whole(pair: Any, tmp_path: Path,
                                                            change: dict[str, Any]) -> None:
    _acme, globex, req = pair
    bad = tmp_path / "bad.psi"
    _rewrite_header(req, bad, change)
    out = tmp_path / "resp.psi"
    _refused(lambda: globex.respond(bad, out), str(bad), "refused")
    assert not out.exists()
    assert _runs(globex) == []
