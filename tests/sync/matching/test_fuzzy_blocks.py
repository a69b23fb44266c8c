"""Fuzzy blocks read from the warehouse: every row of a wanted block exactly once."""

from __future__ import annotations

import random
from typing import NamedTuple
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from matching_world import World
from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import Account, Overlap
from sync.matching import fuzzy
from sync.matching.keys import blocking_key, normalize_name, registrable_domain
from sync.matching.rules import Keys, Method, judge, name_score
from sync.matching.worktables import work_tables


@pytest.mark.parametrize("ranges", [True, False])
def test_nested_blocks_yield_each_row_once(world: World, ranges: bool) -> None:
    world.partner("p1")
    for i, name in enumerate(["Acme", "Acme Labs", "Acmecorp", "Acmecorp Group", "Acne",
                              "Ab", "Ab Inbev", "Zeta"]):
        world.partner_account("p1", name, None, row_key=f"r{i}")
    pa = fuzzy.PARTNER_ACCOUNTS
    with world.engine.begin() as conn, work_tables(conn):
        groups = list(fuzzy.in_blocks(conn, select(pa.c.id, pa.c.name_key), pa.c.name_key,
                                      dict.fromkeys(["acme", "acmec", "ab"], (0, 100)),
                                      ranges=ranges))
    found = sorted(r[1] for g in groups for rows in g.values() for r in rows)
    assert found == ["ab", "ab inbev", "acme", "acme labs", "acmecorp", "acmecorp group"]
    by_block = {k: sorted(r[1] for r in rows) for g in groups for k, rows in g.items()}
    assert by_block["acmec"] == ["acmecorp", "acmecorp group"]


@pytest.mark.parametrize("ranges", [True, False])
def test_only_names_in_the_length_window_are_read(world: World, ranges: bool) -> None:
    world.partner("p1")
    for i, name in enumerate(["Acme", "Acme Lab", "Acme Labs", "Acme Laboratories"]):
        world.partner_account("p1", name, None, row_key=f"r{i}")
    pa = fuzzy.PARTNER_ACCOUNTS
    with world.engine.begin() as conn, work_tables(conn):
        groups = list(fuzzy.in_blocks(conn, select(pa.c.id, pa.c.name_key), pa.c.name_key,
                                      {"acme": (8, 9)}, ranges=ranges))
    found = sorted(r[1] for g in groups for rows in g.values() for r in rows)
    assert found == ["acme lab", "acme labs"]


@settings(max_examples=400, deadline=None)
@given(a=st.text(alphabet="abcdefgh ", min_size=1, max_size=40),
       b=st.text(alphabet="abcdefgh ", min_size=1, max_size=40),
       threshold=st.integers(min_value=50, max_value=100))
def test_the_length_window_never_drops_a_pair_that_scores(a: str, b: str,
                                                          threshold: int) -> None:
    if fuzz.ratio(a, b) >= threshold:
        lo, hi = fuzzy.length_window(len(a), threshold)
        assert lo <= len(b) <= hi


class _Raw(NamedTuple):
    id: int
    name_key: str


_NAMES = st.lists(st.text(alphabet="abcd", min_size=1, max_size=7), min_size=1,
                  max_size=4).map(" ".join)


@settings(max_examples=300, deadline=None)
@example(ours=["ab cd", "ab"], theirs=["ab ce", "abd"], threshold=80,  # 80.0 exactly
         extract_choices=0)
@example(ours=["ab cd", "ab"], theirs=["ab ce", "abd"], threshold=80, extract_choices=1_000)
@given(ours=st.lists(_NAMES, min_size=1, max_size=25),
       theirs=st.lists(_NAMES, min_size=1, max_size=25),
       threshold=st.integers(min_value=0, max_value=100),
       extract_choices=st.sampled_from([0, fuzzy.EXTRACT_CHOICES, 1_000]))
def test_block_scoring_equals_pairwise_scoring(ours: list[str], theirs: list[str],
                                               threshold: int, extract_choices: int) -> None:
    """Scoring a block in one process.cdist call, or one process.extract call per indexed
    name (whichever the block's size picks: both paths forced here too), finds exactly the
    pairs, with exactly the scores, that scoring every pair of a block one by one
    (token_sort_ratio) finds."""
    index = fuzzy.BlockIndex(fuzzy.Side(i, name, None, False) for i, name in enumerate(ours))
    groups: dict[str, list[_Raw]] = {}
    for j, name in enumerate(theirs):
        if blocking_key(name) in index.blocks:
            groups.setdefault(blocking_key(name), []).append(_Raw(j, name))
    with mock.patch.object(fuzzy, "EXTRACT_CHOICES", extract_choices):
        found = sorted((row.id, raw.id, score)
                       for row, raw, score in index.candidates([groups], threshold))
    pairwise = sorted(
        (i, j, round(name_score(a, b), 2))
        for i, a in enumerate(ours) for j, b in enumerate(theirs)
        if a != b and blocking_key(a) == blocking_key(b) and name_score(a, b) >= threshold)
    assert found == pairwise


