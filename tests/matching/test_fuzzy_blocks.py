"""Fuzzy blocks read from the warehouse: every row of a wanted block exactly once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matching_world import World
from rapidfuzz import fuzz
from sqlalchemy import select

from sync.matching import fuzzy
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
    found = sorted(r.name_key for g in groups for rows in g.values() for r in rows)
    assert found == ["ab", "ab inbev", "acme", "acme labs", "acmecorp", "acmecorp group"]
    by_block = {k: sorted(r.name_key for r in rows) for g in groups for k, rows in g.items()}
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
    found = sorted(r.name_key for g in groups for rows in g.values() for r in rows)
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
