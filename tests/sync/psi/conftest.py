"""Fixtures for private-matching tests: two installs ("Acme" and "Globex") with a known
intersection, on SQLite and (when ECOSYNC_TEST_DATABASE_URL is set) SQLite x PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from psi_world import ACME_ONLY, GLOBEX_ONLY, SHARE, Side, build

pytest.importorskip("private_set_intersection.python",
                    reason="private matching needs the psi extra: pip install '.[psi]'")

@pytest.fixture
def make_pair(databases: Any, tmp_path: Path) -> Any:
    def make(kind_a: str = "default", kind_b: str = "default",
             share_a: dict[str, str] | None = None,
             share_b: dict[str, str] | None = None) -> tuple[Side, Side]:
        acme = Side("Acme", databases.new(kind_a), tmp_path / "acme", "globex", "Globex",
                    dict(share_a or SHARE))
        globex = Side("Globex", databases.new(kind_b), tmp_path / "globex", "acme",
                      "Acme Corp", dict(share_b or SHARE))
        build(acme, ACME_ONLY)
        build(globex, GLOBEX_ONLY)
        return acme, globex

    return make
