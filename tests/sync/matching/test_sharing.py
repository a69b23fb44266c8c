"""Sharing: a `counts` partner is never named, a `hidden` one never counted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from matching_world import World
from sqlalchemy.orm import Session

from sync.sharing import EMPTY, SharedOverlap, account_visibility, share_level, visibility

LEVELS = ("full", "names", "counts", "hidden")
POPS = ("customer", "open_opportunity", "prospect")


def _o(pid: str, name: str, population: str, share: dict[str, str] | None = None,
       owner: tuple[str | None, str | None] = ("Jane Roe", "jane@partner.example")
       ) -> SharedOverlap:
    return SharedOverlap(pid, name, share or {}, population, *owner)


def test_fields_follow_each_level() -> None:
    vis = visibility([
        _o("z", "Zeta", "prospect", {"prospect": "full"}),
        _o("b", "Beta", "customer", {"customer": "names"}),
        _o("a", "Alpha", "open_opportunity", {"open_opportunity": "full"}),
        _o("c", "Counter", "customer", {"customer": "counts"}),
        _o("h", "Hider", "customer", {"customer": "hidden"}),
        _o("d", "Delta", "customer", {"customer": "full"}, owner=(None, None)),
    ])
    assert vis.overlap_count == 5
    assert vis.partners_field() == ("Beta (customer); Delta (customer); "
                                    "Alpha (open_opportunity); Zeta (prospect)")
    assert vis.contacts_field() == ("Jane Roe <jane@partner.example> (Alpha); "
                                    "Jane Roe <jane@partner.example> (Zeta)")
    assert vis.log_fields() == {"overlap_count": 5, "partners": ["b", "d", "a", "z"]}


def test_unset_population_is_full_and_unknown_level_fails_closed() -> None:
    assert share_level({}, "customer") == "full"
    assert share_level(None, "prospect") == "full"
    assert share_level({"customer": "everything"}, "customer") == "hidden"


def test_one_entry_per_partner_with_the_strongest_population() -> None:
    vis = visibility([_o("a", "Alpha", "prospect"), _o("a", "Alpha", "customer")])
    assert vis.overlap_count == 1
    assert vis.partners_field() == "Alpha (customer)"


def test_contacts_show_name_or_email_alone() -> None:
    vis = visibility([_o("a", "Alpha", "customer", owner=(None, "x@a.example")),
                      _o("b", "Beta", "customer", owner=("Bo", None))])
    assert vis.contacts_field() == "x@a.example (Alpha); Bo (Beta)"


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from(POPS),
                          st.sampled_from(LEVELS)), max_size=12))
def test_counts_never_named_hidden_never_counted(items: list[tuple[str, str, str]]) -> None:
    overlaps = [_o(pid, f"Partner-{pid.upper()}", pop, {pop: level}) for pid, pop, level in items]
    vis = visibility(overlaps)
    text = " ".join([vis.partners_field(), vis.contacts_field(), str(vis.log_fields())])
    shown: dict[str, str] = {}
    for o in sorted(overlaps, key=lambda o: POPS.index(o.population)):
        shown.setdefault(o.partner_id, share_level(o.share, o.population))
    assert vis.overlap_count == sum(lvl != "hidden" for lvl in shown.values())
    for pid, level in shown.items():
        named = f"Partner-{pid.upper()}" in text
        assert named == (level in ("full", "names")), (pid, level, text)


def test_account_visibility_from_the_warehouse(world: World) -> None:
    world.partner("p-full", "Full Co", {"customer": "full"})
    world.partner("p-counts", "Counts Co", {"customer": "counts"})
    world.partner("p-hidden", "Hidden Co", {"customer": "hidden"})
    a1 = world.account("A1", "Acme", "acme.com")
    a2 = world.account("A2", "Lonely", "lonely.com")
    for pid in ("p-full", "p-counts", "p-hidden"):
        world.partner_account(pid, "Acme", "acme.com", owner_name="Pat", owner_email="p@x.io")
    world.match()
    with Session(world.engine) as s:
        seen = account_visibility(s, [a1, a2])
    assert seen[a2] == EMPTY
    vis = seen[a1]
    assert vis.overlap_count == 2
    assert vis.partners_field() == "Full Co (customer)"
    assert vis.contacts_field() == "Pat <p@x.io> (Full Co)"
    assert vis.changed_at == world.now


def test_hidden_partner_changes_do_not_move_changed_at(world: World) -> None:
    world.partner("p-full", "Full Co")
    world.partner("p-hidden", "Hidden Co", {"customer": "hidden"})
    a1 = world.account("A1", "Acme", "acme.com")
    world.partner_account("p-full", "Acme", "acme.com")
    world.match()
    shown_at = world.now
    world.partner_account("p-hidden", "Acme", "acme.com")
    world.match()
    with Session(world.engine) as s:
        assert account_visibility(s, [a1])[a1].changed_at == shown_at
