"""opportunities.reopens_seen: observed reopens are part of the close key

A stamped opportunity seen open again, then closed again, is a new close (DESIGN.md 6) even
with the same outcome and close date; the count of reopens ecosync observed goes into the
close key, so only a retry of the same close is deduplicated.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reopens_seen", sa.Integer(),
                                      server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("opportunities", schema=None) as batch_op:
        batch_op.drop_column("reopens_seen")
