"""Private matching (`ecosync psi`) against the plain exchange of the same sets, same run.

Two SQLite warehouses of N accounts each (a tenth of the keys in common; all shared at
`names`, one population: the unit a run repeats per population shared) go through the three
steps, each in a fresh child process so that its time and peak RSS are its own:
- A `psi request`, B `psi respond`, A `psi finish` (landing the intersection);
- the plain exchange of the same set: B exports its accounts for A in the exchange format
  (`share export`, the same population at `names`), A imports the files (`partners import`);
- a floor: a child that loads ecosync and opens the warehouse, nothing more.
Prints seconds per side, keys per second, message bytes per element, peak RSS, and the
ratio of private matching to the plain exchange. First, what private matching gives up: on
the sandbox seed, the overlaps found by domain + DUNS against those of all methods.

    python bench/psi.py [--sizes 10000,100000] [--million] [--recall-only] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OVERLAP = 0.1
CHILD = r"""
import csv, json, resource, sys, time
from datetime import UTC, datetime
from pathlib import Path
sys.path.insert(0, {root!r})
from schema.db import make_engine, transaction
from sync.config import parse_config
step, url, a, b = {step!r}, {url!r}, {a!r}, {b!r}
config = parse_config(json.loads({config!r}))
engine = make_engine(url)
now = datetime.now(UTC)
start = time.perf_counter()
cpu0 = resource.getrusage(resource.RUSAGE_SELF)
n = 0
if step == "request":
    from sync.psi.requester import request
    with transaction(engine) as s:
        n = sum(request(s, config, "peer", Path(a), now=now).sizes.values())
elif step == "respond":
    from sync.psi.responder import respond
    with transaction(engine) as s:
        n = respond(s, config, Path(a), Path(b), now=now).their_size
elif step == "finish":
    from sync.psi.requester import finish
    with transaction(engine) as s:
        n = finish(s, config, Path(a), now=now).landed
elif step == "export":
    from sync.exchange.export import export_for_partner
    with transaction(engine) as s:
        n = export_for_partner(s, config, "peer", Path(a), by="bench", now=now).rows
elif step == "import":
    from sync.exchange.importer import import_partner_file
    from sync.partners.registry import add_partner
    with transaction(engine) as s:
        add_partner(s, "peer-file", "Peer by exchange file")
        n = import_partner_file(s, "peer-file", Path(a), now=now).result.rows
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM, not ru_maxrss: ru_maxrss survives exec, so it would report the parent's size.
with open("/proc/self/status") as fh:
    rss = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM")) / 1024
cpu = usage.ru_utime + usage.ru_stime - cpu0.ru_utime - cpu0.ru_stime
print(json.dumps({{"n": n, "seconds": seconds, "cpu": cpu,
                  "rss": rss}}))
"""


def child(step: str, url: str, config: dict[str, object], a: Path | None = None,
          b: Path | None = None) -> dict[str, float]:
    code = CHILD.format(root=str(ROOT), step=step, url=url, config=json.dumps(config),
                        a=str(a or ""), b=str(b or ""))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def config(org: str, peer: str, state: Path, n: int) -> dict[str, object]:
    return {"exchange": {"organisation": org},
            "psi": {"organisation": org, "state_dir": str(state), "min_set_size": 10,
                    "max_set_size": max(n, 10)},
            "partners": [{"id": "peer", "name": peer, "source": "psi",
                          "outbound": {"prospect": "names"}}]}


def fill(url: str, n: int, *, other: bool) -> None:
    """N accounts with registrable domains; `other` replaces all but the first tenth."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    import migrations
    from schema.db import make_engine
    from schema.models import Account

    engine = make_engine(url)
    migrations.upgrade(engine)
    now = datetime.now(UTC)
    common = int(n * OVERLAP)
    with engine.begin() as conn:
        for start in range(0, n, 50_000):
            rows = []
            for i in range(start, min(n, start + 50_000)):
                domain = f"bench{i}.com" if i < common or not other else f"other{i}.com"
                rows.append({"source": "salesforce", "external_id": f"A{i:09d}",
                             "name": f"Company {i}", "website": f"https://www.{domain}/",
                             "domain_key": domain, "modified_at": now, "ingested_at": now})
            conn.execute(insert(Account), rows)
    engine.dispose()


def frame_bytes(path: Path) -> dict[str, int]:
    from sync.psi.messages import Kind, read_message

    sizes: dict[str, int] = {}
    message = read_message(path, tuple(Kind))
    for _, part, payload in message.frames():
        sizes[part.name] = sizes.get(part.name, 0) + len(payload)
    return sizes


