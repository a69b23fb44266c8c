"""crm_owners: the name and e-mail of the CRM users who own our accounts

Salesforce `Owner.Name` / `Owner.Email` read with the account query, HubSpot's owners API;
keyed like `accounts.owner_id` (source, owner id). Exchange exports and private matching send
them for populations shared in full; the web view shows the names. Filled as accounts are
read: a backfill fills them for accounts not modified since the upgrade.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crm_owners",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("updated_at", schema.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "owner_id", name=op.f("pk_crm_owners")),
    )


def downgrade() -> None:
    op.drop_table("crm_owners")
