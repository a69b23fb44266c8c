"""The matching engine: outcomes in the overlaps table, per rule of DESIGN.md section 4."""

from __future__ import annotations

import gc
import uuid

import pytest
from matching_world import World
from sqlalchemy import delete, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schema.models import Account, Opportunity, Overlap, PartnerAccount
from sync import dirty
from sync.config import MatchingConfig
from sync.dirty import Kind, Queue
from sync.matching import fuzzy, postgres
from sync.matching.engine import rematch


def test_domain_match_creates_one_overlap_with_history_fields(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme Inc", "https://www.acme.com/about")
    world.partner_account("p1", "ACME", "acme.com", "prospect")
    stats = world.match()
    assert world.overlaps() == {("A1", "p1"): ("prospect", "domain")}
    (row,) = world.overlap_rows()
    assert row.first_seen_at == row.last_seen_at == world.now
    assert row.ended_at is None
    assert stats.inserted == 1
    assert world.flags("A1") == (False, True)


def test_strongest_population_wins_across_rows_of_one_partner(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.partner_account("p1", "Acme EU", "https://eu.acme.com", "prospect", row_key="r1")
    world.partner_account("p1", "Acme US", "acme.com", "customer", row_key="r2")
    world.partner_account("p1", "Acme Labs", "acme.com/labs", "open_opportunity", row_key="r3")
    world.match()
    assert world.overlaps() == {("A1", "p1"): ("customer", "domain")}
    assert len(world.overlap_rows()) == 1


def test_private_suffix_domains_stay_distinct(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "https://acme.github.io")
    world.account("A2", "Beta", "https://beta.github.io")
    world.partner_account("p1", "Acme", "acme.github.io")
    world.match()
    assert set(world.overlaps()) == {("A1", "p1")}


def test_duns_equal_matches_and_different_duns_never_match(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com", duns="12-345-6789")
    world.account("A2", "Globex", "globex.com", duns="111111111")
    world.account("A3", "Initech", None, duns="222222222")
    world.partner_account("p1", "Acme Holdings", "acme.com", duns="999999999", row_key="r1")
    world.partner_account("p1", "Globex", "globex.com", duns="111111111", row_key="r2")
    world.partner_account("p1", "Other name", "initech-group.com", duns="222-222-222",
                          row_key="r3", population="prospect")
    world.match()
    assert world.overlaps() == {
        ("A2", "p1"): ("customer", "duns"),
        ("A3", "p1"): ("prospect", "duns"),
    }


def test_name_match_only_when_one_side_lacks_a_domain(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme GmbH", None)
    world.account("A2", "Globex Corporation", "globex.com")
    world.account("A3", "Initech Ltd", "initech.com")
    world.partner_account("p1", "ACME", None, row_key="r1")
    world.partner_account("p1", "Globex Corp.", None, row_key="r2")
    world.partner_account("p1", "Initech", "initech.io", row_key="r3")  # both have domains
    world.match()
    assert world.overlaps() == {("A1", "p1"): ("customer", "name"),
                                ("A2", "p1"): ("customer", "name")}


def test_fuzzy_match_keeps_its_score_and_respects_the_threshold(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Northwind Traders International", None)
    world.account("A2", "Contoso Pharmaceuticals", "contoso.com")
    world.partner_account("p1", "Northwind Tarders International", None, row_key="r1")
    world.partner_account("p1", "Contoso Pharmacy", None, row_key="r2")  # too different
    world.match()
    assert world.overlaps() == {("A1", "p1"): ("customer", "fuzzy")}
    (row,) = world.overlap_rows()
    assert row.score is not None
    assert 92 <= row.score < 100


def test_fuzzy_off_finds_only_exact_names(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Northwind Traders International", None)
    world.partner_account("p1", "Northwind Tarders International", None)
    world.match(config=MatchingConfig(fuzzy=False))
    assert world.overlaps() == {}


def test_generic_domains_are_never_keys(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Joe's Plumbing", "https://www.facebook.com/joesplumbing")
    world.account("A2", "Sue's Bakery", "gmail.com")
    world.partner_account("p1", "Other", "facebook.com", row_key="r1")
    world.partner_account("p1", "Another", "https://gmail.com", row_key="r2")
    world.match()
    assert world.overlaps() == {}


def test_history_still_present_vanished_and_new(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.partner_account("p1", "Acme", "acme.com", "prospect")
    world.match()
    (first,) = world.overlap_rows()

    world.partner_account("p1", "Acme", "acme.com", "customer")  # population upgraded
    world.match()
    (same,) = world.overlap_rows()
    assert same.id == first.id
    assert same.population == "customer"
    assert same.first_seen_at == first.first_seen_at
    assert same.last_seen_at == world.now

    world.account("A1", "Acme", "acme-new.com")  # our website changed: no key in common
    world.match()
    (ended,) = world.overlap_rows()
    assert ended.ended_at == world.now
    assert world.overlaps() == {}

    world.account("A1", "Acme", "acme.com")  # back again: a new overlap, history kept
    world.match()
    rows = world.overlap_rows()
    assert len(rows) == 2
    assert rows[0].ended_at is not None
    assert rows[1].ended_at is None
    assert rows[1].first_seen_at == world.now


def test_deleted_account_ends_its_overlaps(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.partner_account("p1", "Acme", "acme.com")
    world.match()
    world.account("A1", "Acme", "acme.com", deleted=True)
    world.match()
    assert world.overlaps() == {}
    assert world.overlap_rows()[0].ended_at == world.now


def test_deleted_partner_account_ends_the_overlap(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    row = world.partner_account("p1", "Acme", "acme.com")
    world.match()
    world.delete_partner_account(row)
    world.match()
    assert world.overlaps() == {}


def test_partner_account_change_rematches_only_affected_accounts(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.account("A2", "Globex", "globex.com")
    world.partner_account("p1", "Acme", "acme.com", row_key="r1")
    world.match()
    world.clear_fields_dirty()

    world.partner_account("p1", "Globex", "globex.com", "prospect", row_key="r1")  # re-keyed
    stats = world.match()
    assert world.overlaps() == {("A2", "p1"): ("prospect", "domain")}
    assert stats.scope_accounts == 2
    assert world.flags("A1") == (False, True)
    assert world.flags("A2") == (False, True)


def test_incremental_run_touches_only_dirty_accounts(world: World) -> None:
    world.partner("p1")
    for i in range(20):
        world.account(f"A{i}", f"Company {i}", f"company{i}.com")
        world.partner_account("p1", f"Company {i}", f"company{i}.com")
    world.match()
    world.clear_fields_dirty()
    before = {r.id: r.last_seen_at for r in world.overlap_rows()}

    world.account("A3", "Company 3", "company3.com")  # re-ingested, unchanged keys
    stats = world.match()
    assert stats.scope_accounts == 1
    after = {r.id: r.last_seen_at for r in world.overlap_rows()}
    moved = [i for i in after if after[i] != before[i]]
    assert len(moved) == 1
    assert stats.changed_accounts == 0
    assert world.flags("A3") == (False, False)

    assert world.match().scope_accounts == 0  # nothing dirty: nothing to do


def test_full_rematch_is_idempotent(world: World) -> None:
    world.partner("p1")
    world.partner("p2")
    world.account("A1", "Acme", "acme.com")
    world.account("A2", "Globex", None)
    world.partner_account("p1", "Acme", "acme.com")
    world.partner_account("p2", "Globex Corp", None, "open_opportunity")
    world.match(full=True)
    first = world.overlaps()
    stats = world.match(full=True)
    assert world.overlaps() == first
    assert (stats.inserted, stats.ended, stats.changed_accounts) == (0, 0, 0)
    assert len(world.overlap_rows()) == 2


def test_overlap_change_flags_open_opportunities(world: World) -> None:
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.opportunity("O1", "A1")
    world.opportunity("O2", "A1", status="won")
    world.partner_account("p1", "Acme", "acme.com")
    world.match()
    with Session(world.engine) as s:
        ids = dict(s.execute(select(Opportunity.external_id, Opportunity.id)).all())
        flags = {ext: dirty.holds(s, Queue.PLAN, Kind.OPPORTUNITY, i) for ext, i in ids.items()}
        assert flags == {"O1": True, "O2": False}
    assert world.flags("A1") == (False, True)


def test_large_runs_refresh_planner_statistics(world: World,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "ANALYZE_AFTER_ROWS", 0)
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.partner_account("p1", "Acme", "acme.com")
    assert world.match(full=True).inserted == 1
    world.account("A1", "Acme", "other.com")
    assert world.match().ended == 1


def test_a_bulk_of_new_overlaps_keeps_every_foreign_key_and_its_rule(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL a run inserting a bulk of overlaps drops their foreign keys and adds them
    back (checked by one join, not a trigger per row): the same overlaps result, and the
    constraints are all there after it, each with its ON DELETE rule."""
    monkeypatch.setattr(postgres, "BULK_INSERT_ROWS", 2)
    world.partner("p1")
    world.partner("p2")
    for i in range(3):
        world.account(f"A{i}", f"Company {i}", f"company{i}.com")
        world.partner_account("p1", f"Company {i}", f"company{i}.com", row_key=f"r{i}")
    row = world.partner_account("p2", "Company 0", "company0.com", row_key="x")
    stats = world.match(full=True)
    assert stats.inserted == 4
    assert world.overlaps() == {(f"A{i}", "p1"): ("customer", "domain") for i in range(3)} | {
        ("A0", "p2"): ("customer", "domain")}
    # An overlap of no account is still refused.
    with world.engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(insert(Overlap).values(
            account_id=10**9, partner_id="p1", method="domain", population="prospect",
            first_seen_at=world.now, last_seen_at=world.now))
    with world.engine.begin() as conn:  # ON DELETE SET NULL still holds
        conn.execute(delete(PartnerAccount).where(PartnerAccount.id == row))
    with Session(world.engine) as s:
        held = s.scalars(select(Overlap.partner_account_id).join(
            Account, Account.id == Overlap.account_id).where(
                Overlap.partner_id == "p2")).all()
    assert held == [None]
    if world.engine.dialect.name == "postgresql":
        with world.engine.connect() as conn:
            keys = dict(conn.execute(text(
                "SELECT conname, confdeltype FROM pg_constraint WHERE contype = 'f' "
                "AND conrelid = CAST('overlaps' AS regclass)")).all())
        assert keys == {"fk_overlaps_account_id_accounts": "c",
                        "fk_overlaps_partner_id_partners": "c",
                        "fk_overlaps_partner_account_id_partner_accounts": "n"}


def test_a_small_scope_on_postgresql_drives_the_joins_and_matches_the_same(
    world: World,
) -> None:
    """An incremental run whose scope is a fiftieth of the accounts or less plans its joins
    as nested loops from the scope (PostgreSQL only, this transaction only); what it matches
    is what any plan matches."""
    world.partner("p1")
    for i in range(60):
        world.account(f"A{i}", f"Company {i}", f"company{i}.com")
        world.partner_account("p1", f"Company {i}", f"company{i}.com", row_key=f"r{i}")
    world.match(full=True)
    with world.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE accounts"))
    world.account("A7", "Company 7", "elsewhere.com")  # lost its domain match
    with world.engine.begin() as conn:
        stats = rematch(conn, world.config, now=world.tick())
        if conn.dialect.name == "postgresql":
            assert conn.execute(text("SHOW enable_hashjoin")).scalar() == "off"
    with world.engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # the next transaction plans as it likes
            assert conn.execute(text("SHOW enable_hashjoin")).scalar() == "on"
    assert stats.scope_accounts == 1
    assert stats.ended == 1
    assert ("A7", "p1") not in world.overlaps()
    assert len(world.overlaps()) == 59


def test_a_role_that_does_not_own_overlaps_inserts_a_bulk_row_by_row(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the owner may drop a constraint: a role with every privilege but ownership (a
    warehouse restored under another role) still matches a bulk, with the triggers."""
    if world.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL: ownership of the overlaps table")
    monkeypatch.setattr(postgres, "BULK_INSERT_ROWS", 2)
    role = f"ecosync_test_{uuid.uuid4().hex[:8]}"
    world.partner("p1")
    for i in range(3):
        world.account(f"A{i}", f"Company {i}", f"company{i}.com")
        world.partner_account("p1", f"Company {i}", f"company{i}.com", row_key=f"r{i}")
    with world.engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        conn.execute(text(f'CREATE ROLE "{role}"'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"'))
    try:
        with world.engine.begin() as conn:
            conn.execute(text(f'SET LOCAL ROLE "{role}"'))
            stats = rematch(conn, world.config, now=world.tick(), full=True)
        assert stats.inserted == 3
        assert len(world.overlaps()) == 3
    finally:
        with world.engine.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))


@pytest.mark.parametrize("full", [True, False])
def test_a_partner_account_changed_in_place_replans_the_accounts_it_overlaps(
    world: World, full: bool,
) -> None:
    """A partner row whose owner changed (its keys did not) leaves the overlap as it is, but
    the account's contacts field changes: the account is queued for planning, by a full run
    as by an incremental one, and only that account."""
    world.partner("p1")
    world.account("A1", "Acme", "acme.com")
    world.account("A2", "Globex", "globex.com")
    world.partner_account("p1", "Acme", "acme.com", row_key="r1", owner_name="Ann Lee")
    world.partner_account("p1", "Globex", "globex.com", row_key="r2")
    world.match(full=True)
    world.clear_fields_dirty()
    world.partner_account("p1", "Acme", "acme.com", row_key="r1", owner_name="Bo Chen")
    stats = world.match(full=full)
    assert stats.dirty_partner_accounts == 1
    assert stats.inserted == 0 and stats.ended == 0
    assert world.flags("A1") == (False, True)
    assert world.flags("A2") == (False, False)


def test_a_run_pauses_the_cyclic_collector_and_restores_it(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzzy stage runs with Python's cyclic GC paused (sync.bulk); afterwards, even after
    a failed run, the collector is as the caller left it."""
    seen: list[bool] = []
    scoring = fuzzy.fuzzy_pairs

    def spying(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return scoring(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fuzzy, "fuzzy_pairs", spying)
    world.partner("p1")
    world.account("A1", "Northwind Traders International", None)
    world.partner_account("p1", "Northwind Tarders International", None, row_key="r1")
    assert gc.isenabled()
    world.match()
    assert seen == [False] and gc.isenabled()
    assert world.overlaps() == {("A1", "p1"): ("customer", "fuzzy")}

    def failing(*args: object, **kwargs: object) -> object:
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(fuzzy, "fuzzy_pairs", failing)
    with pytest.raises(RuntimeError):
        world.match(full=True)
    assert gc.isenabled()
    gc.disable()
    try:
        monkeypatch.setattr(fuzzy, "fuzzy_pairs", spying)
        world.match(full=True)
        assert not gc.isenabled()  # an embedding program's choice is kept
    finally:
        gc.enable()
