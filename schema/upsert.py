"""Dialect-aware bulk upserts (INSERT … ON CONFLICT) for SQLite and PostgreSQL.

The statement is built once per call with SQLAlchemy; how the rows reach it is chosen per
engine, because a landing of 100k rows is bound by per-row overhead, not by SQL:

- SQLite: rows become positional tuples (`schema.binding`) and go through sqlite3's C-level
  executemany, many rows to a statement (`INSERT … VALUES (…), (…), …`), which spares
  SQLite most of its per-statement work.
- PostgreSQL: a chunk of at least `COPY_MIN_ROWS` rows is COPYed (binary) into a temporary staging
  table and merged with one `INSERT … SELECT … ON CONFLICT`; smaller chunks (a few write-back
  states, a partner registry) use psycopg's pipelined executemany, which has less setup.

Rows are streamed in bounded chunks, so a million-row landing never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from operator import itemgetter
from typing import Any, NoReturn
from uuid import uuid4

from sqlalchemy import Column, Connection, MetaData, Table, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session

from schema.binding import Binder

CHUNK_ROWS = 5_000
# PostgreSQL: below this many rows a staging table costs more than it saves.
COPY_MIN_ROWS = 1_000
# SQLite: rows per INSERT statement. Past ~64 the gain flattens; SQLite's own cap on bound
# parameters (32,766 by default) is respected for wide tables.
SQLITE_ROWS_PER_STATEMENT = 64
SQLITE_MAX_PARAMS = 32_766

Build = Callable[[Any], Any]


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
    flag raised only when a key column changed. When one batch carries the same key twice,
    the last row wins.
    """
    table = _table(target)
    conn = bind.connection() if isinstance(bind, Session) else bind
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"bulk_upsert supports sqlite and postgresql, not {dialect}")
    total = 0
    writer: _SqliteWriter | _PostgresWriter | None = None
    columns: list[str] = []
    for chunk in chunked(rows, chunk_rows):
        if writer is None:
            columns = _columns(table, chunk[0])
            conflict = _on_conflict(table, columns, conflict_columns, update_columns,
                                    only_if_changed, update_expressions)
            writer = (_SqliteWriter(conn, table, columns, conflict) if dialect == "sqlite"
                      else _PostgresWriter(conn, table, columns, conflict_columns, conflict))
        bad = next((row for row in chunk if len(row) != len(columns)), None)
        if bad is not None:
            raise ValueError(f"bulk_upsert rows must share keys {columns}, got {list(bad)}")
        writer.write(chunk)
        total += len(chunk)
    # On failure the staging table goes with the rollback (or at commit: ON COMMIT DROP).
    if writer is not None:
        writer.close()
    return total


def _columns(table: Table, row: Mapping[str, Any]) -> list[str]:
    """The row's keys in table order: the order SQLAlchemy compiles an INSERT's columns in."""
    unknown = [key for key in row if key not in table.c]
    if unknown:
        raise ValueError(f"bulk_upsert: {table.name} has no column(s) {unknown}")
    return [c.key for c in table.columns if c.key in row]


def _on_conflict(
    table: Table, columns: list[str], conflict_columns: Sequence[str],
    update_columns: Sequence[str] | None, only_if_changed: bool,
    update_expressions: Callable[[Table, Any], Mapping[str, Any]] | None,
) -> Build:
    """A function adding the ON CONFLICT clause to an INSERT of either dialect."""
    updates = ([c for c in columns if c not in conflict_columns]
               if update_columns is None else list(update_columns))

    def build(base: Any) -> Any:
        extra = dict(update_expressions(table, base.excluded)) if update_expressions else {}
        if not (updates or extra):
            return base.on_conflict_do_nothing(index_elements=list(conflict_columns))
        where = (
            or_(*(table.c[c].is_distinct_from(base.excluded[c]) for c in updates))
            if only_if_changed else None
        )
        return base.on_conflict_do_update(
            index_elements=list(conflict_columns),
            set_={**{c: base.excluded[c] for c in updates}, **extra},
            where=where,
        )

    return build


