"""partial indexes: dirty flags, DUNS, partner names without a domain

Flag indexes held an entry for every row (mostly "false"), so every landing and every
clearing pass maintained them; now they hold only the flagged rows, keyed for the keyset
scans that read them. DUNS indexes skip the NULL majority. Fuzzy matching gets an index of
partner names lacking a domain.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 01:10:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _where(predicate: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(predicate), "postgresql_where": sa.text(predicate)}


def _where_flag(flag: str) -> dict[str, Any]:
    return {"sqlite_where": sa.text(f"{flag} = 1"), "postgresql_where": sa.text(flag)}


# (table, index, columns, old columns, predicate keywords)
CHANGED = [
    ("accounts", "ix_accounts_duns", ["duns"], ["duns"], _where("duns IS NOT NULL")),
    ("accounts", "ix_accounts_match_dirty", ["id"], ["match_dirty"], _where_flag("match_dirty")),
    ("accounts", "ix_accounts_fields_dirty", ["source", "id"], ["fields_dirty"],
     _where_flag("fields_dirty")),
    ("opportunities", "ix_opportunities_fields_dirty", ["source", "id"], ["fields_dirty"],
     _where_flag("fields_dirty")),
    ("partner_accounts", "ix_partner_accounts_duns", ["duns"], ["duns"],
     _where("duns IS NOT NULL")),
    ("partner_accounts", "ix_partner_accounts_match_dirty", ["id"], ["match_dirty"],
     _where_flag("match_dirty")),
]


def upgrade() -> None:
    for table, name, columns, _old, where in CHANGED:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, unique=False, **where)
    op.create_index("ix_partner_accounts_name_key_no_domain", "partner_accounts", ["name_key"],
                    unique=False, **_where("coalesce(domain_key, '') = ''"))


def downgrade() -> None:
    op.drop_index("ix_partner_accounts_name_key_no_domain", table_name="partner_accounts")
    for table, name, _columns, old, _where_kw in reversed(CHANGED):
        op.drop_index(name, table_name=table)
        op.create_index(name, table, old, unique=False)
