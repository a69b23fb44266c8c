"""Stage a partner's rows in the database, so any size of list is validated and merged in
constant memory (issue 15.9).

A partner file streams record by record (`csv_read.iter_partner_csv`) into a temporary table
of good rows and one of problems, in chunks. What needs the whole file is then asked of the
database instead of a Python dict: a repeated external id (a problem), the `#n` suffix of a
repeated row key, and, in `csv_import`, the diff against the partner's current snapshot.

The tables are TEMPORARY: private to the connection, never seen by another process, gone with
the connection (and on PostgreSQL at the end of the transaction). `scratch_stage` gives the
same pipeline a throwaway SQLite file when there is no warehouse to stage in (`doctor`).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError

from schema.db import make_engine
from schema.records import Population
from sync.matching.keys import GENERIC_DOMAINS
from sync.partners.csv_read import (
    ParsedRow,
    ReadInfo,
    ReadResult,
    Record,
    RowProblem,
    base_row_key,
    iter_partner_csv,
)
from sync.progress import SILENT, Progress, counting

ROW_FIELDS = ("external_id", "name", "domain", "website", "domain_key", "name_key", "duns",
              "population", "owner_name", "owner_email")
CHUNK = 5_000
KEEP_PROBLEMS = 1_000  # problems kept in memory, first lines first; all are counted


@dataclass
class StagedRows:
    """Rows staged in the connection's temporary tables, with what is known of them."""

    rows: Table  # good rows: seq, line, row_key and the partner account fields
    problem_table: Table
    row_count: int = 0
    problem_count: int = 0  # problems, several per row possible
    invalid_rows: int = 0  # lines with at least one problem
    problems: list[RowProblem] = field(default_factory=list)  # the first `keep`, by line
    fingerprint: str = ""  # sha256 of the file's bytes (files only)
    columns: dict[str, str] = field(default_factory=dict)  # logical field -> header (files)

    def iter_rows(self, conn: Connection) -> Iterator[ParsedRow]:
        """The good rows in file order, streamed from the stage."""
        t = self.rows
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(
            select(t.c.line, *(t.c[f] for f in ROW_FIELDS)).order_by(t.c.seq))
        for r in result:
            yield ParsedRow(r.line, r.external_id, r.name, r.domain, r.website,
                            Population(r.population), r.owner_name, r.owner_email, r.duns,
                            r.domain_key, r.name_key)


def _tables() -> tuple[Table, Table]:
    suffix = uuid.uuid4().hex[:12]
    metadata = MetaData()
    temporary: dict[str, Any] = {"prefixes": ["TEMPORARY"], "postgresql_on_commit": "DROP"}
    rows = Table(
        f"ecosync_stage_pa_{suffix}", metadata,
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("line", Integer), Column("row_key", String(255)),
        Column("external_id", String(255)), Column("name", Text), Column("domain", Text),
        Column("website", Text), Column("domain_key", String(255)),
        Column("name_key", String(255)), Column("duns", String(16)),
        Column("population", String(20)), Column("owner_name", String(255)),
        Column("owner_email", String(255)), **temporary)
    problems = Table(
        f"ecosync_stage_pp_{suffix}", metadata,
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("line", Integer), Column("col", Text), Column("message", Text), **temporary)
    return rows, problems


