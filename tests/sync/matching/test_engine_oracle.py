"""The set-based engine agrees with the pair-by-pair rules (sync.matching.rules.judge) on
random small worlds, and an incremental run after random changes equals a full one."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from matching_world import World
from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import Account, PartnerAccount
from sync.matching.rules import (
    METHOD_RANK,
    Keys,
    Method,
    Verdict,
    judge,
    population_rank,
    strongest,
)

WORDS = ["acme", "acne", "globex", "globax", "initech", "initek", "umbrella", "umbrela",
         "soft", "software", "group", "grp", "north", "northwind", "traders", "tarders"]
DOMAINS = [None, None, "acme.com", "globex.com", "initech.io", "acme.co.uk", "gmail.com"]
DUNS = [None, None, None, "111111111", "222222222"]
POPS = ["customer", "open_opportunity", "prospect"]


def _name(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))


def _judged(world: World) -> Iterator[tuple[Account, PartnerAccount, Verdict]]:
    """Every (live account, partner row) pair with judge()'s verdict on it."""
    with Session(world.engine) as s:
        accounts = s.scalars(select(Account).where(Account.is_deleted.is_(False))).all()
        rows = s.scalars(select(PartnerAccount)).all()
    for a in accounts:
        ours = Keys(a.domain_key, a.name_key, a.duns)
        for r in rows:
            yield a, r, judge(ours, Keys(r.domain_key, r.name_key, r.duns),
                              threshold=world.config.name_threshold)


def _expected(world: World) -> dict[tuple[str, str], str]:
    """{(account, partner): population} by running judge() on every pair."""
    out: dict[tuple[str, str], str] = {}
    for a, r, verdict in _judged(world):
        if verdict.matched:
            key = (a.external_id, r.partner_id)
            if key not in out or population_rank(r.population) < population_rank(out[key]):
                out[key] = r.population
    return out


def _populate(world: World, rng: random.Random, accounts: int, rows: int) -> None:
    for k in range(3):
        world.partner(f"p{k}")
    for i in range(accounts):
        world.account(f"A{i}", _name(rng), rng.choice(DOMAINS), duns=rng.choice(DUNS))
    for n in range(rows):
        world.partner_account(f"p{rng.randrange(3)}", _name(rng), rng.choice(DOMAINS),
                              rng.choice(POPS), duns=rng.choice(DUNS), row_key=f"r{n}")


def _actual(world: World) -> dict[tuple[str, str], str]:
    return {k: pop for k, (pop, _method) in world.overlaps().items()}


@pytest.mark.parametrize("seed", range(6))
def test_engine_matches_the_pairwise_rules(world: World, seed: int) -> None:
    rng = random.Random(seed)
    _populate(world, rng, accounts=25, rows=30)
    world.match(full=seed % 2 == 0)
    assert _actual(world) == _expected(world)


@pytest.mark.parametrize("seed", range(4))
def test_incremental_after_random_changes_equals_the_rules(world: World, seed: int) -> None:
    rng = random.Random(100 + seed)
    _populate(world, rng, accounts=20, rows=25)
    world.match()
    for _ in range(3):
        for i in rng.sample(range(20), 4):
            world.account(f"A{i}", _name(rng), rng.choice(DOMAINS), duns=rng.choice(DUNS),
                          deleted=rng.random() < 0.15)
        for n in rng.sample(range(25), 4):
            with Session(world.engine) as s:
                partner_id = s.scalar(select(PartnerAccount.partner_id)
                                      .where(PartnerAccount.row_key == f"r{n}"))
            if partner_id is not None:
                world.partner_account(partner_id, _name(rng), rng.choice(DOMAINS),
                                      rng.choice(POPS), duns=rng.choice(DUNS), row_key=f"r{n}")
        world.match()
        assert _actual(world) == _expected(world)


def _strongest_rows(world: World) -> dict[tuple[int, str], tuple[int, int, int]]:
    """{(account id, partner): (population rank, method rank, partner account id)} of the row
    `rules.strongest` keeps among every pair `judge` matches."""
    found: dict[tuple[int, str], list[tuple[int, int, float | None, int | None]]] = {}
    for a, r, verdict in _judged(world):
        if verdict.method is not None:
            found.setdefault((a.id, r.partner_id), []).append(
                (population_rank(r.population), METHOD_RANK[verdict.method],
                 verdict.score if verdict.method is Method.FUZZY else None, r.id))
    out = {}
    for pair, candidates in found.items():
        pop, method, _score, row = strongest(candidates)
        out[pair] = (pop, method, row or 0)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_each_overlap_keeps_the_row_the_rules_call_strongest(world: World, seed: int) -> None:
    """Not only which pairs match: the row each overlap keeps (population, method, partner
    account) is `rules.strongest`'s choice among every row that matches the pair."""
    rng = random.Random(200 + seed)
    _populate(world, rng, accounts=25, rows=40)
    world.match(full=seed % 2 == 0)
    kept = {(o.account_id, o.partner_id): (population_rank(o.population),
                                           METHOD_RANK[Method(o.method)],
                                           o.partner_account_id or 0)
            for o in world.overlap_rows() if o.ended_at is None}
    assert kept == _strongest_rows(world)
