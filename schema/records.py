"""Normalized record types that connectors emit and the warehouse stores.

Connectors turn raw CRM payloads into these; nothing downstream sees a raw payload.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

EMPTY: Mapping[str, str | None] = MappingProxyType({})


class Stream(StrEnum):
    ACCOUNTS = "accounts"
    OPPORTUNITIES = "opportunities"


class Population(StrEnum):
    CUSTOMER = "customer"
    OPEN_OPPORTUNITY = "open_opportunity"
    PROSPECT = "prospect"


# Strongest first: an account matching several rows of one partner keeps the strongest.
POPULATION_RANK: Mapping[Population, int] = MappingProxyType(
    {Population.CUSTOMER: 0, Population.OPEN_OPPORTUNITY: 1, Population.PROSPECT: 2}
)


class OpportunityStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One of our accounts (Salesforce Account, HubSpot company)."""

    source: str
    external_id: str
    modified_at: datetime
    name: str | None = None
    website: str | None = None
    owner_id: str | None = None
    account_type: str | None = None
    duns: str | None = None
    created_at: datetime | None = None
    is_deleted: bool = False
    # The billing country as the CRM holds it (Salesforce BillingCountry, HubSpot country).
    country: str | None = None
    # The owner's name and e-mail as the CRM knows them (Salesforce Owner.Name / Owner.Email,
    # HubSpot's owners API); None when the CRM would not say. Personal data: see sync.owners.
    owner_name: str | None = None
    owner_email: str | None = None
    # Values of the ecosync-owned fields as read from the CRM, by logical field name.
    owned: Mapping[str, str | None] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class OpportunityRecord:
    """One of our opportunities (Salesforce Opportunity, HubSpot deal)."""

    source: str
    external_id: str
    modified_at: datetime
    account_external_id: str | None = None
    name: str | None = None
    stage: str | None = None
    status: OpportunityStatus = OpportunityStatus.OPEN
    amount: Decimal | None = None
    currency: str | None = None
    close_date: date | None = None
    created_at: datetime | None = None
    lead_source: str | None = None
    referring_partner: str | None = None
    is_deleted: bool = False
    owned: Mapping[str, str | None] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True, slots=True)
class PartnerAccountRecord:
    """A row a partner shared with us (CSV line or a record of the partner's CRM)."""

    partner_id: str
    name: str | None
    domain: str | None
    population: Population
    external_id: str | None = None
    website: str | None = None
    owner_name: str | None = None
    owner_email: str | None = None
    duns: str | None = None
