"""Builders for attribution tests: warehouse rows made directly, no CRM, no matching."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from schema.models import (
    Account,
    AttributionCredit,
    AttributionStamp,
    Opportunity,
    Overlap,
    Partner,
)
from sync import dirty
from sync.attribution.stamp import StampStats, stamp_closed
from sync.config import AttributionConfig
from sync.dirty import Kind, Queue

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FULL = {"customer": "full", "open_opportunity": "full", "prospect": "full"}
SOURCE = "salesforce"


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


class World:
    """A warehouse plus small builders; every builder commits its rows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def partner(self, pid: str, name: str | None = None,
                share: dict[str, str] | None = None) -> str:
        with Session(self.engine) as s, s.begin():
            s.add(Partner(id=pid, name=name or pid.title(), kind="technology",
                          source_kind="manual", share=share or dict(FULL),
                          created_at=T0, updated_at=T0))
        return pid

    def account(self, ext: str, *, account_type: str | None = None) -> int:
        with Session(self.engine) as s, s.begin():
            acc = Account(source=SOURCE, external_id=ext, name=ext, account_type=account_type,
                          modified_at=T0, ingested_at=T0)
            s.add(acc)
            s.flush()
            return acc.id

    def overlap(self, account_id: int, partner_id: str, *, first: datetime,
                ended: datetime | None = None, population: str = "customer") -> int:
        with Session(self.engine) as s, s.begin():
            ov = Overlap(account_id=account_id, partner_id=partner_id, method="domain",
                         population=population, first_seen_at=first,
                         last_seen_at=ended or first, ended_at=ended)
            s.add(ov)
            s.flush()
            return ov.id

    def opportunity(self, ext: str, account_ext: str | None, *, status: str = "won",
                    amount: Decimal | str | None = "1000.00", currency: str | None = "USD",
                    created: datetime | None = None, close: date | None = None,
                    lead_source: str | None = None, referring: str | None = None) -> int:
        with Session(self.engine) as s, s.begin():
            opp = Opportunity(
                source=SOURCE, external_id=ext, account_external_id=account_ext, name=ext,
                status=status, amount=None if amount is None else Decimal(amount),
                currency=currency, created_at=created or T0,
                close_date=close if close is not None else (day(30).date()
                                                            if status != "open" else None),
                lead_source=lead_source, referring_partner=referring, modified_at=T0,
                ingested_at=T0)
            s.add(opp)
            s.flush()
            dirty.mark(s, Queue.PLAN, Kind.OPPORTUNITY, [opp.id])
            return opp.id

    def update_opp(self, ext: str, **values: Any) -> None:
        with Session(self.engine) as s, s.begin():
            opp = s.scalars(select(Opportunity).where(Opportunity.external_id == ext)).one()
            for key, value in values.items():
                setattr(opp, key, value)
            dirty.mark(s, Queue.PLAN, Kind.OPPORTUNITY, [opp.id])

    def queued_for_plan(self, ext: str) -> bool:
        with Session(self.engine) as s:
            opp_id = s.scalars(select(Opportunity.id).where(Opportunity.external_id == ext)).one()
            return dirty.holds(s, Queue.PLAN, Kind.OPPORTUNITY, opp_id)

    def stamp(self, config: AttributionConfig | None = None, *, now: datetime | None = None,
              late: bool = False) -> StampStats:
        with Session(self.engine) as s, s.begin():
            return stamp_closed(s, config or AttributionConfig(), now=now or day(31),
                                late=late)

    def stamps(self, ext: str) -> list[AttributionStamp]:
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.scalars(
                select(AttributionStamp).join(Opportunity,
                                              Opportunity.id == AttributionStamp.opportunity_id)
                .where(Opportunity.external_id == ext).order_by(AttributionStamp.version)))

    def credits(self, stamp_id: int) -> dict[str, tuple[str, Decimal | None]]:
        with Session(self.engine) as s:
            return {c.partner_id: (c.kind, c.amount) for c in s.scalars(
                select(AttributionCredit).where(AttributionCredit.stamp_id == stamp_id))}

    def count_stamps(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(AttributionStamp)) or 0)

    def opp(self, ext: str) -> Opportunity:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.scalars(select(Opportunity).where(Opportunity.external_id == ext)).one()
