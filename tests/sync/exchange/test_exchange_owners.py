"""Our account owners in `share export` (issue 19 item 3): name and e-mail on rows shared in
full, nowhere else; the partner's `partners import` lands them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from exchange_world import NOW, build_side, company, side_config
from sqlalchemy import Engine, select, update

from schema.db import transaction
from schema.models import Account, CrmOwner, PartnerAccount
from sync.exchange.export import ExportResult, export_for_partner
from sync.exchange.importer import import_partner_file
from sync.partners.registry import sync_partners_from_config

POLICY = {"customer": "full", "open_opportunity": "names", "prospect": "counts"}
COMPANIES = [company(i, ("customer", "open_opportunity", "prospect")[i % 3]) for i in range(12)]


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _owned(engine: Engine) -> dict[str, tuple[str, str]]:
    """Each account owned by its own rep; company 003's rep has an address no import takes,
    company 006's owner was never described by the CRM. Returns domain -> (name, e-mail)."""
    build_side(engine, COMPANIES)
    reps: dict[str, tuple[str, str]] = {}
    with transaction(engine) as session:
        for i, c in enumerate(COMPANIES):
            owner_id = f"005REP{i:03d}"
            session.execute(update(Account).where(Account.domain_key == c.domain)
                            .values(owner_id=owner_id))
            if i == 6:
                continue
            email = "not an address" if i == 3 else f"rep{i:03d}@example-corp.test"
            session.add(CrmOwner(source="salesforce", owner_id=owner_id,
                                 name=f"Rep {i:03d}", email=email, updated_at=NOW))
            reps[c.domain] = (f"Rep {i:03d}", email)
    return reps


def _export(engine: Engine, out: Path) -> ExportResult:
    config = side_config(_url(engine), organisation="Example Corp", partner_id="p-them",
                         partner_name="Them Inc", outbound=POLICY)
    with transaction(engine) as session:
        return export_for_partner(session, config, "p-them", out, by="ops@example", now=NOW)


def test_owner_name_and_email_leave_only_on_rows_shared_in_full(
    warehouse: Engine, databases: Any, tmp_path: Path,
) -> None:
    reps = _owned(warehouse)
    result = _export(warehouse, tmp_path / "out")

    with result.rows_path.open(newline="", encoding="utf-8") as fh:
        rows = {r["domain"]: r for r in csv.DictReader(fh)}
    customers = [c for c in COMPANIES if c.population == "customer"]
    assert {c.domain for c in customers} <= set(rows)
    for c in customers:
        row = rows[c.domain]
        # 003: kept, without an owner the format cannot carry; 006: an owner nobody
        # described, left empty (never the CRM id).
        if c.domain in ("company003.com", "company006.com"):
            assert (row["owner_name"], row["owner_email"]) == ("", "")
        else:
            assert (row["owner_name"], row["owner_email"]) == reps[c.domain]
    assert result.left_out == 0
    written = result.rows_path.read_bytes()
    assert result.manifest_path is not None
    written += result.manifest_path.read_bytes()
    assert b"005REP" not in written  # CRM owner ids never leave
    for c in COMPANIES:
        if c.population != "customer" and c.domain in reps:
            name, email = reps[c.domain]
            assert name.encode() not in written and email.encode() not in written

    theirs: Engine = databases.new()
    config = side_config(_url(theirs), organisation="Them Inc", partner_id="p-us",
                         partner_name="Example Corp", outbound={"customer": "names"})
    with transaction(theirs) as session:
        sync_partners_from_config(session, config, now=NOW)
        import_partner_file(session, "p-us", result.manifest_path, now=NOW)
    with transaction(theirs) as session:
        landed = {r.domain_key: (r.owner_name, r.owner_email)
                  for r in session.scalars(select(PartnerAccount))}
    assert landed["company000.com"] == ("Rep 000", "rep000@example-corp.test")
    assert landed["company001.com"] == (None, None)  # an open opportunity, shared by name
