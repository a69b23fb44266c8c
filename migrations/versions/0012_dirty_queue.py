"""dirty_records: one queue of records to re-match or re-plan, instead of flag columns

`accounts.match_dirty`, `accounts.fields_dirty`, `opportunities.fields_dirty` and
`partner_accounts.match_dirty` become rows of `dirty_records` (queue, kind, record id), so
matching and planning insert and delete small queue rows instead of rewriting wide ones.
Raised flags are carried over as queue rows.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (queue, kind, table, flag column, flag index, its columns)
FLAGS = [
    ("match", "account", "accounts", "match_dirty", "ix_accounts_match_dirty", ["id"]),
    ("plan", "account", "accounts", "fields_dirty", "ix_accounts_fields_dirty", ["source", "id"]),
    ("plan", "opportunity", "opportunities", "fields_dirty", "ix_opportunities_fields_dirty",
     ["source", "id"]),
    ("match", "partner_account", "partner_accounts", "match_dirty",
     "ix_partner_accounts_match_dirty", ["id"]),
]


def _where_flag(flag: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(f"{flag} = 1"), "postgresql_where": sa.text(flag)}


def upgrade() -> None:
    op.create_table(
        "dirty_records",
        sa.Column("queue", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("queue", "kind", "record_id", name=op.f("pk_dirty_records")),
    )
    for queue, kind, table, flag, _index, _columns in FLAGS:
        op.execute(sa.text(
            f"INSERT INTO dirty_records (queue, kind, record_id) "  # noqa: S608 - constants
            f"SELECT '{queue}', '{kind}', id FROM {table} WHERE {flag}"))
    for _queue, _kind, table, _flag, index, _columns in FLAGS:
        op.drop_index(index, table_name=table)
    # One rebuild per table on SQLite (batch mode copies the table).
    for table in dict.fromkeys(t for *_head, t, _f, _i, _c in FLAGS):
        with op.batch_alter_table(table) as batch:
            for flag in dict.fromkeys(f for _q, _k, t, f, _i, _c in FLAGS if t == table):
                batch.drop_column(flag)


def downgrade() -> None:
    for table in dict.fromkeys(t for *_head, t, _f, _i, _c in FLAGS):
        with op.batch_alter_table(table) as batch:
            for flag in dict.fromkeys(f for _q, _k, t, f, _i, _c in FLAGS if t == table):
                batch.add_column(sa.Column(flag, sa.Boolean(), server_default=sa.false(),
                                           nullable=False))
    for queue, kind, table, flag, index, columns in reversed(FLAGS):
        op.execute(sa.text(
            f"UPDATE {table} SET {flag} = true WHERE id IN "  # noqa: S608 - constants
            f"(SELECT record_id FROM dirty_records WHERE queue = '{queue}' AND kind = '{kind}')"))
        op.create_index(index, table, columns, unique=False, **_where_flag(flag))
    op.drop_table("dirty_records")