_WORDS = ["northwind", "northwynd", "traders", "tradres", "acme", "acmee", "software",
          "sofware", "globex", "group", "grp", "initech", "labs"]


def _typo(rng: random.Random, word: str) -> str:
    k = rng.randrange(1, len(word))
    return word[:k] + word[k + 1:] if rng.random() < 0.5 else word[:k] + "x" + word[k:]


@pytest.mark.parametrize("seed", range(3))
def test_fuzzy_overlaps_equal_pairwise_scoring(world: World, seed: int) -> None:
    """A full match's fuzzy overlaps (which partner account, which score) are the ones that
    scoring every pair one by one gives, for names close to each other in every way."""
    rng = random.Random(seed)
    world.partner("p1")
    world.partner("p2")

    def name() -> str:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(2, 3))]
        return " ".join(_typo(rng, w) if rng.random() < 0.3 else w for w in words)

    accounts = {f"A{i}": (name(), rng.choice([None, "acme.com", "globex.com"]))
                for i in range(40)}
    for external_id, (account_name, website) in accounts.items():
        world.account(external_id, account_name, website)
    rows = []
    for n in range(40):
        partner, row_name = rng.choice(["p1", "p2"]), name()
        if rng.random() < 0.6:  # one of our names with a typo (or none)
            first, *rest = rng.choice(list(accounts.values()))[0].split()
            row_name = " ".join([first, *(_typo(rng, w) if rng.random() < 0.5 else w
                                          for w in rest)])
        domain = rng.choice([None, None, "initech.io"])
        row_id = world.partner_account(partner, row_name, domain, "customer", row_key=f"r{n}")
        rows.append((row_id, partner, normalize_name(row_name), registrable_domain(domain)))
    world.match(full=True)

    expected: dict[tuple[str, str], tuple[float, int]] = {}
    for external_id, (account_name, website) in accounts.items():
        ours = Keys(registrable_domain(website), normalize_name(account_name), None)
        for row_id, partner, name_key, domain_key in rows:
            verdict = judge(ours, Keys(domain_key, name_key, None))
            if verdict.method is not None and verdict.method != Method.FUZZY:
                expected[(external_id, partner)] = (-1.0, -1)  # a stronger rule: not fuzzy
            elif verdict.method == Method.FUZZY and verdict.score is not None:
                best = expected.get((external_id, partner))
                if best is None or (best[0] >= 0 and (verdict.score, -row_id)
                                    > (best[0], -best[1])):
                    expected[(external_id, partner)] = (verdict.score, row_id)
    with Session(world.engine) as s:
        actual = {(external_id, o.partner_id): (o.score, o.partner_account_id)
                  for o, external_id in s.execute(
                      select(Overlap, Account.external_id)
                      .join(Account, Account.id == Overlap.account_id)
                      .where(Overlap.ended_at.is_(None), Overlap.method == "fuzzy"))}
    assert actual == {k: v for k, v in expected.items() if v[0] >= 0}
    assert actual  # the seeds give fuzzy pairs


def test_a_full_match_reads_few_blocks_by_ranges_with_the_same_overlaps(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """With few no-domain accounts against many partner rows, a full match's first pass reads
    the partner names by block ranges; it finds what scanning every name finds."""
    world.partner("p1")
    world.account("A1", "Northwind Traders")  # no domain: its block indexes the first pass
    world.account("A2", "Acme Software", "acme.com")
    names = ["Northwind Tradres", "Northwind Trader", "Northwind", "Northwinds Traders",
             "Acme Sofware", "Acme Software Group", "Globex"]
    for n in range(40):
        world.partner_account("p1", f"{names[n % len(names)]} {n // len(names) or ''}".strip(),
                              None, row_key=f"r{n}")
    found = []
    for few_blocks in (1, 10**9):  # ranges, then one scan of every partner name
        monkeypatch.setattr(fuzzy, "FEW_BLOCKS", few_blocks)
        world.match(full=True)
        found.append(sorted((k, v) for k, v in world.overlaps().items()))
    assert found[0] == found[1]
    assert (("A1", "p1"), ("customer", "fuzzy")) in found[0]
