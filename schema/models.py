"""The warehouse: SQLAlchemy 2.0 typed models (DESIGN.md section 3).

Every schema change comes with one Alembic revision in migrations/versions; a test compares
these models against the migrated database and fails on any drift.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from schema.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer ids autoincrement on SQLite (INTEGER PRIMARY KEY) and are BIGINT on PostgreSQL.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        date: Date(),
        Decimal: Numeric(18, 2),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        str: String(255),
    }


def _where(predicate: str) -> dict[str, Any]:
    """A partial index's predicate, the same on both engines."""
    return {"sqlite_where": text(predicate), "postgresql_where": text(predicate)}


class Account(Base):
    """One of our accounts, per CRM source (Salesforce Account, HubSpot company)."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_accounts_domain_key", "domain_key"),
        Index("ix_accounts_name_key", "name_key"),
        Index("ix_accounts_duns", "duns", **_where("duns IS NOT NULL")),
        Index("ix_accounts_country", "country"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    # Match keys computed at ingest (DESIGN.md 4), so matching is a plain indexed join.
    domain_key: Mapped[str | None]
    name_key: Mapped[str | None]
    duns: Mapped[str | None] = mapped_column(String(16))
    owner_id: Mapped[str | None] = mapped_column(String(64))
    account_type: Mapped[str | None] = mapped_column(String(80))
    # As the CRM holds it (80: Salesforce's BillingCountry length); the web filters on it.
    country: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime | None]
    modified_at: Mapped[datetime]
    is_deleted: Mapped[bool] = mapped_column(Boolean, server_default=false())
    deleted_at: Mapped[datetime | None]
    # Owned fields as last read from the CRM, by logical name: the diff's "value in the CRM".
    owned_values: Mapped[dict[str, Any] | None]
    ingested_at: Mapped[datetime]


class CrmOwner(Base):
    """The CRM user who owns our accounts: name and e-mail once per person (sync.owners).

    Kept apart from accounts: a person is one fact however many accounts they own, so a
    rename or a new e-mail seen on any of their accounts is right on all of them, and
    personal data sits in one row per person (one row to correct or erase).
    """

    __tablename__ = "crm_owners"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None]
    email: Mapped[str | None]
    updated_at: Mapped[datetime]


class Opportunity(Base):
    """One of our opportunities, per CRM source (Salesforce Opportunity, HubSpot deal)."""

    __tablename__ = "opportunities"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_opportunities_account", "source", "account_external_id"),
        Index("ix_opportunities_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    account_external_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(8))  # open / won / lost
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    close_date: Mapped[date | None]
    created_at: Mapped[datetime | None]
    lead_source: Mapped[str | None] = mapped_column(String(120))
    referring_partner: Mapped[str | None]
    modified_at: Mapped[datetime]
    is_deleted: Mapped[bool] = mapped_column(Boolean, server_default=false())
    deleted_at: Mapped[datetime | None]
    owned_values: Mapped[dict[str, Any] | None]
    # When ecosync first saw the current close; cleared on reopen (drives stamping).
    closed_seen_at: Mapped[datetime | None]
    # Reopens ecosync observed (a closed opportunity seen open again): part of the close key,
    # so a re-close after an observed reopen is a new close even on the same outcome and date.
    reopens_seen: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    ingested_at: Mapped[datetime]


class DirtyRecord(Base):
    """The dirty queue (sync.dirty): a record to re-match or to re-plan, until the stage that
    deals with it takes it off. Kept apart from the records' own rows, so raising or clearing
    a mark never rewrites an account or an opportunity."""

    __tablename__ = "dirty_records"
    # On SQLite one b-tree clustered on the key, not a rowid table plus the key's index: every
    # mark and clear writes once instead of twice (migration 0018).
    __table_args__ = ({"sqlite_with_rowid": False},)

    queue: Mapped[str] = mapped_column(String(8), primary_key=True)  # match / plan
    # account / opportunity / partner_account
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str]
    kind: Mapped[str] = mapped_column(String(16))  # technology / services / channel
    source_kind: Mapped[str] = mapped_column(String(16))  # csv / salesforce / hubspot / manual
    # Sharing level per population: full / names / counts / hidden (DESIGN.md 5).
    share: Mapped[dict[str, Any]]
    snapshot_version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    source_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # The watched file last refused (bad rows): the daemon says so once per version of the
    # file, not on every tick. Cleared by the next good import.
    rejected_fingerprint: Mapped[str | None] = mapped_column(String(64))
    last_import_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PartnerAccount(Base):
    """A row a partner shared with us, in the partner's current snapshot."""

    __tablename__ = "partner_accounts"
    __table_args__ = (
        UniqueConstraint("partner_id", "row_key"),
        Index("ix_partner_accounts_domain_key", "domain_key"),
        # Fuzzy matching reads partner names by block range, ids and names only: on
        # PostgreSQL the id rides in the index (INCLUDE), so the read never visits the table
        # (SQLite's index entries carry the rowid, the id, anyway). Migration 0019.
        Index("ix_partner_accounts_name_key", "name_key", postgresql_include=["id"]),
        # Fuzzy matching looks up partner rows without a domain by name range.
        Index("ix_partner_accounts_name_key_no_domain", "name_key",
              postgresql_include=["id"], **_where("coalesce(domain_key, '') = ''")),
        Index("ix_partner_accounts_duns", "duns", **_where("duns IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    # Stable identity inside one partner's list: external id, else domain key, else name key.
    row_key: Mapped[str]
    external_id: Mapped[str | None]
    name: Mapped[str | None] = mapped_column(Text)
    domain: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    domain_key: Mapped[str | None]
    name_key: Mapped[str | None]
    duns: Mapped[str | None] = mapped_column(String(16))
    population: Mapped[str] = mapped_column(String(20))
    owner_name: Mapped[str | None]
    owner_email: Mapped[str | None]
    imported_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PartnerPopulationCount(Base):
    """A partner population known by its size only: the partner's exchange file shares it at
    `counts` (docs/exchange-format.md), so it lands no rows. Replaced by each import."""

    __tablename__ = "partner_population_counts"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"),
                                            primary_key=True)
    population: Mapped[str] = mapped_column(String(20), primary_key=True)
    accounts: Mapped[int] = mapped_column(BigInteger)
    as_of: Mapped[datetime]  # when the partner generated the file
    imported_at: Mapped[datetime]


class PartnerCrmAccount(Base):
    """An account of a partner's own CRM (`source = "salesforce"|"hubspot"`), as last read,
    read-only: the partner's snapshot of partner accounts is derived from these rows and
    their opportunities (DESIGN.md 10). Deleted in the CRM: `is_deleted`."""

    __tablename__ = "partner_crm_accounts"
    __table_args__ = (UniqueConstraint("partner_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(Text)
    website: Mapped[str | None] = mapped_column(Text)
    domain_key: Mapped[str | None]
    name_key: Mapped[str | None]
    duns: Mapped[str | None] = mapped_column(String(16))
    account_type: Mapped[str | None] = mapped_column(String(80))
    is_deleted: Mapped[bool] = mapped_column(Boolean, server_default=false())
    modified_at: Mapped[datetime]
    landed_at: Mapped[datetime]


class PartnerCrmOpportunity(Base):
    """An opportunity of a partner's own CRM: only what decides its account's population."""

    __tablename__ = "partner_crm_opportunities"
    __table_args__ = (
        UniqueConstraint("partner_id", "external_id"),
        Index("ix_partner_crm_opportunities_account", "partner_id", "account_external_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    account_external_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))  # open / won / lost
    is_deleted: Mapped[bool] = mapped_column(Boolean, server_default=false())
    modified_at: Mapped[datetime]
    landed_at: Mapped[datetime]


class PartnerCrmWatermark(Base):
    """Per partner CRM and stream: everything up to (modified_at, last_id) is landed."""

    __tablename__ = "partner_crm_watermarks"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"),
                                            primary_key=True)
    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    modified_at: Mapped[datetime | None]
    last_id: Mapped[str | None] = mapped_column(String(64))
    # As sync_watermarks.deleted_swept_at: the end of the last complete sweep for deletions
    # (a partner's HubSpot archive), so that each tick's new connector keeps the cadence.
    deleted_swept_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class ShareExport(Base):
    """Every export of our accounts to a partner (`ecosync share export`): who, when, under
    which outbound policy, how many rows, and the checksum of the file sent."""

    __tablename__ = "share_exports"
    __table_args__ = (Index("ix_share_exports_partner", "partner_id", "exported_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(16))  # ecosync / plain
    schema_version: Mapped[int | None] = mapped_column(Integer)
    exported_at: Mapped[datetime]
    exported_by: Mapped[str] = mapped_column(String(120))
    organisation: Mapped[str]
    policy: Mapped[dict[str, Any]]  # population -> level, as applied
    counts: Mapped[dict[str, Any]]  # population -> accounts (rows, or the count shared)
    rows: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 of the rows file
    manifest_checksum: Mapped[str | None] = mapped_column(String(64))


class Overlap(Base):
    """One of our accounts matched to one partner. History is kept: ended rows stay."""

    __tablename__ = "overlaps"
    __table_args__ = (
        Index("ix_overlaps_account_partner", "account_id", "partner_id", "ended_at"),
        Index("ix_overlaps_partner", "partner_id", "ended_at"),
        # Active overlaps by partner and population, covering the account: the views'
        # counts per partner and population (matrix, partners) read this index alone.
        Index("ix_overlaps_active", "partner_id", "population", "account_id",
              **_where("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    partner_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("partner_accounts.id", ondelete="SET NULL")
    )
    method: Mapped[str] = mapped_column(String(16))  # domain / name / fuzzy / duns / pin
    score: Mapped[float | None] = mapped_column(Float)
    population: Mapped[str] = mapped_column(String(20))
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class MatchOverride(Base):
    """Manual pin/block of an account to a partner (or one partner account); audited."""

    __tablename__ = "match_overrides"
    __table_args__ = (Index("ix_match_overrides_account", "source", "account_external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    account_external_id: Mapped[str] = mapped_column(String(64))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    partner_row_key: Mapped[str | None]
    action: Mapped[str] = mapped_column(String(8))  # pin / block
    population: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(120))


class AttributionStamp(Base):
    """Append-only ledger: one row per stamp version of one close of one opportunity."""

    __tablename__ = "attribution_stamps"
    __table_args__ = (
        # Idempotency: a crash and a retry can never make two stamps for one close.
        UniqueConstraint("close_key", "version"),
        Index("ix_attribution_stamps_opportunity", "opportunity_id", "superseded_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id"))
    close_key: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("attribution_stamps.id"))
    superseded_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(8))  # won / lost
    close_date: Mapped[date | None]
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    corporate_amount: Mapped[Decimal | None]
    corporate_currency: Mapped[str | None] = mapped_column(String(3))
    exchange_rate: Mapped[Decimal | None] = mapped_column(Numeric(24, 12))
    sourcing_partner_id: Mapped[str | None] = mapped_column(String(64))
    sourced_rule: Mapped[str | None] = mapped_column(String(64))
    amount_model: Mapped[str] = mapped_column(String(32))
    rule_config_version: Mapped[str] = mapped_column(String(64))
    # Which overlaps, which rule, which values: "why was this partner credited?"
    evidence: Mapped[dict[str, Any]]
    stamped_late: Mapped[bool] = mapped_column(Boolean, server_default=false())
    reason: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    stamped_at: Mapped[datetime]


class AttributionCredit(Base):
    """One partner's credit inside one stamp (sourced or influenced, with its amount)."""

    __tablename__ = "attribution_credits"
    __table_args__ = (
        UniqueConstraint("stamp_id", "partner_id"),
        Index("ix_attribution_credits_partner", "partner_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    stamp_id: Mapped[int] = mapped_column(ForeignKey("attribution_stamps.id"))
    partner_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))  # sourced / influenced
    amount: Mapped[Decimal | None]
    corporate_amount: Mapped[Decimal | None]
    overlap_id: Mapped[int | None] = mapped_column(ForeignKey("overlaps.id"))
    # The partner's population at close, as the stamp's evidence records it (None: credited
    # by our CRM's field alone). A column so reports can apply sharing in SQL.
    population: Mapped[str | None] = mapped_column(String(20))


class Watermark(Base):
    """Per source and stream: everything up to (modified_at, last_id) is in the warehouse."""

    __tablename__ = "sync_watermarks"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    modified_at: Mapped[datetime | None]
    last_id: Mapped[str | None] = mapped_column(String(64))
    # Backfill checkpoint, so a killed backfill resumes instead of starting over.
    backfill_cursor: Mapped[str | None] = mapped_column(Text)
    backfill_completed_at: Mapped[datetime | None]
    # The end (CRM clock) of the last complete sweep for deleted records, for a CRM that
    # lists them only in full (HubSpot's archive, swept every 15 minutes): a new process
    # keeps the cadence and reads only what was deleted since.
    deleted_swept_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))


class WritebackState(Base):
    """The last value successfully written per record and owned field (the outbox's "old")."""

    __tablename__ = "writeback_state"
    __table_args__ = (UniqueConstraint("source", "stream", "external_id", "field"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    stream: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(Text)
    written_at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))


class ChangeLog(Base):
    """Every field ecosync wrote: run, record, field, old, new."""

    __tablename__ = "change_log"
    __table_args__ = (
        Index("ix_change_log_record", "source", "external_id"),
        Index("ix_change_log_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    source: Mapped[str] = mapped_column(String(32))
    stream: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    # The value read from the CRM just before, when it differed from old_value (a rep's edit).
    crm_value: Mapped[str | None] = mapped_column(Text)
    manual_edit: Mapped[bool] = mapped_column(Boolean, server_default=false())
    written_at: Mapped[datetime]


class WritebackError(Base):
    """Dead letter: a record whose write failed on its own, retried with backoff."""

    __tablename__ = "writeback_errors"
    __table_args__ = (
        UniqueConstraint("source", "stream", "external_id"),
        Index("ix_writeback_errors_status", "status", "next_retry_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    stream: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    error_code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    status: Mapped[str] = mapped_column(String(12))  # pending / skipped / resolved
    first_failed_at: Mapped[datetime]
    last_failed_at: Mapped[datetime]
    next_retry_at: Mapped[datetime | None]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))


class SyncRun(Base):
    """Audit of every run: kind, times, heartbeat, status, counts, API calls."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_started", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # tick / backfill / import / demo
    status: Mapped[str] = mapped_column(String(12))  # running / succeeded / failed / stale
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime]
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    dry_run: Mapped[bool] = mapped_column(Boolean, server_default=false())
    counts: Mapped[dict[str, Any] | None]
    api_calls: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)


class PsiRun(Base):
    """One private-matching run as this side saw it (DESIGN.md 11): every message sent or
    read, the set sizes learned and, for the requester, what the intersection held. Keys are
    never stored here."""

    __tablename__ = "psi_runs"
    __table_args__ = (
        UniqueConstraint("run_id", "role"),
        Index("ix_psi_runs_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(12))  # requester / responder
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(24))
    params: Mapped[dict[str, Any]]
    # Population of the responder -> the level it shared at (hidden populations absent).
    populations: Mapped[dict[str, Any]]
    sizes: Mapped[dict[str, Any]]  # set sizes, ours and theirs, per key kind
    result: Mapped[dict[str, Any] | None]  # requester: intersection per population and key
    contacts: Mapped[int | None] = mapped_column(Integer)
    messages: Mapped[list[Any]]  # kind, direction, bytes and SHA-256 of every message
    actor: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PsiContactTag(Base):
    """Responder side, populations shared in full: the contact tag of each element, so the
    partner can later ask for the owners of intersecting accounts only. Used once, then
    deleted with the answer."""

    __tablename__ = "psi_contact_tags"
    __table_args__ = (UniqueConstraint("run_pk", "tag"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("psi_runs.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(64))
    population: Mapped[str] = mapped_column(String(20))
    key_kind: Mapped[str] = mapped_column(String(8))
    key: Mapped[str]
class AlertFact(Base):
    """A fact an alert may announce (DESIGN.md 12), recorded once: (event, subject) such as a
    new overlap on an open opportunity (subject: the overlap id) or a stamped close (the close
    key). Recording it in the transaction that produced it is what makes a re-run never
    announce one fact twice. `baseline` rows are facts that existed when alerts were switched
    on: history, never announced."""

    __tablename__ = "alert_facts"

    event: Mapped[str] = mapped_column(String(48), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    baseline: Mapped[bool] = mapped_column(Boolean, server_default=false())
    detected_at: Mapped[datetime]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))


class AlertEvent(Base):
    """The alert outbox: one message for one alert about one fact, delivered at least once.

    UNIQUE(alert_name, fact_key): a fact is queued once per alert, whoever retries. The
    payload holds facts (ids, populations, amounts), never rendered text: the body is built
    at delivery through sync.sharing, under the partner's policy in force then."""

    __tablename__ = "alert_events"
    __table_args__ = (
        UniqueConstraint("alert_name", "fact_key"),
        Index("ix_alert_events_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_name: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(48))
    fact_key: Mapped[str]
    # Stable across retries (and re-runs): receivers deduplicate on it.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(12))  # pending / sent / failed / suppressed
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))


class ExchangeRate(Base):
    """A CRM's exchange rate as the last tick read it (DatedConversionRate / CurrencyType,
    HubSpot's exchange rates): reports convert open pipeline with the rates attribution uses,
    without calling a CRM. `effective_from` 0001-01-01 stands for an undated rate."""

    __tablename__ = "exchange_rates"
    __table_args__ = (UniqueConstraint("corporate_currency", "currency", "effective_from"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    corporate_currency: Mapped[str] = mapped_column(String(3))
    currency: Mapped[str] = mapped_column(String(3))
    effective_from: Mapped[date]
    corporate_per_unit: Mapped[Decimal] = mapped_column(Numeric(24, 12))
    read_at: Mapped[datetime]
