"""Fuzzy blocks read from the warehouse: every row of a wanted block exactly once."""

from __future__ import annotations

import pytest
from matching_world import World
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
                                      {"acme", "acmec", "ab"}, ranges=ranges))
    found = sorted(r.name_key for g in groups for rows in g.values() for r in rows)
    assert found == ["ab", "ab inbev", "acme", "acme labs", "acmecorp", "acmecorp group"]
    by_block = {k: sorted(r.name_key for r in rows) for g in groups for k, rows in g.items()}
    assert by_block["acmec"] == ["acmecorp", "acmecorp group"]