class _SqliteWriter:
    """Many rows per statement, executed with positional tuples by sqlite3's executemany."""

    def __init__(self, conn: Connection, table: Table, columns: list[str],
                 conflict: Build) -> None:
        self.conn, self.table, self.columns, self.conflict = conn, table, columns, conflict
        self.binder = Binder(conn.dialect, [table.c[c].type for c in columns], columns)
        self.per_statement = max(1, min(SQLITE_ROWS_PER_STATEMENT,
                                        SQLITE_MAX_PARAMS // (len(columns) + 8)))
        self._compiled: dict[int, tuple[str, tuple[Any, ...]]] = {}

    def _statement(self, nrows: int) -> tuple[str, tuple[Any, ...]]:
        """SQL for `nrows` rows and the processed values of its constant parameters."""
        if nrows in self._compiled:
            return self._compiled[nrows]
        width = len(self.columns)
        values = [{c: bindparam(f"r{k}c{i}", type_=self.table.c[c].type)
                   for i, c in enumerate(self.columns)} for k in range(nrows)]
        stmt = self.conflict(sqlite.insert(self.table).values(values))
        compiled = stmt.compile(dialect=self.conn.dialect)
        order = list(compiled.positiontup or [])
        expected = [f"r{k}c{i}" for k in range(nrows) for i in range(width)]
        if order[:len(expected)] != expected:  # the flat tuples below rely on this order
            raise RuntimeError("unexpected parameter order in the compiled SQLite upsert")
        constants = []
        for name in order[len(expected):]:
            param = compiled.binds[name]
            process = param.type.dialect_impl(self.conn.dialect).bind_processor(
                self.conn.dialect)
            value = param.effective_value
            constants.append(process(value) if process else value)
        self._compiled[nrows] = (compiled.string, tuple(constants))
        return self._compiled[nrows]

    def write(self, chunk: list[Mapping[str, Any]]) -> None:
        tuples = self.binder.tuples(chunk)
        step = self.per_statement
        full = len(tuples) - len(tuples) % step
        if full:
            sql, constants = self._statement(step)
            groups = [tuple(chain.from_iterable(tuples[i:i + step])) + constants
                      for i in range(0, full, step)]
            self.conn.exec_driver_sql(sql, groups)
        if full < len(tuples):
            sql, constants = self._statement(len(tuples) - full)
            self.conn.exec_driver_sql(
                sql, tuple(chain.from_iterable(tuples[full:])) + constants)

    def close(self) -> None:
        pass


class _PostgresWriter:
    """COPY into a temporary staging table, then one INSERT … SELECT … ON CONFLICT."""

    def __init__(self, conn: Connection, table: Table, columns: list[str],
                 conflict_columns: Sequence[str], conflict: Build) -> None:
        self.conn, self.table, self.columns = conn, table, columns
        self.plain = conflict(postgresql.insert(table))
        self.conflict = conflict
        self.key = itemgetter(*(columns.index(c) for c in conflict_columns))
        self.binder = Binder(conn.dialect, [table.c[c].type for c in columns], columns)
        self.stage: Table | None = None
        self.oids: list[int] = []
        self.merge: Any = None
        self.copy_sql = self.truncate_sql = ""

    def _open_stage(self) -> Table:
        quote = self.conn.dialect.identifier_preparer.quote
        name = f"ecosync_stage_{uuid4().hex[:12]}"
        target = self.conn.dialect.identifier_preparer.format_table(self.table)
        # Types only: constraints are the real table's business, checked by the merge.
        self.conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {quote(name)} ON COMMIT DROP AS "
            f"SELECT {', '.join(quote(c) for c in self.columns)} FROM {target} WITH NO DATA")
        stage = Table(name, MetaData(), *(Column(c, self.table.c[c].type)
                                          for c in self.columns))
        # Binary COPY: psycopg dumps each value by the column's type, no text formatting.
        self.oids = [oid for (oid,) in self.conn.exec_driver_sql(
            "SELECT atttypid::int FROM pg_attribute WHERE attrelid = %(stage)s::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", {"stage": quote(name)})]
        self.merge = self.conflict(postgresql.insert(self.table).from_select(
            self.columns, select(*stage.c)))
        self.copy_sql = (f"COPY {quote(name)} ({', '.join(quote(c) for c in self.columns)}) "
                         "FROM STDIN (FORMAT BINARY)")
        self.truncate_sql = f"TRUNCATE {quote(name)}"
        return stage

    def write(self, chunk: list[Mapping[str, Any]]) -> None:
        if len(chunk) < COPY_MIN_ROWS and self.stage is None:
            self.conn.execute(self.plain, chunk)
            return
        if self.stage is None:
            self.stage = self._open_stage()
        # One INSERT … SELECT may not touch a row twice: keep each key's last row.
        rows = list({self.key(t): t for t in self.binder.tuples(chunk)}.values())
        raw = self.conn.connection.driver_connection
        assert raw is not None
        try:
            with raw.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
                copy.set_types(self.oids)
                for row in rows:
                    copy.write_row(row)
        except self.conn.dialect.loaded_dbapi.Error as exc:
            self._raise(self.copy_sql, exc)
        self.conn.execute(self.merge)
        self.conn.exec_driver_sql(self.truncate_sql)

    def _raise(self, sql: str, exc: Any) -> NoReturn:
        """Surface a COPY failure as SQLAlchemy would surface a failed statement."""
        dbapi = self.conn.dialect.loaded_dbapi
        gone = self.conn.dialect.is_disconnect(exc, self.conn.connection.dbapi_connection,
                                               None)
        if gone:
            self.conn.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, dbapi.Error, connection_invalidated=gone,
                                  dialect=self.conn.dialect) from exc

    def close(self) -> None:
        if self.stage is not None:
            quote = self.conn.dialect.identifier_preparer.quote
            self.conn.exec_driver_sql(f"DROP TABLE {quote(self.stage.name)}")
            self.stage = None
