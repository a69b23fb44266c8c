"""How fast the seed generator builds a world (issue 3: 200,000 records in under a minute).

    python bench/seed.py [--runs 3]

Prints the median time to generate 20,000 records (target < 5 s) and 200,000 records (target
< 60 s), each with its ratio to the target. The tests check what the generator produces
(tests/sandbox/seed); how fast it does so is measured here, on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

from sandbox.seed import generate

TODAY = date(2026, 3, 31)
# (accounts, opportunities, partner rows per partner, target seconds)
SIZES = ((6_000, 12_000, 500, 5.0), (60_000, 120_000, 5_000, 60.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for accounts, opportunities, partner_accounts, target_s in SIZES:
        samples = []
        records = 0
        for _ in range(args.runs):
            started = time.perf_counter()
            data = generate(seed=11, accounts=accounts, opportunities=opportunities, partners=4,
                            partner_accounts=partner_accounts, today=TODAY)
            samples.append(time.perf_counter() - started)
            records = data.record_count
        med = statistics.median(samples)
        verdict = "met" if med < target_s else "NOT MET"
        print(f"seed {records:,} records: median {med:.2f} s of {args.runs}, target "
              f"< {target_s:g} s, ratio {med / target_s:.2f} ({verdict})")


if __name__ == "__main__":
    main()
