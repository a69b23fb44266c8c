"""exchange_rates: the CRMs' rates as the last tick read them

Reports (`report accounts`) convert open pipeline to the corporate currency with the same
rates attribution stamps with, without calling a CRM.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_rates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("corporate_currency", sa.String(length=3), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("corporate_per_unit", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.Column("read_at", schema.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_rates")),
        sa.UniqueConstraint(
            "corporate_currency", "currency", "effective_from",
            name=op.f("uq_exchange_rates_corporate_currency_currency_effective_from")),
    )


def downgrade() -> None:
    op.drop_table("exchange_rates")
