"""Builders for matching, sharing and report tests: a warehouse with accounts and partners.

Tables come from `Base.metadata.create_all` (on SQLite, or in a fresh PostgreSQL database when
ECOSYNC_TEST_DATABASE_URL is set), so these tests do not depend on the migrations.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from schema.models import Account, Opportunity, Overlap, Partner, PartnerAccount
from sync import dirty
from sync.config import MatchingConfig
from sync.dirty import Kind, Queue
from sync.matching.engine import rematch
from sync.matching.keys import normalize_duns, normalize_name, registrable_domain
from sync.matching.stats import MatchStats

PG_ENV = "ECOSYNC_TEST_DATABASE_URL"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
FULL = {"customer": "full", "open_opportunity": "full", "prospect": "full"}


def pg_url() -> str | None:
    return os.environ.get(PG_ENV, "").strip() or None


ENGINES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.skipif(
        pg_url() is None,
        reason=f"PostgreSQL variant: set {PG_ENV}=postgresql+psycopg://postgres@127.0.0.1/test")),
]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, databases: Any) -> Engine:
    """An empty warehouse (tables from the models) on SQLite, and on PostgreSQL when set."""
    new: Engine = databases.new(str(request.param), models=True)
    return new


class World:
    """Given-style builders over one warehouse; every write commits."""

    def __init__(self, engine: Engine, config: MatchingConfig | None = None) -> None:
        self.engine = engine
        self.config = config or MatchingConfig()
        self.now = T0
        self._account_ids: dict[str, int] = {}

    def tick(self, minutes: int = 10) -> datetime:
        self.now = self.now + timedelta(minutes=minutes)
        return self.now

    def partner(self, pid: str, name: str | None = None, share: dict[str, str] | None = None,
                kind: str = "technology") -> str:
        with Session(self.engine) as s, s.begin():
            s.add(Partner(id=pid, name=name or pid.title(), kind=kind, source_kind="csv",
                          share=share or dict(FULL), created_at=self.now, updated_at=self.now))
        return pid

    def account(self, external_id: str, name: str | None = None, website: str | None = None,
                *, duns: str | None = None, source: str = "salesforce",
                deleted: bool = False) -> int:
        values: dict[str, Any] = {
            "name": name, "website": website, "domain_key": registrable_domain(website),
            "name_key": normalize_name(name), "duns": normalize_duns(duns),
            "is_deleted": deleted, "modified_at": self.now,
            "ingested_at": self.now,
        }
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(Account).where(Account.source == source,
                                                 Account.external_id == external_id))
            if row is None:
                row = Account(source=source, external_id=external_id, **values)
                s.add(row)
            else:
                for key, value in values.items():
                    setattr(row, key, value)
            s.flush()
            dirty.mark(s, Queue.MATCH, Kind.ACCOUNT, [row.id])
            self._account_ids[external_id] = row.id
            return row.id

    def partner_account(self, partner_id: str, name: str | None = None,
                        domain: str | None = None, population: str = "customer", *,
                        duns: str | None = None, row_key: str | None = None,
                        owner_name: str | None = None, owner_email: str | None = None) -> int:
        key = row_key or registrable_domain(domain) or normalize_name(name) or uuid.uuid4().hex
        values: dict[str, Any] = {
            "name": name, "domain": domain, "domain_key": registrable_domain(domain),
            "name_key": normalize_name(name), "duns": normalize_duns(duns),
            "population": population, "owner_name": owner_name, "owner_email": owner_email,
            "imported_at": self.now, "updated_at": self.now,
        }
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(PartnerAccount).where(PartnerAccount.partner_id == partner_id,
                                                        PartnerAccount.row_key == key))
            if row is None:
                row = PartnerAccount(partner_id=partner_id, row_key=key, **values)
                s.add(row)
            else:
                for k, value in values.items():
                    setattr(row, k, value)
            s.flush()
            dirty.mark(s, Queue.MATCH, Kind.PARTNER_ACCOUNT, [row.id])
            return row.id

    def delete_partner_account(self, row_id: int) -> None:
        with Session(self.engine) as s, s.begin():
            overlapping = select(Overlap.account_id).where(Overlap.partner_account_id == row_id,
                                                           Overlap.ended_at.is_(None))
            dirty.mark(s, Queue.MATCH, Kind.ACCOUNT, overlapping)
            s.execute(PartnerAccount.__table__.delete().where(PartnerAccount.id == row_id))

    def opportunity(self, external_id: str, account_external_id: str, *, status: str = "open",
                    amount: str = "1000", source: str = "salesforce") -> None:
        with Session(self.engine) as s, s.begin():
            s.add(Opportunity(source=source, external_id=external_id,
                              account_external_id=account_external_id, status=status,
                              amount=Decimal(amount), currency="USD", modified_at=self.now,
                              ingested_at=self.now, name=external_id))

    def match(self, *, full: bool = False, config: MatchingConfig | None = None) -> MatchStats:
        with Session(self.engine) as s, s.begin():
            return rematch(s, config or self.config, now=self.tick(), full=full)

    def id_of(self, external_id: str) -> int:
        return self._account_ids[external_id]

    def overlaps(self, *, active: bool = True) -> dict[tuple[str, str], tuple[str, str]]:
        """{(account external id, partner id): (population, method)} of the overlaps."""
        with Session(self.engine) as s:
            stmt = (select(Account.external_id, Overlap.partner_id, Overlap.population,
                           Overlap.method)
                    .join(Account, Account.id == Overlap.account_id))
            if active:
                stmt = stmt.where(Overlap.ended_at.is_(None))
            return {(r[0], r[1]): (r[2], r[3]) for r in s.execute(stmt)}

    def overlap_rows(self) -> list[Overlap]:
        with Session(self.engine) as s:
            return list(s.scalars(select(Overlap).order_by(Overlap.id)))

    def flags(self, external_id: str) -> tuple[bool, bool]:
        """(queued for matching, queued for planning) of one account."""
        with Session(self.engine) as s:
            account_id = s.scalars(select(Account.id)
                                   .where(Account.external_id == external_id)).one()
            return (dirty.holds(s, Queue.MATCH, Kind.ACCOUNT, account_id),
                    dirty.holds(s, Queue.PLAN, Kind.ACCOUNT, account_id))

    def clear_fields_dirty(self) -> None:
        """The plan queue emptied, as a push leaves it."""
        with Session(self.engine) as s, s.begin():
            dirty.clear(s, Queue.PLAN, Kind.ACCOUNT, dirty.queued(Queue.PLAN, Kind.ACCOUNT))
            dirty.clear(s, Queue.PLAN, Kind.OPPORTUNITY,
                        dirty.queued(Queue.PLAN, Kind.OPPORTUNITY))
