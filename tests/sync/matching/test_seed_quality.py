"""Matching quality on the sandbox seed's ground truth (issue 6, "Done when").

Domain + name matching: precision >= 0.99 and recall >= 0.98 against the truth without the
typo pairs; fuzzy matching adds recall on the full truth with precision >= 0.98.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from sandbox.seed import SeedData, generate
from schema.models import Account, Overlap, Partner, PartnerAccount
from sync import dirty
from sync.config import MatchingConfig
from sync.dirty import Kind, Queue
from sync.matching.engine import rematch
from sync.matching.keys import normalize_name, registrable_domain

NOW = datetime(2026, 1, 2, tzinfo=UTC)
POPULATIONS = {"customer": "customer", "open_opportunity": "open_opportunity",
               "open opportunity": "open_opportunity", "opportunity": "open_opportunity",
               "prospect": "prospect"}

Key = tuple[str, str, str]


@pytest.fixture(scope="module")
def seed() -> SeedData:
    return generate(seed=7, accounts=4000, opportunities=0, partners=4)


def _load(engine: Engine, data: SeedData) -> None:
    accounts = [("salesforce", a["Id"], a["Name"], a["Website"]) for a in data.sf_accounts]
    accounts += [("hubspot", c["id"], c["properties"]["name"],
                  c["properties"]["website"] or c["properties"]["domain"])
                 for c in data.hs_companies]
    with Session(engine) as s, s.begin():
        s.execute(insert(Account), [
            {"source": src, "external_id": ext, "name": name, "website": site,
             "domain_key": registrable_domain(site), "name_key": normalize_name(name),
             "modified_at": NOW, "ingested_at": NOW}
            for src, ext, name, site in accounts])
        for p in data.partners:
            s.add(Partner(id=p.id, name=p.name, kind=p.kind, source_kind="csv",
                          share=dict(p.share), created_at=NOW, updated_at=NOW))
        s.flush()
        for pid, rows in data.partner_rows.items():
            s.execute(insert(PartnerAccount), [
                {"partner_id": pid, "row_key": f"{pid}-{n}", "name": r["name"] or None,
                 "domain": r["domain"] or None, "website": r["website"] or None,
                 "domain_key": registrable_domain(r["domain"] or r["website"]),
                 "name_key": normalize_name(r["name"]),
                 "population": POPULATIONS[r["population"].strip().lower()],
                 "imported_at": NOW, "updated_at": NOW}
                for n, r in enumerate(rows)])
        dirty.mark(s, Queue.MATCH, Kind.ACCOUNT, select(Account.id))
        dirty.mark(s, Queue.MATCH, Kind.PARTNER_ACCOUNT, select(PartnerAccount.id))


def _predicted(engine: Engine, config: MatchingConfig) -> dict[Key, str]:
    with Session(engine) as s, s.begin():
        rematch(s, config, now=NOW, full=True)
    with Session(engine) as s:
        rows = s.execute(select(Account.source, Account.external_id, Overlap.partner_id,
                                Overlap.population)
                         .join(Account, Account.id == Overlap.account_id)
                         .where(Overlap.ended_at.is_(None)))
        return {(r[0], r[1], r[2]): r[3] for r in rows}


def _scores(predicted: set[Key], truth: frozenset[Key] | set[Key]) -> tuple[float, float]:
    hits = len(predicted & truth)
    return hits / max(len(predicted), 1), hits / max(len(truth), 1)


@pytest.fixture
def loaded(engine: Engine, seed: SeedData) -> Engine:
    _load(engine, seed)
    return engine


def test_domain_and_name_matching_precision_and_recall(loaded: Engine, seed: SeedData) -> None:
    predicted = _predicted(loaded, MatchingConfig(fuzzy=False))
    truth = set(seed.truth - seed.truth_fuzzy)
    assert len(truth) > 1000  # the seed exercises the rules at a meaningful size
    precision, recall = _scores(set(predicted), truth)
    assert precision >= 0.99, precision
    assert recall >= 0.98, recall
    correct_population = sum(predicted[k] == seed.truth_population[k]
                             for k in set(predicted) & truth)
    assert correct_population / len(set(predicted) & truth) >= 0.99


def test_fuzzy_matching_adds_recall_without_losing_precision(
    loaded: Engine, seed: SeedData
) -> None:
    exact = set(_predicted(loaded, MatchingConfig(fuzzy=False)))
    with_fuzzy = set(_predicted(loaded, MatchingConfig(fuzzy=True)))
    assert seed.truth_fuzzy, "the seed has typo pairs"
    _, recall_exact = _scores(exact, seed.truth)
    precision, recall = _scores(with_fuzzy, seed.truth)
    assert precision >= 0.98, precision
    assert recall > recall_exact
    found_typos = len(with_fuzzy & seed.truth_fuzzy) / len(seed.truth_fuzzy)
    assert found_typos >= 0.9, found_typos
