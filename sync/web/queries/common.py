"""The shape every view returns (facts and tables), paging and money to the cent, shared by
the query modules (open pipeline converts in sync.attribution.open_pipeline, as everywhere)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from schema.records import Population

POPULATIONS = tuple(p.value for p in Population)
OUR_LABELS = {"customer": "Our customers", "open_opportunity": "Our open opportunities",
              "prospect": "Our prospects"}
THEIR_LABELS = {"customer": "Their customers", "open_opportunity": "Their open opportunities",
                "prospect": "Their prospects"}
CENT = Decimal("0.01")


class UnknownPartner(LookupError):
    """The partner does not exist or is not shown by name (the same answer for both)."""


@dataclass(frozen=True)
class Col:
    key: str
    title: str
    numeric: bool = False
    link: str | None = None  # row key holding the URL this cell links to (pages only)
    # A code such as "open_opportunity" shown in words on the page ("open opportunity");
    # CSV and JSON keep the code.
    words: bool = False


@dataclass
class Table:
    name: str
    title: str
    columns: tuple[Col, ...]
    rows: list[dict[str, Any]]
    page: int = 1
    next_page: int | None = None
    note: str = ""

    def api_rows(self) -> list[dict[str, Any]]:
        """Rows as the API and CSV show them: every key not private to the page."""
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in self.rows]


@dataclass
class Chart:
    name: str
    title: str
    figure: dict[str, Any]  # plotly data + layout


@dataclass
class View:
    title: str
    facts: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)


@dataclass(frozen=True)
class Paging:
    page: int = 1
    size: int = 50

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def cut(self, rows: list[Any]) -> tuple[list[Any], int | None]:
        """Rows of this page (the query fetched size + 1) and the next page number."""
        if len(rows) > self.size:
            return rows[:self.size], self.page + 1
        return rows, None


def money(value: Decimal | float | int | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(CENT)
