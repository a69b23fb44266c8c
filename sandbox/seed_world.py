"""The hidden "world" behind the seed: companies, their domains, partner rows and ground truth.

Each company has a unique base name (so a known normalized name key) and a unique canonical
registrable domain. Every record the seed emits is a *surface form* of one company; the ground
truth is computed from the companies, never by parsing the surface forms, so it does not depend
on the matching code it is meant to check.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from sandbox import seed_names as words
from schema.records import POPULATION_RANK, Population

FUZZY_THRESHOLD = 92  # DESIGN.md section 4 default matching.name_threshold
POPULATION_FORMS: dict[Population, tuple[str, ...]] = {
    Population.CUSTOMER: ("customer", "Customer", "CUSTOMER"),
    Population.OPEN_OPPORTUNITY: ("open_opportunity", "Open Opportunity", "opportunity"),
    Population.PROSPECT: ("prospect", "Prospect", "PROSPECT"),
}
POPULATION_WEIGHTS = ((Population.CUSTOMER, 0.35), (Population.OPEN_OPPORTUNITY, 0.2),
                      (Population.PROSPECT, 0.45))


@dataclass(slots=True)
class Company:
    name: str  # base display name, no legal suffix
    key: str  # its normalized name
    domain: str  # canonical registrable domain (may be Unicode or on a private suffix)
    label: str


@dataclass(slots=True)
class Row:
    """One partner CSV row, with the facts the ground truth needs."""

    company: Company
    population: Population
    name: str | None
    surface: str | None  # what is written in the domain/website column
    usable: bool  # whether `surface` yields the company's registrable domain
    name_key: str | None
    fuzzy_of: Company | None = None  # set when the name is a typo of this company's name


DECOY_ATTEMPTS = 40


@dataclass(slots=True)
class World:
    rng: random.Random
    # Names in use, as sorted tokens: "Smith & Jones" and "Jones & Smith" score 100 under
    # token_sort_ratio, so two companies may not share one (fuzzy matching would join them).
    keys: set[str] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)
    # Companies with an account lacking a usable domain: their names take part in name and
    # fuzzy matching, so no near-identical decoy may be made of them.
    name_matched: set[int] = field(default_factory=set)

    def claim(self, key: str) -> bool:
        """Reserve a name key unless it (or a reordering of it) is taken."""
        token_key = " ".join(sorted(key.split()))
        if token_key in self.keys:
            return False
        self.keys.add(token_key)
        return True

    def company(self) -> Company:
        rng = self.rng
        while True:
            name = words.base_name(rng)
            key = words.name_key(name)
            if self.claim(key):
                break
        label = words.domain_label(rng, name, allow_idn=rng.random() < 0.5)
        return Company(name, key, self.new_domain(label, name), label)

    def new_domain(self, label: str, name: str, avoid_tld: str | None = None) -> str:
        rng = self.rng
        for attempt in range(50):
            roll = rng.random()
            if not label.isascii():
                tld = rng.choice(words.IDN_TLDS)
            elif roll < 0.04:
                # Platform sites get short names from a small pool, so one name recurs across
                # platforms: atlas.github.io and atlas.wixsite.com are two different companies.
                label = rng.choice(words.PREFIXES).lower() + rng.choice(("", "", "hq", "app"))
                tld = rng.choice(words.PLATFORMS)
            else:
                tld = rng.choices([t for t, _ in words.TLDS], [w for _, w in words.TLDS])[0]
            if tld == avoid_tld:
                continue
            candidate = f"{label}{attempt if attempt > 2 else ''}.{tld}"
            if candidate not in self.domains:
                self.domains.add(candidate)
                return candidate
        raise RuntimeError(f"could not find a free domain for {name!r}")

    def decoy(self, of: Company) -> Company | None:
        """A different company with a similar name and a similar but different domain, or
        None when every candidate name is taken or too close to a name-matched company."""
        rng = self.rng
        # A near-identical name ("Acmes") tests that fuzzy matching stays off when both
        # sides have a domain; it is only made where no account of `of` lacks a domain.
        near_ok = id(of) not in self.name_matched
        # Bounded: a long name plus one word can stay above the fuzzy threshold for every
        # extra, and a company may already have all its decoys; looping forever hung seeds.
        for _ in range(DECOY_ATTEMPTS):
            extra = rng.choice(("Labs", "Group", "Digital", "Holdings", "Partners", "Global"))
            name = f"{of.name}s" if near_ok and rng.random() < 0.3 else f"{of.name} {extra}"
            key = words.name_key(name)
            if not near_ok and fuzz.token_sort_ratio(key, of.key) >= FUZZY_THRESHOLD:
                continue
            if self.claim(key):
                break
        else:
            return None
        tld = of.domain.split(".", 1)[1]
        return Company(name, key, self.new_domain(of.label, name, avoid_tld=tld), of.label)

    def typo(self, company: Company) -> str | None:
        """A misspelled name close enough for fuzzy matching, or None if none is found.

        The typo goes in a word after the first, so a blocking key on the leading word or
        letters still groups it with the original.
        """
        parts = company.name.split(" ")
        if len(parts) < 2:
            return None
        head, tail = parts[0], " ".join(parts[1:])
        for _ in range(4):
            name = f"{head} {words.misspell(self.rng, tail)}"
            key = words.name_key(name)
            if fuzz.token_sort_ratio(key, company.key) >= FUZZY_THRESHOLD and self.claim(key):
                return name
        return None

    def population(self) -> Population:
        return self.rng.choices([p for p, _ in POPULATION_WEIGHTS],
                                [w for _, w in POPULATION_WEIGHTS])[0]

    def surface(self, company: Company, usable: bool) -> str | None:
        if usable:
            return words.website_form(self.rng, company.domain)
        return words.unusable_website(self.rng, company.label)

    def partner_rows(self, ours: Sequence[Company], pool: Sequence[Company],
                     count: int) -> list[Row]:
        """One partner's list: overlaps in several surface forms, decoys, duplicates, others."""
        rng = self.rng
        n_overlap = min(len(ours), round(count * 0.45))
        n_decoy = min(len(ours), round(count * 0.05))
        n_dup = min(n_overlap, round(count * 0.03))
        n_other = min(len(pool), max(0, count - n_overlap - n_decoy - n_dup))
        rows: list[Row] = []
        for company in rng.sample(list(ours), n_overlap):
            rows.append(self.overlap_row(company))
        for company in rng.sample(list(ours), n_decoy):
            decoy = self.decoy(company)
            if decoy is not None:
                rows.append(self.plain_row(decoy, usable=True))
        for original in rng.sample(rows[:n_overlap], n_dup):
            others = [p for p in Population if p != original.population]
            row = self.overlap_row(original.company)
            row.population = rng.choice(others)
            rows.append(row)
        for company in rng.sample(list(pool), n_other):
            rows.append(self.plain_row(company, usable=rng.random() < 0.85))
        rng.shuffle(rows)
        return rows

    def plain_row(self, company: Company, usable: bool) -> Row:
        rng = self.rng
        name: str | None = words.display_variant(rng, company.name)
        if usable and rng.random() < 0.03:
            name = None  # domain-only rows are valid: either a name or a domain will do
        return Row(company, self.population(), name, self.surface(company, usable), usable,
                   company.key if name else None)

    def overlap_row(self, company: Company) -> Row:
        roll = self.rng.random()
        if roll < 0.74:
            return self.plain_row(company, usable=True)
        if roll < 0.93:
            return self.plain_row(company, usable=False)
        typo = self.typo(company)
        if typo is None:
            return self.plain_row(company, usable=False)
        name = words.display_variant(self.rng, typo)
        return Row(company, self.population(), name, self.surface(company, False), False,
                   words.name_key(typo), fuzzy_of=company)


