"""sync_watermarks.deleted_swept_at: when deletions were last swept, per source and stream

HubSpot lists archived records only in full, so incremental pulls sweep the archive at most
every 15 minutes. Kept with the watermark, the last sweep's end lets a new process (each
`ecosync sync --once`) honour that cadence instead of sweeping again. Empty until the next
sweep: the first sweep after the upgrade emits every archived record, as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sync_watermarks",
                  sa.Column("deleted_swept_at", schema.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # SQLite (3.35+) and PostgreSQL both drop an unindexed column in place.
    op.drop_column("sync_watermarks", "deleted_swept_at")
