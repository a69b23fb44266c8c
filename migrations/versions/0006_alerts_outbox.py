"""alerts: the facts announced once, and the outbox delivered at least once (DESIGN.md 12)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_facts",
        sa.Column("event", sa.String(length=48), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("baseline", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("detected_at", schema.types.UTCDateTime(), nullable=False),
        sa.Column("run_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["sync_runs.id"],
                                name=op.f("fk_alert_facts_run_id_sync_runs")),
        sa.PrimaryKeyConstraint("event", "subject", name=op.f("pk_alert_facts")),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("alert_name", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=48), nullable=False),
        sa.Column("fact_key", sa.String(length=255), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", schema.types.UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", schema.types.UTCDateTime(), nullable=False),
        sa.Column("sent_at", schema.types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("run_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["sync_runs.id"],
                                name=op.f("fk_alert_events_run_id_sync_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        sa.UniqueConstraint("alert_name", "fact_key",
                            name=op.f("uq_alert_events_alert_name_fact_key")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_alert_events_idempotency_key")),
    )
    op.create_index("ix_alert_events_due", "alert_events", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_events_due", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("alert_facts")
