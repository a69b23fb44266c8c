"""partner CRM sources: a partner's own Salesforce or HubSpot, read-only

Accounts and opportunities as last read from the partner's CRM, and a watermark per stream;
the partner's snapshot of partner accounts is derived from them (DESIGN.md 10).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = schema.types.UTCDateTime(timezone=True)


def _partner_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["partner_id"], ["partners.id"],
                                   name=op.f(f"fk_{table}_partner_id_partners"),
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "partner_crm_accounts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("website", sa.Text(), nullable=True),
        sa.Column("domain_key", sa.String(length=255), nullable=True),
        sa.Column("name_key", sa.String(length=255), nullable=True),
        sa.Column("duns", sa.String(length=16), nullable=True),
        sa.Column("account_type", sa.String(length=80), nullable=True),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("modified_at", _TIME, nullable=False),
        sa.Column("landed_at", _TIME, nullable=False),
        _partner_fk("partner_crm_accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_crm_accounts")),
        sa.UniqueConstraint("partner_id", "external_id",
                            name=op.f("uq_partner_crm_accounts_partner_id_external_id")),
    )
    op.create_table(
        "partner_crm_opportunities",
        sa.Column("id", _ID, nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("account_external_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("modified_at", _TIME, nullable=False),
        sa.Column("landed_at", _TIME, nullable=False),
        _partner_fk("partner_crm_opportunities"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_crm_opportunities")),
        sa.UniqueConstraint("partner_id", "external_id",
                            name=op.f("uq_partner_crm_opportunities_partner_id_external_id")),
    )
    with op.batch_alter_table("partner_crm_opportunities", schema=None) as batch_op:
        batch_op.create_index("ix_partner_crm_opportunities_account",
                              ["partner_id", "account_external_id"], unique=False)
    op.create_table(
        "partner_crm_watermarks",
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("modified_at", _TIME, nullable=True),
        sa.Column("last_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        _partner_fk("partner_crm_watermarks"),
        sa.PrimaryKeyConstraint("partner_id", "stream", name=op.f("pk_partner_crm_watermarks")),
    )


def downgrade() -> None:
    op.drop_table("partner_crm_watermarks")
    with op.batch_alter_table("partner_crm_opportunities", schema=None) as batch_op:
        batch_op.drop_index("ix_partner_crm_opportunities_account")
    op.drop_table("partner_crm_opportunities")
    op.drop_table("partner_crm_accounts")
