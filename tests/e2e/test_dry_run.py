"""`--dry-run` changes nothing but the run log, and prints what a real run then writes.

Every table but `sync_runs` is dumped before and after the dry run and must be identical; the
real run that follows must write exactly the (record, field) pairs the dry run planned, so
the dry run saw the pull, the partner file import, matching and stamping a real run does.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from e2e_support import Env, make_env
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from schema.models import AttributionStamp, Base, Opportunity, SyncRun
from schema.owned_fields import BY_LOGICAL
from sync.cli import cli
from sync.logs import MASKER
from sync.tick import TickOptions, TickReport, run_tick


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table except the run log, in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name == SyncRun.__tablename__:
                continue
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
        out["alembic_version"] = [tuple(r) for r in
                                  conn.execute(text("SELECT * FROM alembic_version")).all()]
    return out


def planned_pairs(report: TickReport) -> set[tuple[str, str, str]]:
    out = set()
    for change in report.planned:
        for ch in change.changes:
            owned = BY_LOGICAL[ch.field]
            name = owned.salesforce if change.source == "salesforce" else owned.hubspot
            out.add((change.source, change.external_id, name))
    return out


def written_pairs(env: Env, marks: tuple[int, int]) -> set[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    if env.world.salesforce is not None:
        out |= {("salesforce", e.id, e.field)
                for e in env.world.salesforce.store.write_log[marks[0]:] if e.via != "sandbox"}
    if env.world.hubspot is not None:
        out |= {("hubspot", e.object_id, e.property)
                for e in env.world.hubspot.write_log[marks[1]:] if e.source == "api"}
    return out


def log_marks(env: Env) -> tuple[int, int]:
    sf, hs = env.world.salesforce, env.world.hubspot
    return (len(sf.store.write_log) if sf else 0, len(hs.write_log) if hs else 0)


def dry_then_real(env: Env, options: TickOptions) -> TickReport:
    before = dump(env.engine)
    marks = log_marks(env)
    dry = run_tick(env.engine, env.config, env.connectors,
                   options=TickOptions(dry_run=True, backfill=options.backfill,
                                       kind=options.kind))
    assert dry.status == "succeeded", dry.errors
    assert written_pairs(env, marks) == set(), "a dry run wrote to a CRM"
    assert dump(env.engine) == before, "a dry run changed the warehouse"
    with Session(env.engine) as s:
        run = s.get(SyncRun, dry.run_id)
        assert run is not None and run.dry_run and run.status == "succeeded"
    assert dry.planned
    real = run_tick(env.engine, env.config, env.connectors, options=options)
    assert real.status == "succeeded", real.errors
    assert written_pairs(env, marks) == planned_pairs(dry)
    return dry


def test_a_dry_backfill_keeps_nothing_and_plans_the_real_backfill(
    tmp_path: Path, warehouse: Engine
) -> None:
    for env in make_env(tmp_path, warehouse, accounts=120, opportunities=240):
        dry = dry_then_real(env, TickOptions(backfill=True, kind="backfill"))
        assert {c.source for c in dry.planned} == {"salesforce", "hubspot"}
        assert dry.counts.tick["stamped"] > 0  # stamps were made, seen by the plan, rolled back
        with Session(env.engine) as s:
            assert s.scalars(select(AttributionStamp)).first() is not None


@pytest.fixture
def hubspot_only(tmp_path: Path, warehouse: Engine) -> Iterator[Env]:
    yield from make_env(tmp_path, warehouse, salesforce=False, accounts=120,
                        opportunities=240)


def test_a_dry_tick_sees_crm_changes_a_partner_file_and_closes(
    hubspot_only: Env, tmp_path: Path
) -> None:
    env = hubspot_only
    hs = env.world.hubspot
    assert hs is not None
    run_tick(env.engine, env.config, env.connectors,
             options=TickOptions(backfill=True, kind="backfill"))
    partner = env.world.seed.partners[0]
    domains = [r["domain"] for r in env.world.seed.partner_rows[partner.id] if r.get("domain")]
    companies = [r.id for r in hs.records("companies")]
    hs.update("companies", companies[0], {"domain": domains[0]})  # a new overlap
    with Session(env.engine) as s:
        open_deal = s.scalars(select(Opportunity.external_id).where(
            Opportunity.source == "hubspot", Opportunity.status == "open")).first()
    assert open_deal is not None
    hs.close_deal(open_deal, won=True)  # a close to stamp
    path = env.world.partner_files[partner.id]
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh))
    with path.open("a", newline="", encoding="utf-8") as fh:  # a changed partner file
        row = {"external_id": "DRY-1", "name": "Dry Run Co", "domain": "dry-run-example.com",
               "population": "customer"}
        csv.writer(fh).writerow([row.get(col, "") for col in header])
    hs.clock.advance(2)  # the tick reads up to the portal's clock, in whole seconds
    dry = dry_then_real(env, TickOptions())
    assert dry.counts.tick["partner_files_imported"] == 1 and dry.counts.tick["stamped"] == 1
    assert ("hubspot", companies[0], "ecosystem_overlap_count") in planned_pairs(dry)
    assert any(c.external_id == open_deal for c in dry.planned)

    config = tmp_path / "ecosync.toml"
    config.write_text(env.world.config_toml(env.engine.url.render_as_string(False)))
    status = CliRunner().invoke(cli, ["--config", str(config), "status", "--format", "json"],
                                env=env.world.env())
    MASKER.add(env.world.env().values())
    assert status.exit_code == 0, status.output
    runs = {r["id"]: r for r in json.loads(status.output)["last_runs"]}
    assert runs[dry.run_id]["dry_run"] is True
    assert not any(r["dry_run"] for i, r in runs.items() if i != dry.run_id)
