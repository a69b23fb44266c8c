"""attribution_credits.population: the population at close, from each stamp's evidence

The population a credited partner is shown under is decided by sharing; with it in a column,
revenue per partner and per quarter aggregate in SQL (the web view) instead of loading every
stamp's evidence. Existing credits are filled from the evidence they were stamped with.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 1000


def upgrade() -> None:
    with op.batch_alter_table("attribution_credits") as batch:
        batch.add_column(sa.Column("population", sa.String(length=20), nullable=True))
    fill(op.get_bind())


def fill(conn: sa.Connection) -> None:
    """Each credit's population from its stamp's evidence (`partners` entries)."""
    stamps = sa.table("attribution_stamps", sa.column("id", sa.Integer()),
                      sa.column("evidence", sa.JSON()))
    credits = sa.table("attribution_credits", sa.column("stamp_id", sa.Integer()),
                       sa.column("partner_id", sa.String()), sa.column("population", sa.String()))
    update = (sa.update(credits)
              .where(credits.c.stamp_id == sa.bindparam("b_stamp"),
                     credits.c.partner_id == sa.bindparam("b_partner"))
              .values(population=sa.bindparam("b_population")))
    after = 0
    while True:
        rows = conn.execute(sa.select(stamps.c.id, stamps.c.evidence)
                            .where(stamps.c.id > after).order_by(stamps.c.id)
                            .limit(CHUNK)).all()
        if not rows:
            break
        after = rows[-1][0]
        params = [{"b_stamp": sid, "b_partner": p["partner_id"],
                   "b_population": p["population"]}
                  for sid, evidence in rows for p in (evidence or {}).get("partners", [])
                  if p.get("population") is not None]
        if params:
            conn.execute(update, params)


def downgrade() -> None:
    with op.batch_alter_table("attribution_credits") as batch:
        batch.drop_column("population")
