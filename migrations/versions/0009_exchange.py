"""exchange: share_exports (the share log) and partner_population_counts

`ecosync share export` records every export; a partner's exchange file that shares a
population as counts only stores its size (docs/exchange-format.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "partner_population_counts",
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("population", sa.String(length=20), nullable=False),
        sa.Column("accounts", sa.BigInteger(), nullable=False),
        sa.Column("as_of", schema.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("imported_at", schema.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"],
                                name=op.f("fk_partner_population_counts_partner_id_partners"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("partner_id", "population",
                                name=op.f("pk_partner_population_counts")),
    )
    op.create_table(
        "share_exports",
        sa.Column("id", _ID, nullable=False),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=True),
        sa.Column("exported_at", schema.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("exported_by", sa.String(length=120), nullable=False),
        sa.Column("organisation", sa.String(length=255), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("manifest_checksum", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"],
                                name=op.f("fk_share_exports_partner_id_partners"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_exports")),
    )
    with op.batch_alter_table("share_exports", schema=None) as batch_op:
        batch_op.create_index("ix_share_exports_partner", ["partner_id", "exported_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("share_exports", schema=None) as batch_op:
        batch_op.drop_index("ix_share_exports_partner")
    op.drop_table("share_exports")
    op.drop_table("partner_population_counts")
