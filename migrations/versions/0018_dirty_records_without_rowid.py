"""dirty_records WITHOUT ROWID on SQLite: the queue is its primary key and nothing else

A rowid table keeps every queue row twice: once in the table's own b-tree (by rowid) and once
in the index behind the primary key (queue, kind, record_id). Every mark and every clear wrote
both. A full match takes a million rows off the queue: 3.2 s of deletes as a rowid table,
0.4 s as one b-tree clustered on the key (bench/matching.py's `dirty` stage). PostgreSQL has
no such option and is unchanged.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 11:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(*, with_rowid: bool) -> None:
    """Copy the queue into a new table of the wanted kind and put it in the old one's place
    (SQLite cannot convert a table in place). The migration's transaction makes it atomic."""
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        "dirty_records_new",
        sa.Column("queue", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("queue", "kind", "record_id", name=op.f("pk_dirty_records")),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(sa.text("INSERT INTO dirty_records_new (queue, kind, record_id) "
                       "SELECT queue, kind, record_id FROM dirty_records"))
    op.drop_table("dirty_records")
    op.rename_table("dirty_records_new", "dirty_records")


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