TruthKey = tuple[str, str, str]


@dataclass(slots=True)
class AccountFacts:
    """What the rules need to know about one of our accounts."""

    source: str
    external_id: str
    company: Company
    usable: bool


def strongest(populations: Sequence[Population]) -> Population:
    return min(populations, key=POPULATION_RANK.__getitem__)


def ground_truth(
    accounts: Sequence[AccountFacts], partner_rows: dict[str, list[Row]]
) -> tuple[dict[TruthKey, Population], set[TruthKey]]:
    """Overlaps by DESIGN.md section 4: domain when both sides have one, else exact name;
    then the intended typo rows as fuzzy matches (returned separately)."""
    population: dict[TruthKey, Population] = {}
    fuzzy: set[TruthKey] = set()
    by_company: dict[int, list[AccountFacts]] = {}
    for acc in accounts:
        by_company.setdefault(id(acc.company), []).append(acc)
    for partner_id, rows in partner_rows.items():
        by_domain: dict[str, list[Population]] = {}
        by_name_nodomain: dict[str, list[Population]] = {}
        by_name: dict[str, list[Population]] = {}
        for row in rows:
            if row.usable:
                by_domain.setdefault(row.company.domain, []).append(row.population)
            if row.name_key is not None:
                by_name.setdefault(row.name_key, []).append(row.population)
                if not row.usable:
                    by_name_nodomain.setdefault(row.name_key, []).append(row.population)
        for acc in accounts:
            if acc.usable:
                found = (by_domain.get(acc.company.domain, [])
                         + by_name_nodomain.get(acc.company.key, []))
            else:
                found = by_name.get(acc.company.key, [])
            if found:
                population[(acc.source, acc.external_id, partner_id)] = strongest(found)
        fuzzy_found: dict[TruthKey, list[Population]] = {}
        for row in rows:
            if row.fuzzy_of is None:
                continue
            for acc in by_company.get(id(row.fuzzy_of), []):
                key = (acc.source, acc.external_id, partner_id)
                if key not in population:
                    fuzzy_found.setdefault(key, []).append(row.population)
        for key, found in fuzzy_found.items():
            population[key] = strongest(found)
            fuzzy.add(key)
    return population, fuzzy
