"""Fixtures for private-matching tests: two installs ("Acme" and "Globex") with a known
intersection, on SQLite and (when ECOSYNC_TEST_DATABASE_URL is set) SQLite x PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from psi_world import Side

pytest.importorskip("private_set_intersection.python",
                    reason="private matching needs the psi extra: pip install '.[psi]'")

SHARE = {"customer": "full", "open_opportunity": "counts", "prospect": "names"}

# The known world. Keys both sides hold, by (Acme's population, Globex's population):
BOTH_CUSTOMERS = [f"https://www.shared-customer-{i}.com/about" for i in range(5)]
BOTH_PROSPECTS = ["shared-prospect-0.co.uk", "http://shared-prospect-1.io",
                  "münchen-shared.de"]
BOTH_OPEN = [f"shared-open-{i}.net" for i in range(4)]  # counts only, on both sides
# One company on both sides under different websites but the same DUNS number.
DUNS_A = ("acme-side-name.com", "12-345-6789")
DUNS_B = ("globex-side-name.com", "123456789")
ACME_ONLY = [f"acme-only-{i}.com" for i in range(12)] + ["zürich-acme-only.ch"]
GLOBEX_ONLY = [f"globex-only-{i}.org" for i in range(12)] + ["köln-globex-only.de"]


def build(side: Side, mine: list[str]) -> None:
    side.accounts("customer", [*BOTH_CUSTOMERS, DUNS_A[0] if side.org == "Acme"
                               else DUNS_B[0]],
                  duns=[None] * 5 + [DUNS_A[1] if side.org == "Acme" else DUNS_B[1]])
    side.accounts("prospect", BOTH_PROSPECTS)
    side.accounts("open_opportunity", BOTH_OPEN)
    side.accounts("prospect", mine[:6])
    side.accounts("customer", mine[6:9])
    side.accounts("open_opportunity", mine[9:])


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
