"""The matching rules of DESIGN.md section 4 as pure functions on one pair of rows.

The engine runs these rules set-wise in SQL (and the fuzzy pass in Python); `explain` and the
tests run them pair by pair, so this module is the one readable statement of what matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rapidfuzz import fuzz

from schema.records import POPULATION_RANK, Population
from sync.matching.keys import blocking_key, sorted_tokens


class Method(StrEnum):
    PIN = "pin"
    DUNS = "duns"
    DOMAIN = "domain"
    NAME = "name"
    FUZZY = "fuzzy"


# Strongest first. Among several rows of one partner, the overlap keeps the strongest population
# and, for equal populations, the most certain method.
METHOD_RANK: dict[Method, int] = {
    Method.PIN: 0, Method.DUNS: 1, Method.DOMAIN: 2, Method.NAME: 3, Method.FUZZY: 4
}
METHOD_BY_RANK: dict[int, Method] = {rank: method for method, rank in METHOD_RANK.items()}
POPULATION_BY_RANK: dict[int, Population] = {rank: pop for pop, rank in POPULATION_RANK.items()}
WEAKEST_POPULATION_RANK = max(POPULATION_RANK.values())


_RANK_BY_NAME: dict[str, int] = {p.value: r for p, r in POPULATION_RANK.items()}


def population_rank(value: str | None) -> int:
    """Rank of a population name; unknown values count as the weakest (prospect)."""
    return _RANK_BY_NAME.get(value or "", WEAKEST_POPULATION_RANK)


@dataclass(frozen=True, slots=True)
class Keys:
    """The match keys of one side of a pair (already normalized by `sync.matching.keys`)."""

    domain_key: str | None
    name_key: str | None
    duns: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    method: Method | None
    score: float | None
    reason: str

    @property
    def matched(self) -> bool:
        return self.method is not None


def duns_compatible(ours: str | None, theirs: str | None) -> bool:
    """Different DUNS numbers on both sides never match, whatever else agrees."""
    return ours is None or theirs is None or ours == theirs


def name_score(ours: str, theirs: str) -> float:
    """rapidfuzz token_sort_ratio of two name keys (0-100)."""
    return float(fuzz.ratio(sorted_tokens(ours), sorted_tokens(theirs)))


def judge(ours: Keys, theirs: Keys, *, fuzzy: bool = True, threshold: int = 92) -> Verdict:
    """Whether one of our accounts matches one partner account, by which method and why not."""
    if not duns_compatible(ours.duns, theirs.duns):
        return Verdict(None, None, f"DUNS differ (ours {ours.duns}, theirs {theirs.duns})")
    if ours.duns is not None and ours.duns == theirs.duns:
        return Verdict(Method.DUNS, None, f"same DUNS {ours.duns}")
    if ours.domain_key is not None and ours.domain_key == theirs.domain_key:
        return Verdict(Method.DOMAIN, None, f"same domain {ours.domain_key}")
    if ours.domain_key is not None and theirs.domain_key is not None:
        return Verdict(
            None, None,
            f"domains differ (ours {ours.domain_key}, theirs {theirs.domain_key}); names are "
            "only compared when one side has no usable domain",
        )
    if ours.name_key is None or theirs.name_key is None:
        side = "our account" if ours.name_key is None else "the partner account"
        return Verdict(None, None, f"{side} has neither a usable domain nor a name")
    if ours.name_key == theirs.name_key:
        return Verdict(Method.NAME, None, f"same normalized name {ours.name_key!r}")
    if not fuzzy:
        return Verdict(None, None, f"names differ ({ours.name_key!r}, {theirs.name_key!r}) "
                                   "and fuzzy matching is off")
    if blocking_key(ours.name_key) != blocking_key(theirs.name_key):
        return Verdict(None, None, f"names differ ({ours.name_key!r}, {theirs.name_key!r}) "
                                   "and start differently, so they are never compared")
    raw = name_score(ours.name_key, theirs.name_key)
    score = round(raw, 2)  # shown rounded, compared raw (as the engine's score_cutoff does)
    if raw >= threshold:
        return Verdict(Method.FUZZY, score, f"similar names {ours.name_key!r} ~ "
                                            f"{theirs.name_key!r} (score {score:g})")
    return Verdict(None, score, f"names too different ({ours.name_key!r} ~ {theirs.name_key!r}: "
                                f"score {score:g} < {threshold})")


def strongest(candidates: list[tuple[int, int, float | None, int | None]]
              ) -> tuple[int, int, float | None, int | None]:
    """The (population rank, method rank, score, partner account id) an overlap keeps.

    Same order as the engine's SQL window: population, then method, then higher score, then
    the lowest partner account id (deterministic).
    """
    return min(candidates, key=lambda c: (c[0], c[1], -(c[2] or 0.0), c[3] or 0))
