"""Partner CSV import: rows per second and peak memory, streamed (issue 15.9).

Writes a partner file of N rows, then runs, each in a fresh child process so that its peak
RSS is its own:
- floor (memory): the child imports ecosync and opens the warehouse, and imports nothing;
- floors (speed): the child only reads the file with `csv.reader`; then it also validates
  every row and computes its match keys (what any import must do), writing nothing;
- import: `ecosync partners import` of the file into an empty partner;
- re-import: the same list with a tenth of its rows changed and a tenth replaced.
Prints rows/s with the ratio to the read floor, and peak RSS against the 300 MB target and
the memory floor (the same run, the same machine: ratios travel, seconds don't).

    python bench/partners.py [--rows 1000000] [--postgres URL] [--keep DIR] [--no-reimport]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RSS_TARGET_MB = 300
POPULATIONS = ("customer", "open_opportunity", "prospect")

CHILD = r"""
import resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from schema.db import make_engine, transaction
from sync.partners.csv_import import import_partner_csv
from sync.partners.registry import add_partner
engine = make_engine({url!r})
mode, path = {mode!r}, Path({path!r})
start = time.perf_counter()
if mode == "read":
    import csv
    with path.open(newline="", encoding="utf-8") as fh:
        n = sum(1 for _ in csv.reader(fh)) - 1
elif mode == "validate":
    from sync.partners.csv_read import ParsedRow, iter_partner_csv
    n = sum(1 for r in iter_partner_csv(path) if isinstance(r, ParsedRow))
elif mode == "import":
    with transaction(engine) as session:
        result = import_partner_csv(session, "p-bench", path)
    n = result.rows
    assert result.skipped_rows == 0, result.summary()
else:
    n = 0
print(n, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_file(path: Path, rows: int, *, variant: int = 0) -> None:
    """Rows like a partner's export: id, name, domain or website, population, owner.
    `variant` 1 changes every tenth row's population and replaces every tenth+5 row."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", "name", "website", "population", "owner_name",
                      "owner_email", "duns"])
        for i in range(rows):
            ident = i
            pop = POPULATIONS[i % 3]
            if variant and i % 10 == 0:
                pop = POPULATIONS[(i + 1) % 3]
            if variant and i % 10 == 5:
                ident = rows + i  # a row left the list, another came in
            out.writerow([f"PB-{ident}", f"Bench Company {ident} Inc",
                          f"https://www.bench{ident}.example.com/about", pop,
                          f"Owner {ident % 997}", f"owner{ident % 997}@partner.example",
                          str(100_000_000 + ident * 7 % 900_000_000) if ident % 4 == 0 else ""])


def child(url: str, mode: str, path: Path) -> tuple[int, float, float]:
    """(rows, seconds, peak RSS MB) of one fresh child process."""
    code = CHILD.format(root=str(ROOT), url=url, mode=mode, path=str(path))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    rows, seconds, rss_kb = out.stdout.split()  # ru_maxrss is in kB on Linux
    return int(rows), float(seconds), int(rss_kb) / 1024


def own_schema(url: str) -> str:
    """A PostgreSQL URL whose tables live in a schema of this run (dropped first)."""
    from sqlalchemy import text

    from schema.db import make_engine

    schema = f"bench_partners_{os.getpid()}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def drop_schema(url: str) -> None:
    from sqlalchemy import text

    from schema.db import make_engine

    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "bench_partners_{os.getpid()}" CASCADE'))
    admin.dispose()


def prepare(url: str) -> None:
    from schema.db import make_engine, transaction
    from schema.models import Base
    from sync.partners.registry import add_partner

    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with transaction(engine) as session:
        add_partner(session, "p-bench", "Bench Partner")
    engine.dispose()


def run(url: str, label: str, first: Path, second: Path | None, rows: int) -> bool:
    prepare(url)
    _, _, floor_rss = child(url, "none", first)
    _, read_s, _ = child(url, "read", first)
    _, valid_s, _ = child(url, "validate", first)
    n1, import_s, import_rss = child(url, "import", first)
    n2, reimport_s, reimport_rss = child(url, "import", second) if second else (rows, 0.0, 0.0)
    assert n1 == n2 == rows, (n1, n2, rows)
    peak = max(import_rss, reimport_rss)
    ok = peak < RSS_TARGET_MB
    print(f"\n{label}: {rows:,} rows")
    print(f"  floor: csv.reader only:       {rows / read_s:>10,.0f} rows/s")
    print(f"  floor: validate + match keys: {rows / valid_s:>10,.0f} rows/s")
    print(f"  import (empty partner):       {rows / import_s:>10,.0f} rows/s "
          f"({import_s / valid_s:.2f}x the validation floor), peak RSS {import_rss:,.0f} MB")
    if second:
        print(f"  re-import (20% different):    {rows / reimport_s:>10,.0f} rows/s "
              f"({reimport_s / valid_s:.2f}x the validation floor), peak RSS "
              f"{reimport_rss:,.0f} MB")
    print(f"  peak RSS {peak:,.0f} MB: {'met' if ok else 'NOT met'} (target < "
          f"{RSS_TARGET_MB} MB); floor (ecosync loaded, nothing imported) {floor_rss:,.0f} MB,"
          f" so the import itself adds {peak - floor_rss:,.0f} MB")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("ECOSYNC_TEST_DATABASE_URL"),
                        help="also measure on this PostgreSQL URL (in a schema of its own, "
                             "dropped afterwards)")
    parser.add_argument("--keep", type=Path, help="write the files and warehouse here")
    parser.add_argument("--no-reimport", action="store_true",
                        help="measure the first import only (halves a 10M-row run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-partners-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        first, second = folder / "partner-v1.csv", folder / "partner-v2.csv"
        start = time.perf_counter()
        write_file(first, args.rows)
        if not args.no_reimport:
            write_file(second, args.rows, variant=1)
        print(f"wrote the files of {args.rows:,} rows ({first.stat().st_size / 1e6:,.0f} MB "
              f"each) in {time.perf_counter() - start:,.0f} s")
        (folder / "bench.db").unlink(missing_ok=True)
        again = None if args.no_reimport else second
        results = [run(f"sqlite:///{folder / 'bench.db'}", "SQLite", first, again,
                       args.rows)]
        if args.postgres:
            try:
                results.append(run(own_schema(args.postgres), "PostgreSQL", first, again,
                                   args.rows))
            finally:
                drop_schema(args.postgres)
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
