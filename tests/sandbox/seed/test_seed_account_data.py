"""Seeded accounts carry a plausible billing country, drawn apart from the rest of the seed."""

from __future__ import annotations

from collections import Counter

from sandbox.seed import COUNTRIES, generate


def test_seeded_accounts_have_plausible_countries_and_the_same_seed_gives_the_same_ones() -> None:
    data = generate(seed=5, accounts=2000, opportunities=0, partners=0)
    sf = [a["BillingCountry"] for a in data.sf_accounts]
    hs = [c["properties"]["country"] for c in data.hs_companies]
    known = {c for c, _ in COUNTRIES}
    assert set(sf) <= known and set(hs) <= known
    counts = Counter(sf + hs)
    assert counts.most_common(1)[0][0] == "United States"
    assert 0 < counts[None] < len(sf + hs) * 0.15  # some left blank, as reps do
    assert len(counts) >= 10
    again = generate(seed=5, accounts=2000, opportunities=0, partners=0)
    assert [a["BillingCountry"] for a in again.sf_accounts] == sf
