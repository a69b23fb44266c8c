"""`ecosync demo`, the README's first command, runs the whole loop with no configuration."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from sync.demo import run_demo


def _written(counts: dict[str, int]) -> int:
    return sum(v for k, v in counts.items() if k.startswith("written."))


def test_demo_matches_writes_reacts_to_changes_then_rests(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(tmp_path, accounts=160, opportunities=320,
                      console=Console(file=out, width=120))
    backfill, after_changes, quiet = result.reports
    assert all(r.status == "succeeded" for r in result.reports)
    assert _written(backfill.counts) > 0
    assert len(result.changes) == 2  # an opportunity closed, a website changed
    assert _written(after_changes.counts) > 0
    assert after_changes.counts["stamped"] >= 1
    assert _written(quiet.counts) == 0
    text = out.getvalue()
    assert "what matched" in text and "Ecosystem Partners" in text
    assert (tmp_path / "ecosync.db").exists()
