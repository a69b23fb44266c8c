"""Manual overrides win over the rules; explain says why each partner matched or not."""

from __future__ import annotations

import pytest
from matching_world import World
from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import Account, MatchOverride
from sync.errors import UserError
from sync.matching.explain import Explanation, explain
from sync.matching.overrides import block, pin, resolve_account, revoke


def _override(world: World, action: str, external_id: str, partner_id: str,
              **kwargs: str | None) -> int:
    with Session(world.engine) as s, s.begin():
        account = resolve_account(s, external_id)
        fn = pin if action == "pin" else block
        return fn(s, account, partner_id, who="ana", why="checked with the partner",
                  now=world.now, **kwargs).id  # type: ignore[arg-type]


def _explain(world: World, external_id: str) -> dict[str, Explanation]:
    with Session(world.engine) as s:
        return {e.partner_id: e for e in explain(s, "salesforce", external_id)}


def test_block_removes_a_rule_match_and_revoke_restores_it(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.partner_account("p1", "Acme", "acme.com")
    world.match()
    override_id = _override(world, "block", "A1", "p1")
    world.match()
    assert world.overlaps() == {}
    assert _explain(world, "A1")["p1"].override is not None
    with Session(world.engine) as s, s.begin():
        revoke(s, override_id, who="bob", now=world.now)
    world.match()
    assert world.overlaps() == {("A1", "p1"): ("customer", "domain")}
    assert len(world.overlap_rows()) == 2  # the blocked period stays in the history


def test_pin_creates_an_overlap_no_rule_finds(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.partner_account("p1", "Totally Different", "other.com", "open_opportunity",
                          row_key="X-1")
    _override(world, "pin", "A1", "p1", row_key="X-1")
    world.match()
    assert world.overlaps() == {("A1", "p1"): ("open_opportunity", "pin")}
    why = _explain(world, "A1")["p1"]
    assert why.matched
    assert why.method == "pin"
    assert why.override is not None
    assert "by ana" in why.override


def test_pin_wins_over_different_duns_and_block_wins_over_duns(world: World) -> None:
    world.partner("p1")
    world.partner("p2")
    world.account("A1", "Acme", "acme.com", duns="111111111")
    world.partner_account("p1", "Acme", "acme.com", duns="222222222")
    world.partner_account("p2", "Acme", "acme.com", duns="111111111")
    _override(world, "pin", "A1", "p1", population="prospect")
    _override(world, "block", "A1", "p2")
    world.match()
    assert world.overlaps() == {("A1", "p1"): ("prospect", "pin")}


def test_row_block_leaves_other_rows_of_the_partner(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.partner_account("p1", "Acme", "acme.com", "customer", row_key="wrong")
    world.partner_account("p1", "Acme", "https://www.acme.com/", "prospect", row_key="right")
    _override(world, "block", "A1", "p1", row_key="wrong")
    world.match()
    assert world.overlaps() == {("A1", "p1"): ("prospect", "domain")}


def test_newest_override_replaces_the_previous_one(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.partner_account("p1", "Acme", "acme.com")
    _override(world, "block", "A1", "p1")
    _override(world, "pin", "A1", "p1", population="customer")
    world.match()
    assert world.overlaps() == {("A1", "p1"): ("customer", "pin")}
    with Session(world.engine) as s:
        rows = s.scalars(select(MatchOverride).order_by(MatchOverride.id)).all()
        assert [(r.action, r.revoked_by is not None) for r in rows] == [
            ("block", True), ("pin", False)]


def test_override_validation_names_the_fix(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    with pytest.raises(UserError, match="no partner 'nope'"):
        _override(world, "pin", "A1", "nope")
    with pytest.raises(UserError, match="row key 'R9'"):
        _override(world, "pin", "A1", "p1", row_key="R9")
    with pytest.raises(UserError, match="no account 'B7'"):
        _override(world, "pin", "B7", "p1")
    with Session(world.engine) as s:
        account = s.scalars(select(Account)).one()
        with pytest.raises(UserError, match="--reason"):
            pin(s, account, "p1", who="ana", why=" ", now=world.now)


def test_resolve_account_by_website(world: World) -> None:
    world.account("A1", "Acme", "acme.com")
    with Session(world.engine) as s:
        assert resolve_account(s, "https://www.acme.com").external_id == "A1"


def test_explain_says_why_each_partner_matched_or_not(world: World) -> None:
    for pid in ("p-domain", "p-duns", "p-fuzzy", "p-none", "p-score", "p-two-domains"):
        world.partner(pid)
    world.account("A1", "Northwind Traders International", "northwind.com", duns="123456789")
    world.partner_account("p-domain", "NW", "https://shop.northwind.com", "prospect")
    world.partner_account("p-duns", "Northwind", "northwind.com", duns="987654321")
    world.partner_account("p-fuzzy", "Northwind Tarders International", None)
    world.partner_account("p-score", "Northwind Group", None)
    world.partner_account("p-two-domains", "Northwind Traders International", "nwt.io")
    world.match()
    why = _explain(world, "A1")

    assert why["p-domain"].matched
    assert (why["p-domain"].method, why["p-domain"].key) == ("domain", "northwind.com")
    assert why["p-domain"].population == "prospect"
    assert why["p-domain"].since is not None

    assert not why["p-duns"].matched
    assert "DUNS differ" in why["p-duns"].reason

    assert why["p-fuzzy"].matched
    assert why["p-fuzzy"].method == "fuzzy"
    assert why["p-fuzzy"].score is not None

    assert not why["p-score"].matched
    assert "score" in why["p-score"].reason

    assert not why["p-two-domains"].matched
    assert "domains differ" in why["p-two-domains"].reason

    assert not why["p-none"].matched
    assert why["p-none"].reason.startswith("no partner account with domain northwind.com")


def test_explain_agrees_with_the_engine_on_every_partner(world: World) -> None:
    names = ["Acme", "Acme Labs", "Globex", "Globex Corp", "Initech", "Umbrella", "Umbrela"]
    for i, name in enumerate(names):
        world.partner(f"p{i}")
        world.account(f"A{i}", name, f"{name.split()[0].lower()}.com" if i % 2 else None)
        for j, other in enumerate(names):
            if (i + j) % 3 == 0:
                world.partner_account(f"p{i}", other, f"{other.lower()}.com" if j % 3 else None,
                                      row_key=f"r{j}")
    world.match()
    active = world.overlaps()
    for i in range(len(names)):
        for pid, e in _explain(world, f"A{i}").items():
            assert e.matched == ((f"A{i}", pid) in active), (f"A{i}", pid, e.reason)
            assert "re-match" not in e.reason
