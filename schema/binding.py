"""Rows as positional tuples of driver-ready values, for the bulk paths of `schema.upsert`.

SQLAlchemy's executemany processes every parameter of every row through its own machinery;
for a 100k-row landing that costs more than the database's work. Here each column's bind
processor is looked up once, applied column-wise, and applied once per distinct value for
types whose values repeat (a landing's timestamps and flags).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Boolean, Date, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from schema.types import UTCDateTime

# Hashable values that a batch tends to repeat: converted once per distinct value.
_REPEATING = (Boolean, Date, DateTime, UTCDateTime)
_SAMPLE = 64


class Binder:
    """Turns mappings into tuples in `columns` order, values processed for `dialect`."""

    def __init__(self, dialect: Dialect, types: Sequence[TypeEngine[Any]],
                 columns: Sequence[str]) -> None:
        names = list(columns)
        self.get: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],)))
        self.processors: list[tuple[int, Callable[[Any], Any], bool]] = []
        for index, type_ in enumerate(types):
            process = type_.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors.append((index, process, isinstance(type_, _REPEATING)))

    def tuples(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        values = list(map(self.get, rows))
        if not self.processors or not values:
            return values
        columns: list[Sequence[Any]] = list(zip(*values, strict=True))
        for index, process, repeating in self.processors:
            column = columns[index]
            # Memoize where a sample shows repeats (a batch's ingest time, its flags); a
            # column of distinct values (modified times) would only pay for the hashing.
            if repeating and len(set(column[:_SAMPLE])) * 2 <= min(len(column), _SAMPLE):
                converted = {value: process(value) for value in set(column)}
                columns[index] = list(map(converted.__getitem__, column))
            else:
                columns[index] = list(map(process, column))
        return list(zip(*columns, strict=True))
