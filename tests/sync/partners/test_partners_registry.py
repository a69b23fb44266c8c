"""The partner registry: config partners upserted, CLI partners added, listing with counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from partner_support import NOW, write_csv
from sqlalchemy import Engine

from schema.db import transaction
from schema.models import Partner
from sync.config import parse_config
from sync.errors import UserError
from sync.partners import add_partner, import_partner_csv, list_partners, sync_partners_from_config


def test_config_partners_are_upserted(engine: Engine) -> None:
    config = parse_config({"partners": [
        {"id": "p-helios", "name": "Helios Data", "kind": "services",
         "share": {"prospect": "hidden"}},
    ]})
    with transaction(engine) as session:
        assert sync_partners_from_config(session, config, NOW) == 1
    renamed = parse_config({"partners": [
        {"id": "p-helios", "name": "Helios Data Inc", "kind": "channel",
         "share": {"customer": "counts"}},
    ]})
    with transaction(engine) as session:
        sync_partners_from_config(session, renamed, NOW)
        partner = session.get(Partner, "p-helios")
        assert partner is not None
        assert (partner.name, partner.kind, partner.source_kind) == ("Helios Data Inc",
                                                                     "channel", "csv")
        assert partner.share == {"customer": "counts", "open_opportunity": "full",
                                 "prospect": "full"}
        assert partner.created_at == NOW
    later = NOW.replace(hour=13)
    with transaction(engine) as session:
        sync_partners_from_config(session, renamed, later)  # no change: left alone
        partner = session.get(Partner, "p-helios")
        assert partner is not None
        assert partner.updated_at == NOW
        # A config sync never drops a partner added from the CLI.
        assert session.get(Partner, "p-acme") is not None


def test_add_partner_validates_and_refuses_duplicates(engine: Engine) -> None:
    with transaction(engine) as session:
        partner = add_partner(session, "p-kite", "Kite", kind="channel",
                              share={"prospect": "hidden"}, now=NOW)
        assert partner.share["prospect"] == "hidden"
        assert partner.share["customer"] == "full"
    cases: list[tuple[str, str, str, dict[str, str] | None, str]] = [
        ("p-kite", "Kite", "technology", None, "already exists"),
        ("bad id!", "Kite", "technology", None, "must be 1-64"),
        ("p-new", "Kite", "reseller", None, "kind 'reseller'"),
        ("p-new", "Kite", "technology", {"vip": "full"}, "'vip' is not a population"),
        ("p-new", "Kite", "technology", {"customer": "some"}, "'some' is not a sharing"),
        ("p-new", " ", "technology", None, "non-empty --name"),
    ]
    for partner_id, name, kind, share, match in cases:
        with transaction(engine) as session, pytest.raises(UserError, match=match):
            add_partner(session, partner_id, name, kind=kind, share=share)


def test_list_partners_counts_rows_by_population(engine: Engine, tmp_path: Path) -> None:
    rows = [["1", "A", "a.com", "customer", "", ""], ["2", "B", "b.com", "customer", "", ""],
            ["3", "C", "c.com", "prospect", "", ""]]
    with transaction(engine) as session:
        import_partner_csv(session, "p-acme", write_csv(tmp_path / "p.csv", rows), now=NOW)
        add_partner(session, "p-beta", "Beta", now=NOW)
    with transaction(engine) as session:
        summaries = list_partners(session)
    assert [s.id for s in summaries] == ["p-acme", "p-beta"]
    acme = summaries[0]
    assert acme.rows == 3
    assert acme.by_population == {"customer": 2, "open_opportunity": 0, "prospect": 1}
    assert acme.snapshot_version == 1
    assert acme.as_dict()["last_import_at"] == NOW.isoformat()
    assert summaries[1].rows == 0
