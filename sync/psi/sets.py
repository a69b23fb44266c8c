"""Which of our match keys take part in a private-matching run, streamed from the warehouse.

The keys are exactly the matcher's: the `domain_key` (registrable domain) and `duns` stored on
each account at ingest by `sync.matching.keys`, so a key found privately is a key the matcher
would have joined on. Our accounts' population comes from `sync.populations`, its one owner.

Each key is one element of the PSI of its kind, written `ecosync/1/<kind>:<key>`: the prefix
separates our elements from any other use of the same library on bare domains.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session

from schema.models import Account
from sync.populations import our_populations

BATCH = 10_000


class KeyKind(StrEnum):
    DOMAIN = "domain"
    DUNS = "duns"


KINDS = (KeyKind.DOMAIN, KeyKind.DUNS)
PREFIX = "ecosync/1/"


def element(kind: KeyKind | str, key: str) -> str:
    return f"{PREFIX}{kind}:{key}"


def key_of(element_text: str) -> str:
    return element_text.split(":", 1)[1]


def _column(kind: KeyKind | str) -> Any:
    return Account.domain_key if kind == KeyKind.DOMAIN else Account.duns


def _keys(kind: KeyKind | str, populations: Collection[str],
          named: Collection[str] = ()) -> Select[Any]:
    pops = our_populations().subquery("pops")
    col = _column(kind)
    flag = func.max(case((pops.c.population.in_(list(named) or [""]), 1), else_=0))
    return (
        select(col.label("key"), flag.label("named"))
        .join(pops, pops.c.account_id == Account.id)
        .where(and_(col.is_not(None), col != "", pops.c.population.in_(list(populations))))
        .group_by(col)
    )


def size(session: Session, kind: KeyKind | str, populations: Collection[str]) -> int:
    """Distinct keys of `kind` among our live accounts of `populations`."""
    if not populations:
        return 0
    inner = _keys(kind, populations).subquery()
    return int(session.execute(select(func.count()).select_from(inner)).scalar_one())


def keys(session: Session, kind: KeyKind | str, populations: Collection[str],
         named: Collection[str] = ()) -> Iterator[tuple[str, bool]]:
    """(element, named) for each distinct key of `kind` among our accounts of `populations`,
    in key order; `named` is true when an account holding it is in one of `named`."""
    if not populations:
        return
    query = _keys(kind, populations, named).order_by("key")
    for key, flag in session.execute(query, execution_options={"yield_per": BATCH}):
        yield element(kind, key), bool(flag)


def accounts_with(session: Session, kind: KeyKind | str, key: str,
                  population: str) -> list[int]:
    """Our live accounts of `population` holding `key`, most recently modified first."""
    pops = our_populations().subquery("pops")
    col = _column(kind)
    return list(session.scalars(
        select(Account.id).join(pops, pops.c.account_id == Account.id)
        .where(col == key, pops.c.population == population)
        .order_by(Account.modified_at.desc(), Account.id)))
