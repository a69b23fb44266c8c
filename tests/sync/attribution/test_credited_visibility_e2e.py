"""A credited partner's visibility (DESIGN.md 5, issue 14.1), on the HubSpot sandbox through
the real tick: deals whose referring-partner property names a partner that hides prospects,
closed before any overlap with that partner was first seen. The written fields, `report
attribution` and `attribution explain` must all say the same thing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from sandbox.seed import SeedData, SeedPartner, hs_time, write_partner_csvs
from sandbox.world import World, running_world
from sync.attribution.periods import Quarter
from sync.cli import cli
from sync.config import Config
from sync.logs import MASKER
from sync.tick import TickOptions, run_tick
from sync.wiring import build_connectors

pytestmark = pytest.mark.slow

PARTNER = SeedPartner("p-northbeam", "Northbeam Consulting", "services",
                      {"customer": "names", "open_opportunity": "full", "prospect": "hidden"})
OTHER = SeedPartner("p-acme", "Acme Cloud", "technology",
                    {"customer": "full", "open_opportunity": "full", "prospect": "full"})
TODAY = datetime.now(UTC).date()
CLOSE = TODAY - timedelta(days=20)
# company id -> (domain, population in Northbeam's list or None when Northbeam lacks it)
COMPANIES = {
    "9100": ("customer-overlap.example", "customer"),  # overlap first seen after the close
    "9200": ("no-overlap.example", None),  # Northbeam never lists it: the referral is ours
    "9300": ("prospect-overlap.example", "prospect"),  # Northbeam hides its prospects
    "9400": ("later-overlap.example", None),  # listed as a customer only after the first run
}


def _deal(company: str) -> dict[str, object]:
    created = datetime.combine(CLOSE - timedelta(days=60), datetime.min.time(), tzinfo=UTC)
    return {"id": f"{company}1", "company_id": company, "properties": {
        "dealname": f"Deal of {company}", "dealstage": "closedwon", "pipeline": "default",
        "amount": "1000.00", "deal_currency_code": "USD",
        "closedate": f"{CLOSE.isoformat()}T00:00:00.000Z", "createdate": hs_time(created),
        "referring_partner": "northbeam consulting"}}


def _rows(listed: dict[str, str | None]) -> list[dict[str, str]]:
    return [{"external_id": f"NB-{cid}", "name": f"Company {cid}", "domain": domain,
             "website": "", "population": population, "owner_name": "Nora Beam",
             "owner_email": "nora@northbeam.example"}
            for cid, (domain, _) in COMPANIES.items()
            if (population := listed.get(cid)) is not None]


def _data() -> SeedData:
    companies = [{"id": cid, "properties": {"name": f"Company {cid}", "domain": domain,
                                            "website": f"https://{domain}/",
                                            "createdate": hs_time(datetime(2024, 1, 1,
                                                                           tzinfo=UTC))}}
                 for cid, (domain, _) in COMPANIES.items()]
    return SeedData(
        sf_accounts=[], sf_opportunities=[], hs_companies=companies,
        hs_deals=[_deal(cid) for cid in COMPANIES], partners=[PARTNER, OTHER],
        partner_rows={PARTNER.id: _rows({c: p for c, (_, p) in COMPANIES.items()}),
                      OTHER.id: []},
        truth=frozenset(), truth_population={}, truth_fuzzy=frozenset())


@pytest.fixture
def env(tmp_path: Path, warehouse: Engine,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, Config, Path]]:
    with running_world(tmp_path / "world", data=_data(), salesforce=False) as world:
        MASKER.add(world.env().values())
        for name, value in world.env().items():
            monkeypatch.setenv(name, value)
        url = warehouse.url.render_as_string(hide_password=False)
        path = tmp_path / "ecosync.toml"
        path.write_text(world.config_toml(url), encoding="utf-8")
        yield world, world.config(url), path


def _tick(world: World, config: Config, engine: Engine, **options: object) -> None:
    connectors = build_connectors(config)
    for connector in connectors:
        connector.ensure_fields(check_only=False)
    run_tick(engine, config, connectors, options=TickOptions(**options))  # type: ignore[arg-type]


def _fields(world: World, company: str) -> tuple[str | None, str | None, str | None]:
    assert world.hubspot is not None
    deal = world.hubspot.get("deals", f"{company}1")
    return (deal.get("sourcing_partner"), deal.get("partner_influenced"),
            deal.get("influencing_partners"))


def _cli(path: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--config", str(path), *args])
    assert result.exit_code == 0, result.output
    return result


def _explained_source(path: Path, company: str) -> str | None:
    data = json.loads(_cli(path, "attribution", "explain", f"hubspot:{company}1",
                           "--format", "json").stdout)
    return data["active"]["sourcing_partner"]


def _report_sourced(path: Path) -> dict[str, int]:
    data = json.loads(_cli(path, "report", "attribution", "--quarter",
                           Quarter.of(CLOSE).label, "--format", "json",
                           "--section", "partners").stdout)
    return {r["partner"]: r["sourced_deals"] for r in data["partners"]
            if r["period"] == Quarter.of(CLOSE).label}


def test_credited_partner_is_shown_at_its_overlap_level_everywhere(
    env: tuple[World, Config, Path], warehouse: Engine,
) -> None:
    world, config, path = env
    _tick(world, config, warehouse, backfill=True, kind="backfill")

    named = ("Northbeam Consulting", "true")
    # Overlap first seen after the close: shown at the current overlap (customer: names).
    assert _fields(world, "9100") == (*named, "Northbeam Consulting (customer)")
    # No overlap at all: our own referring field names it.
    assert _fields(world, "9200") == (*named, "Northbeam Consulting (referral)")
    # The current overlap is a prospect, which Northbeam hides: nothing is shown.
    # (partner_influenced false equals the never-written empty property: nothing to write)
    assert _fields(world, "9300") == (None, None, None)
    assert _fields(world, "9400") == (*named, "Northbeam Consulting (referral)")

    for company, shown in (("9100", True), ("9200", True), ("9300", False), ("9400", True)):
        assert _explained_source(path, company) == ("Northbeam Consulting" if shown else None)
    assert _report_sourced(path) == {"Northbeam Consulting": 3}
    explained = _cli(path, "attribution", "explain", "hubspot:92001").stdout
    assert "Northbeam Consulting (referral)" in explained
    hidden = _cli(path, "attribution", "explain", "hubspot:93001").stdout
    assert "Northbeam" not in hidden

    # Northbeam's list now has company 9400 as a prospect (hidden): the closed deal's fields
    # follow the account's current overlap on the next tick.
    rows = _rows({c: p for c, (_, p) in COMPANIES.items()} | {"9400": "prospect"})
    world.seed.partner_rows[PARTNER.id][:] = rows
    write_partner_csvs(world.seed, world.directory / "partners")
    _tick(world, config, warehouse)

    assert _fields(world, "9400") == (None, "false", None)
    assert _explained_source(path, "9400") is None
    assert _report_sourced(path) == {"Northbeam Consulting": 2}
    assert _fields(world, "9100") == (*named, "Northbeam Consulting (customer)")

    # Northbeam stops sharing its customers: a policy change applies to stamped deals too.
    quiet = [replace(p, share={**p.share, "customer": "hidden"}) if p.id == PARTNER.id else p
             for p in config.partners]
    _tick(world, replace(config, partners=quiet), warehouse)
    assert _fields(world, "9100") == (None, "false", None)
    assert _fields(world, "9200") == (*named, "Northbeam Consulting (referral)")