def run(n: int, folder: Path) -> float:
    a_url, b_url = f"sqlite:///{folder / f'a-{n}.db'}", f"sqlite:///{folder / f'b-{n}.db'}"
    for url in (a_url, b_url):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    start = time.perf_counter()
    fill(a_url, n, other=False)
    fill(b_url, n, other=True)
    print(f"\n{n:,} x {n:,} keys ({int(n * OVERLAP):,} in common); warehouses filled in "
          f"{time.perf_counter() - start:,.0f} s")
    a_cfg = config("A", "B", folder / f"state-a-{n}", n)
    b_cfg = config("B", "A", folder / f"state-b-{n}", n)
    req, resp = folder / f"req-{n}.psi", folder / f"resp-{n}.psi"
    plain_dir = folder / f"plain-{n}"
    floor = child("none", a_url, a_cfg)
    steps = {
        "request": ("A", child("request", a_url, a_cfg, req)),
        "respond": ("B", child("respond", b_url, b_cfg, req, resp)),
        "finish": ("A", child("finish", a_url, a_cfg, resp)),
        "export (plain)": ("B", child("export", b_url, b_cfg, plain_dir)),
    }
    manifest = next(plain_dir.glob("*.manifest.json"))
    steps["import (plain)"] = ("A", child("import", a_url, a_cfg, manifest))
    plain_bytes = sum(f.stat().st_size for f in plain_dir.iterdir())
    assert steps["export (plain)"][1]["n"] == steps["import (plain)"][1]["n"] == n, steps
    assert steps["finish"][1]["n"] == int(n * OVERLAP), steps["finish"]
    print(f"  {'step':<15} {'side':<4} {'wall s':>7} {'CPU s':>7} {'keys/CPU s':>10} "
          f"{'peak RSS MB':>12}")
    for name, (side, r) in steps.items():
        print(f"  {name:<15} {side:<4} {r['seconds']:>7.1f} {r['cpu']:>7.1f} "
              f"{n / max(r['cpu'], 1e-3):>10,.0f} {r['rss']:>12,.0f}")
    req_parts, resp_parts = frame_bytes(req), frame_bytes(resp)
    print(f"  message bytes per element: request {req.stat().st_size / n:.1f} "
          f"(elements {req_parts.get('REQUEST', 0) / n:.1f}); response "
          f"{resp.stat().st_size / n:.1f} (answer {resp_parts.get('ANSWER', 0) / n:.1f} per "
          f"requester key, setup {resp_parts.get('SETUP', 0) / n:.1f} per responder key); "
          f"plain exchange files {plain_bytes / n:.1f}")
    # CPU seconds: the machine may be shared, and wall time then measures the neighbours.
    psi_a = steps["request"][1]["cpu"] + steps["finish"][1]["cpu"]
    psi_b = steps["respond"][1]["cpu"]
    plain_a, plain_b = steps["import (plain)"][1]["cpu"], steps["export (plain)"][1]["cpu"]
    print(f"  CPU, side A: private {psi_a:,.1f} s vs plain import {plain_a:,.1f} s "
          f"({psi_a / plain_a:,.1f}x); side B: private {psi_b:,.1f} s vs plain export "
          f"{plain_b:,.1f} s ({psi_b / plain_b:,.1f}x); both sides: "
          f"{(psi_a + psi_b) / (plain_a + plain_b):,.1f}x")
    peak = max(r["rss"] for name, (_, r) in steps.items() if "plain" not in name)
    print(f"  peak RSS of private matching {peak:,.0f} MB (floor: ecosync loaded, warehouse "
          f"open {floor['rss']:,.0f} MB; plain import "
          f"{steps['import (plain)'][1]['rss']:,.0f} MB)")
    wall = sum(steps[s][1]["seconds"] for s in ("request", "respond", "finish"))
    ratio = (psi_a + psi_b) / (plain_a + plain_b)
    print(f"{n:,} x {n:,}: private matching {psi_a + psi_b:,.1f} s CPU ({wall:,.1f} s wall), "
          f"{ratio:,.1f}x the plain exchange of the same sets (CPU, both sides, same run); "
          f"peak RSS {peak:,.0f} MB (floor {floor['rss']:,.0f} MB); "
          f"{(req.stat().st_size + resp.stat().st_size) / n:.1f} message bytes per key vs "
          f"{plain_bytes / n:.1f} plain  (issue 20 sets no bound: reported)")
    if n >= 1_000_000:
        # The three steps run one after the other, each on one core: their CPU seconds are
        # what the run takes on this machine when no one else shares it.
        cpu = psi_a + psi_b
        print(f"{n:,} x {n:,} within 10 minutes here (CPU of the three steps, one after "
              f"another): {cpu / 60:.1f} min ({wall / 60:.1f} min wall on this machine as "
              f"shared during the run): {'met' if cpu <= 600 else 'NOT met'}")
    return psi_a + psi_b


