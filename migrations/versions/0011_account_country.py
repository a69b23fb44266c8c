"""accounts.country: the billing country as the CRM holds it

Salesforce `Account.BillingCountry`, HubSpot company `country`; the web view's Accounts page
filters on it (issue 18), hence the index. Existing rows get it on their next re-read.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("country", sa.String(length=80), nullable=True))
    op.create_index(op.f("ix_accounts_country"), "accounts", ["country"], unique=False)


def downgrade() -> None:
    # Not batch mode: on SQLite that rebuilds `accounts`, which the tables referencing it
    # refuse; SQLite (3.35+) and PostgreSQL both drop an unindexed column in place.
    op.drop_index(op.f("ix_accounts_country"), table_name="accounts")
    op.drop_column("accounts", "country")