def _write(conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Append positional rows: COPY on PostgreSQL, one executemany on SQLite."""
    if not rows:
        return
    names = [c.name for c in table.columns]
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        quote = conn.dialect.identifier_preparer.quote
        sql = (f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
               "FROM STDIN")
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in names)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" VALUES ({marks})', list(rows))


def stage_records(conn: Connection, records: Iterable[Record], *,
                  info: ReadInfo | None = None,
                  keep: int | None = KEEP_PROBLEMS) -> StagedRows:
    """Stage parsed rows and problems, then apply the rules that need every row: a repeated
    external id is a problem of its later lines, and the n-th row of a repeated key gets the
    key `key#n`. `keep=None` keeps every problem in memory (small files only)."""
    rows_table, problem_table = _tables()
    rows_table.create(conn)
    problem_table.create(conn)
    staged = StagedRows(rows_table, problem_table)
    seq = problem_seq = 0
    it = iter(records)
    while chunk := list(islice(it, CHUNK)):
        good: list[tuple[Any, ...]] = []
        bad: list[tuple[Any, ...]] = []
        for record in chunk:
            if isinstance(record, RowProblem):
                problem_seq += 1
                bad.append((problem_seq, record.line, record.column, record.message))
                continue
            seq += 1
            good.append((seq, record.line, base_row_key(record), record.external_id,
                         record.name, record.domain, record.website, record.domain_key,
                         record.name_key, record.duns, record.population.value,
                         record.owner_name, record.owner_email))
        _write(conn, rows_table, good)
        _write(conn, problem_table, bad)
    _index(conn, rows_table, "row_key")
    _index(conn, rows_table, "external_id")
    # A file's header (read along with its records) names the id column in problems.
    id_column = info.columns.get("external_id") if info is not None else "external_id"
    _repeated_external_ids(conn, staged, id_column, problem_seq)
    _number_repeated_keys(conn, rows_table)
    if conn.dialect.name == "postgresql":
        # Autovacuum never analyzes temporary tables; the merge's plans need the row count.
        conn.exec_driver_sql(f'ANALYZE "{rows_table.name}"')
    staged.row_count = conn.execute(select(func.count()).select_from(rows_table)).scalar_one()
    p = problem_table
    staged.problem_count, staged.invalid_rows = conn.execute(
        select(func.count(), func.count(p.c.line.distinct()))).one()
    query = select(p.c.line, p.c.col, p.c.message).order_by(p.c.line, p.c.seq)
    if keep is not None:
        query = query.limit(keep)
    staged.problems = [RowProblem(line, col, message) for line, col, message
                       in conn.execute(query)]
    return staged


def stage_query(conn: Connection, rows: Select[Any]) -> StagedRows:
    """Stage rows selected in the warehouse itself (a partner CRM's accounts), with no trip
    through Python: `rows` gives (seq, line, row_key, *ROW_FIELDS) with unique row keys."""
    rows_table, problem_table = _tables()
    rows_table.create(conn)
    problem_table.create(conn)
    conn.execute(insert(rows_table).from_select([c.name for c in rows_table.columns], rows))
    _index(conn, rows_table, "row_key")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f'ANALYZE "{rows_table.name}"')
    staged = StagedRows(rows_table, problem_table)
    staged.row_count = conn.execute(select(func.count()).select_from(rows_table)).scalar_one()
    return staged


def _index(conn: Connection, table: Table, column: str) -> None:
    # Built after the load: one sort instead of an index update per inserted row.
    conn.exec_driver_sql(f'CREATE INDEX "ix_{table.name}_{column}" ON "{table.name}" '
                         f'("{column}")')


def _repeated_external_ids(conn: Connection, staged: StagedRows, column: str | None,
                           last_seq: int) -> None:
    t = staged.rows
    repeated = (select(t.c.external_id).where(t.c.external_id.is_not(None))
                .group_by(t.c.external_id).having(func.count() > 1))
    first = func.min(t.c.line).over(partition_by=t.c.external_id)
    later = (select(t.c.seq, t.c.line, first.label("first"))
             .where(t.c.external_id.in_(repeated)).subquery())
    lines = [(seq, line, first_line) for seq, line, first_line
             in conn.execute(select(later).where(later.c.line > later.c.first))]
    # Usually none; a file of repeats is bounded by the chunked writes below anyway.
    for start in range(0, len(lines), CHUNK):
        chunk = lines[start:start + CHUNK]
        _write(conn, staged.problem_table, [
            (last_seq + start + i + 1, line, column,
             f"the external id repeats line {first_line}; ids must be unique")
            for i, (_, line, first_line) in enumerate(chunk)])
        conn.execute(delete(t).where(t.c.seq.in_([seq for seq, _, _ in chunk])))


def _number_repeated_keys(conn: Connection, t: Table) -> None:
    """The n-th row (file order) of a repeated key becomes `key#n` (the first keeps `key`)."""
    repeated = select(t.c.row_key).group_by(t.c.row_key).having(func.count() > 1)
    ordinal = func.row_number().over(partition_by=t.c.row_key, order_by=t.c.seq)
    numbered = (select(t.c.seq, ordinal.label("n")).where(t.c.row_key.in_(repeated))
                .subquery())
    conn.execute(
        update(t).where(and_(t.c.seq == numbered.c.seq, numbered.c.n > 1))
        .values(row_key=t.c.row_key + "#" + func.cast(numbered.c.n, String))
    )


def drop_stage(conn: Connection, staged: StagedRows, *, failed: bool = False) -> None:
    """Drop the stage's tables. After a failure the transaction may be aborted (PostgreSQL,
    whose rollback drops them anyway): then the error in hand matters, not this one."""
    try:
        for table in (staged.rows, staged.problem_table):
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{table.name}"')
    except DBAPIError:
        if not failed:
            raise


@contextmanager
def staged_scope(conn: Connection, staged: StagedRows) -> Iterator[StagedRows]:
    """Use a stage, then drop it whatever happens."""
    try:
        yield staged
    except BaseException:
        drop_stage(conn, staged, failed=True)
        raise
    drop_stage(conn, staged)


def stage_file(conn: Connection, path: Path, *, encoding: str = "utf-8-sig",
               columns: Mapping[str, str] | None = None,
               generic: frozenset[str] = GENERIC_DOMAINS,
               keep: int | None = KEEP_PROBLEMS, progress: Progress = SILENT) -> StagedRows:
    """Stream a partner CSV through validation into the stage (see `stage_records`)."""
    info = ReadInfo()
    records = iter_partner_csv(path, encoding=encoding, columns=columns, generic=generic,
                               info=info)
    progress.start("read", path.name)
    staged = stage_records(conn, counting(records, progress, "read", path.name), info=info,
                           keep=keep)
    progress.done("read", path.name)
    staged.fingerprint, staged.columns = info.fingerprint, dict(info.columns)
    return staged


@contextmanager
def scratch_stage() -> Iterator[Connection]:
    """A connection to a private SQLite file that disappears afterwards: staging without a
    warehouse (`doctor`, `read_partner_csv`), in bounded memory like an import."""
    with tempfile.TemporaryDirectory(prefix="ecosync-stage-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'stage.db'}")
        try:
            with engine.begin() as conn:
                conn.execute(text("PRAGMA temp_store = FILE"))
                yield conn
        finally:
            engine.dispose()


@dataclass(frozen=True)
class FileCheck:
    """A partner file validated without importing it."""

    rows: int  # valid rows
    invalid_rows: int
    problems: list[RowProblem]  # the first ones, by line
    fingerprint: str


def check_partner_file(path: Path, *, encoding: str = "utf-8-sig",
                       columns: Mapping[str, str] | None = None,
                       generic: frozenset[str] = GENERIC_DOMAINS,
                       keep: int = KEEP_PROBLEMS) -> FileCheck:
    """Every rule of an import, in a scratch stage: `doctor` sees what the daemon would."""
    with scratch_stage() as conn:
        staged = stage_file(conn, path, encoding=encoding, columns=columns, generic=generic,
                            keep=keep)
        return FileCheck(staged.row_count, staged.invalid_rows, staged.problems,
                         staged.fingerprint)


def read_partner_csv(path: Path, *, encoding: str = "utf-8-sig",
                     columns: Mapping[str, str] | None = None,
                     generic: frozenset[str] = GENERIC_DOMAINS) -> ReadResult:
    """Every row and problem of a small file in memory (examples, tests). Imports and
    `doctor` stream instead (`sync.partners.staging`), whatever the file's size."""
    # Staging owns the rules that need the whole file (repeated ids and keys).
    with scratch_stage() as conn:
        staged = stage_file(conn, path, encoding=encoding, columns=columns, generic=generic,
                            keep=None)
        return ReadResult(list(staged.iter_rows(conn)), staged.problems, staged.fingerprint,
                          staged.columns)
