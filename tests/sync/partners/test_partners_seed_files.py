"""The sandbox's partner CSVs import cleanly, with the keys the ground truth expects."""

from __future__ import annotations

from pathlib import Path

from partner_support import NOW
from sqlalchemy import Engine, func, select

from sandbox.seed import generate, write_partner_csvs
from schema.db import make_engine, transaction
from schema.models import Base, PartnerAccount
from sync.partners import add_partner, import_partner_csv


def _engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'seed.db'}")
    Base.metadata.create_all(engine)
    return engine


def test_seed_partner_files_import_without_problems(tmp_path: Path) -> None:
    data = generate(seed=5, accounts=2000, opportunities=0, partners=4)
    paths = write_partner_csvs(data, tmp_path / "csv")
    engine = _engine(tmp_path)
    with transaction(engine) as session:
        for partner in data.partners:
            add_partner(session, partner.id, partner.name, kind=partner.kind,
                        share=partner.share, now=NOW)
    for partner in data.partners:
        with transaction(engine) as session:
            result = import_partner_csv(session, partner.id, paths[partner.id], now=NOW)
        assert result.skipped == []
        assert result.added == result.rows == len(data.partner_rows[partner.id])
    with transaction(engine) as session:
        total = session.scalar(select(func.count()).select_from(PartnerAccount))
        with_domain = session.scalar(select(func.count()).select_from(PartnerAccount)
                                     .where(PartnerAccount.domain_key.is_not(None)))
    assert total == sum(len(rows) for rows in data.partner_rows.values())
    assert with_domain is not None
    assert total is not None
    assert 0.6 * total < with_domain < total
