"""psi runs: private-matching runs on both sides, and the responder's one-use contact tags

Every private-matching run is recorded on the side that requested it and on the side that
answered it (DESIGN.md 11): messages with their checksums, set sizes, the shared levels and,
for the requester, the intersection counts. No secret key is ever stored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:38:28.292800
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import schema.types


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('psi_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=12), nullable=False),
    sa.Column('partner_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('populations', sa.JSON(), nullable=False),
    sa.Column('sizes', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('contacts', sa.Integer(), nullable=True),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=True),
    sa.Column('created_at', schema.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', schema.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_psi_runs_partner_id_partners'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psi_runs')),
    sa.UniqueConstraint('run_id', 'role', name=op.f('uq_psi_runs_run_id_role'))
    )
    with op.batch_alter_table('psi_runs', schema=None) as batch_op:
        batch_op.create_index('ix_psi_runs_created', ['created_at'], unique=False)

    op.create_table('psi_contact_tags',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.Column('population', sa.String(length=20), nullable=False),
    sa.Column('key_kind', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['run_pk'], ['psi_runs.id'], name=op.f('fk_psi_contact_tags_run_pk_psi_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psi_contact_tags')),
    sa.UniqueConstraint('run_pk', 'tag', name=op.f('uq_psi_contact_tags_run_pk_tag'))
    )


def downgrade() -> None:
    op.drop_table('psi_contact_tags')
    with op.batch_alter_table('psi_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_psi_runs_created')

    op.drop_table('psi_runs')
