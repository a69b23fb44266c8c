"""partner_crm_watermarks.deleted_swept_at: a partner CRM's last sweep for deletions

As sync_watermarks.deleted_swept_at (0016), for partners whose list is their own CRM: a
partner's HubSpot archive is listed in full, and the connector is opened afresh each tick,
so without it every tick swept the archive instead of every 15 minutes.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("partner_crm_watermarks",
                  sa.Column("deleted_swept_at", schema.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # SQLite (3.35+) and PostgreSQL both drop an unindexed column in place.
    op.drop_column("partner_crm_watermarks", "deleted_swept_at")
