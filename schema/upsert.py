"""Dialect-aware bulk upserts (INSERT … ON CONFLICT) for SQLite and PostgreSQL.

One statement is compiled per call and executed with many parameter sets: sqlite3's C-level
executemany on SQLite, SQLAlchemy's batched "insertmanyvalues" on psycopg 3. Rows are
streamed in bounded chunks, so a million-row landing never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session

CHUNK_ROWS = 5_000


def _table(target: Table | type[DeclarativeBase]) -> Table:
    table = target if isinstance(target, Table) else target.__table__
    assert isinstance(table, Table)
    return table


def chunked(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def bulk_upsert(
    bind: Connection | Session,
    target: Table | type[DeclarativeBase],
    rows: Iterable[Mapping[str, Any]],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str] | None = None,
    *,
    only_if_changed: bool = False,
    update_expressions: Callable[[Table, Any], Mapping[str, Any]] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Insert rows, updating `update_columns` on conflict; returns the number of rows sent.

    Every row must carry the same keys. `update_columns=None` updates every column present
    except the conflict keys; an empty sequence means insert-or-ignore. With
    `only_if_changed`, a conflicting row whose update columns are all equal is left alone
    (no dead tuples on PostgreSQL, no needless page writes on SQLite).
    `update_expressions(table, excluded)` adds SQL expressions to the SET clause, e.g. a
    flag raised only when a key column changed.
    """
    table = _table(target)
    conn = bind.connection() if isinstance(bind, Session) else bind
    dialect = conn.dialect.name
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise NotImplementedError(f"bulk_upsert supports sqlite and postgresql, not {dialect}")
    total = 0
    stmt: Any = None
    columns: list[str] = []
    for chunk in chunked(rows, chunk_rows):
        if stmt is None:
            columns = list(chunk[0].keys())
            base = insert(table)
            updates = (
                [c for c in columns if c not in conflict_columns]
                if update_columns is None else list(update_columns)
            )
            extra = dict(update_expressions(table, base.excluded)) if update_expressions else {}
            if updates or extra:
                where = (
                    or_(*(table.c[c].is_distinct_from(base.excluded[c]) for c in updates))
                    if only_if_changed else None
                )
                stmt = base.on_conflict_do_update(
                    index_elements=list(conflict_columns),
                    set_={**{c: base.excluded[c] for c in updates}, **extra},
                    where=where,
                )
            else:
                stmt = base.on_conflict_do_nothing(index_elements=list(conflict_columns))
        for row in chunk:
            if len(row) != len(columns):
                raise ValueError(f"bulk_upsert rows must share keys {columns}, got {list(row)}")
        conn.execute(stmt, chunk)
        total += len(chunk)
    return total
