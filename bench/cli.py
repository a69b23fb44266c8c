"""Start-up of the `ecosync` command (issue 17.12), as ratios to floors measured in the same run.

    python bench/cli.py                    # makes a demo warehouse in a temp folder first
    python bench/cli.py --dir DEMO_DIR     # an existing `ecosync demo --dir` folder
    python bench/cli.py --runs 9

Lines printed (medians of --runs fresh processes, all kinds interleaved so that load on a
shared machine falls on each alike):

- `ecosync --help` against `python -c "import click"` (target: within 3x);
- `ecosync report overlaps` on the demo warehouse against its own SQL run bare: a fresh
  Python process that executes the very statements the report executed (captured from a run
  of it) through the same driver (sqlite3) and fetches every row (target: within 2x). The
  command's cost above that floor is start-up (imports, config, logging) and rendering, so
  the run also prints the import time of the libraries it needs;
- the same report warm, in one process (its SQL, its rows, the sharing rules and rendering,
  no start-up), against the same statements on one connection.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ECOSYNC = [sys.executable, "-c", "from sync.cli import main; main()"]
REPORT = ["report", "overlaps"]

# Run inside a child in the demo folder: the report through the real CLI, every statement
# recorded with its parameters as the driver received them.
_CAPTURE = """
import json, sys
from sqlalchemy import Engine, event
seen = []
@event.listens_for(Engine, "before_cursor_execute")
def record(conn, cursor, statement, parameters, context, executemany):
    seen.append([statement, list(parameters or ())])
from sync.cli import cli
try:
    cli(sys.argv[2:], prog_name="ecosync")
except SystemExit as exc:
    assert not exc.code, exc.code
json.dump(seen, open(sys.argv[1], "w"))
"""

# The floor: the same statements through the same driver in a fresh process.
_BARE = """
import json, sqlite3, sys
statements = json.load(open(sys.argv[1]))
con = sqlite3.connect(sys.argv[2])
for statement, parameters in statements:
    rows = con.execute(statement, parameters).fetchall()
    sys.stdout.write(f"{len(rows)}\\n")
con.rollback()
"""

# Warm, in one process: the report through the CLI (imports done), and the bare statements.
_WARM = """
import io, json, sqlite3, statistics, sys, time, contextlib
from sync.cli import cli
statements, db, runs = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
def report():
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            cli(["report", "overlaps"], prog_name="ecosync")
        except SystemExit as exc:
            assert not exc.code, exc.code
def bare():
    con = sqlite3.connect(db)
    for statement, parameters in statements:
        con.execute(statement, parameters).fetchall()
    con.rollback()
    con.close()
report(); bare()
times = {"report": [], "bare": []}
for _ in range(runs):
    for name, fn in (("report", report), ("bare", bare)):
        start = time.perf_counter(); fn(); times[name].append(time.perf_counter() - start)
print(json.dumps({k: statistics.median(v) for k, v in times.items()}))
"""

_IMPORTS = ("click", "rich.console", "structlog", "sqlalchemy", "sqlalchemy.orm",
            "schema.models")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("ECOSYNC_CONFIG", None)
    return env


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=_env(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _demo(into: Path) -> Path:
    print(f"making a demo warehouse in {into} (ecosync demo)...", flush=True)
    subprocess.run([*ECOSYNC, "demo", "--dir", str(into)], env=_env(), check=True,
                   stdout=subprocess.DEVNULL)
    return into


def _import_times(cwd: Path) -> dict[str, float]:
    """What each library costs to import in a fresh process (self and children, in ms)."""
    out = {}
    for module in _IMPORTS:
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                              cwd=cwd, env=_env(), capture_output=True, text=True, check=True)
        last = [line for line in done.stderr.splitlines() if line.rstrip().endswith(module)]
        out[module] = int(last[-1].split("|")[1]) / 1000 if last else 0.0
    return out


def _verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="an `ecosync demo --dir` folder (default: make one)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ecosync-bench-cli-") as tmp:
        folder = (args.dir or _demo(Path(tmp) / "demo")).resolve()
        db = folder / "ecosync.db"
        captured = Path(tmp) / "statements.json"
        subprocess.run([sys.executable, "-c", _CAPTURE, str(captured), *REPORT], cwd=folder,
                       env=_env(), check=True, stdout=subprocess.DEVNULL)
        statements = json.loads(captured.read_text())
        kinds = {
            "import click": [sys.executable, "-c", "import click"],
            "ecosync --help": [*ECOSYNC, "--help"],
            "ecosync report overlaps": [*ECOSYNC, *REPORT],
            "its SQL bare": [sys.executable, "-c", _BARE, str(captured), str(db)],
        }
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.runs):
            for name, cmd in kinds.items():
                times[name].append(_timed(cmd, folder))
        med = {k: statistics.median(v) for k, v in times.items()}
        warm = json.loads(subprocess.run(
            [sys.executable, "-c", _WARM, str(captured), str(db), str(args.runs)],
            cwd=folder, env=_env(), capture_output=True, text=True, check=True).stdout)
        imports = _import_times(folder)

    print(f"medians of {args.runs} fresh processes each, interleaved; warehouse {db}")
    for name, value in med.items():
        print(f"  {name:<26} {value * 1000:8.1f} ms")
    help_ratio = med["ecosync --help"] / med["import click"]
    print(f"ecosync --help / import click: {help_ratio:.2f}  (target <= 3: "
          f"{_verdict(help_ratio, 3)})")
    report_ratio = med["ecosync report overlaps"] / med["its SQL bare"]
    print(f"report overlaps / its SQL bare ({len(statements)} statements, fresh processes): "
          f"{report_ratio:.2f}  (target <= 2: {_verdict(report_ratio, 2)})")
    warm_ratio = warm["report"] / warm["bare"]
    print(f"report overlaps warm / its SQL bare warm: {warm['report'] * 1000:.1f} ms / "
          f"{warm['bare'] * 1000:.1f} ms = {warm_ratio:.2f}")
    print("import cost in a fresh process (ms): "
          + ", ".join(f"{k} {v:.0f}" for k, v in imports.items()))


if __name__ == "__main__":
    main()