def recall(seed: int, accounts: int, partners: int) -> None:
    """What private matching cannot find on the sandbox seed: the matcher's overlaps by
    method (fuzzy on), and the seed's ground truth found by domain + DUNS alone."""
    from collections import Counter
    from datetime import UTC, datetime

    from sqlalchemy import insert, select
    from sqlalchemy.orm import Session

    from sandbox.seed import generate
    from schema.db import make_engine
    from schema.models import Account, Base, Overlap, Partner, PartnerAccount
    from sync.config import MatchingConfig
    from sync.matching.engine import rematch
    from sync.matching.keys import normalize_name, registrable_domain

    now = datetime(2026, 1, 2, tzinfo=UTC)
    data = generate(seed=seed, accounts=accounts, opportunities=0, partners=partners)
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    ours = [("salesforce", a["Id"], a["Name"], a["Website"]) for a in data.sf_accounts]
    ours += [("hubspot", c["id"], c["properties"]["name"],
              c["properties"]["website"] or c["properties"]["domain"])
             for c in data.hs_companies]
    population = {"open opportunity": "open_opportunity", "opportunity": "open_opportunity"}
    with Session(engine) as s, s.begin():
        s.execute(insert(Account), [
            {"source": src, "external_id": ext, "name": name, "website": site,
             "domain_key": registrable_domain(site), "name_key": normalize_name(name),
             "modified_at": now, "ingested_at": now}
            for src, ext, name, site in ours])
        for p in data.partners:
            s.add(Partner(id=p.id, name=p.name, kind=p.kind, source_kind="csv",
                          share=dict(p.share), created_at=now, updated_at=now))
        s.flush()
        for pid, rows in data.partner_rows.items():
            s.execute(insert(PartnerAccount), [
                {"partner_id": pid, "row_key": f"{pid}-{n}", "name": r["name"] or None,
                 "domain_key": registrable_domain(r["domain"] or r["website"]),
                 "name_key": normalize_name(r["name"]),
                 "population": population.get(r["population"].strip().lower(),
                                              r["population"].strip().lower()),
                 "imported_at": now, "updated_at": now}
                for n, r in enumerate(rows)])
        rematch(s, MatchingConfig(fuzzy=True), now=now, full=True)
    with Session(engine) as s:
        found = s.execute(select(Account.source, Account.external_id, Overlap.partner_id,
                                 Overlap.method).join(Account, Account.id == Overlap.account_id)
                          .where(Overlap.ended_at.is_(None))).all()
    by_method = Counter(m for *_, m in found)
    private = {(a, b, c) for a, b, c, m in found if m in ("domain", "duns")}
    total = sum(by_method.values())
    truth = len(data.truth)
    print(f"\nrecall on the sandbox seed (seed {seed}, {accounts:,} accounts, {partners} "
          f"partners): overlaps by method {dict(sorted(by_method.items()))}")
    print(f"  private matching finds {len(private):,} of the matcher's {total:,} overlaps "
          f"({len(private) / total:.1%}); of the seed's {truth:,} true overlaps "
          f"{len(private & data.truth):,} ({len(private & data.truth) / truth:.1%}) against "
          f"{len({(a, b, c) for a, b, c, _ in found} & data.truth) / truth:.1%} for all "
          f"methods")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000",
                        help="comma-separated set sizes (each side)")
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 x "
                        "1,000,000 (about 10 minutes of CPU)")
    parser.add_argument("--keep", type=Path, help="keep warehouses and messages here")
    parser.add_argument("--recall-only", action="store_true",
                        help="only the recall figures on the sandbox seed")
    args = parser.parse_args()
    recall(seed=0, accounts=1000, partners=3)  # `ecosync sandbox serve`'s seed
    recall(seed=7, accounts=4000, partners=4)  # the matching-quality tests' seed
    if args.recall_only:
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.million:
        sizes.append(1_000_000)
    with tempfile.TemporaryDirectory(prefix="bench-psi-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for n in sizes:
            run(n, folder)


if __name__ == "__main__":
    main()
