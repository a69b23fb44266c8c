"""Progress of a real backfill against the sandbox CRMs (issue 17.7): on a terminal, a bar per
stream and stage with the CRM's own totals; in a pipe, one plain line per stage; counting
the totals costs API calls only when a terminal shows them."""

from __future__ import annotations

import io
import re
from pathlib import Path

from click.testing import CliRunner
from e2e_support import Env
from rich.cells import cell_len
from rich.console import Console

from schema.records import Stream
from sync.cli import cli
from sync.logs import MASKER
from sync.progress_bars import Bars
from sync.tick import STAGES, TickOptions, TickReport, run_tick
from sync.wiring import build_connectors

STREAMS = ("salesforce/accounts", "salesforce/opportunities", "hubspot/accounts",
           "hubspot/opportunities")
PUSHED = ("salesforce/opportunities", "salesforce/accounts", "hubspot/opportunities",
          "hubspot/accounts")  # opportunities first, per CRM
# A row per stage in the tick's order; pull and push a row per stream instead.
ROWS = [row for stage in STAGES for row in (
    [f"pull {s}" for s in STREAMS] if stage.name == "pull" else
    [f"push {s}" for s in PUSHED] if stage.name == "push" else [stage.name])]


def _pulled(report: TickReport, label: str) -> int:
    source, stream = label.split("/")
    return report.counts.of(source, Stream(stream)).pulled


def test_a_backfill_on_a_terminal_shows_each_stream_against_the_crm_total(both: Env) -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    with Bars(console) as bars:
        report = run_tick(both.engine, both.config, both.connectors,
                          options=TickOptions(backfill=True, kind="backfill"), progress=bars)
    assert report.status == "succeeded", report.errors
    tasks = {t.description: t for t in bars.tasks}
    seed = both.world.seed
    in_crm = {"salesforce/accounts": len(seed.sf_accounts),
              "salesforce/opportunities": len(seed.sf_opportunities),
              "hubspot/accounts": len(seed.hs_companies),
              "hubspot/opportunities": len(seed.hs_deals)}
    for stream in STREAMS:
        pulled = tasks[f"pull {stream}"]
        # The bar's total is the CRM's own count, which the whole pull then reached.
        assert pulled.fields["known"] == in_crm[stream] == _pulled(report, stream)
        assert pulled.fields["count"] == _pulled(report, stream)
        pushed = tasks[f"push {stream}"]
        assert pushed.fields["known"] == pushed.fields["count"] > 0  # every queued record
    assert [t.description for t in bars.tasks if t.visible] == ROWS
    screen = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    screen.print(bars)  # the last frame, as an 80-column terminal shows it
    lines = screen.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == len(ROWS) and all(cell_len(line) <= 80 for line in lines), lines
    sf_accounts = next(line for line in lines if line.startswith("pull salesforce/accounts"))
    assert f"{_pulled(report, 'salesforce/accounts'):,}" in sf_accounts


def test_a_backfill_in_a_pipe_prints_one_plain_line_per_stage(both: Env, tmp_path: Path
                                                              ) -> None:
    config = tmp_path / "ecosync.toml"
    config.write_text(both.world.config_toml(
        both.engine.url.render_as_string(hide_password=False)))
    result = CliRunner().invoke(cli, ["--config", str(config), "--log-format", "json",
                                      "backfill"], env=both.world.env(),
                                catch_exceptions=False)
    MASKER.add(both.world.env().values())
    assert result.exit_code == 0, result.output
    plain = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    pulled = {m.group(1): int(m.group(2).replace(",", "")) for line in plain
              if (m := re.match(r"pull (\S+): ([\d,]+) records in [\d.]+ s", line))}
    assert set(pulled) == set(STREAMS)
    assert sum(pulled.values()) == int(re.search(r"pulled ([\d,]+)", result.stdout)
                                       .group(1).replace(",", ""))  # type: ignore[union-attr]
    assert [line.split(":")[0] for line in plain] == ROWS
    assert "━" not in result.output and "\x1b[" not in result.output


def test_totals_are_counted_only_when_a_terminal_shows_them(both: Env) -> None:
    def backfill(progress: Bars | None = None) -> dict[str, int]:
        """As one `ecosync backfill` process: connectors of its own (their per-process reads)."""
        options, connectors = TickOptions(backfill=True, kind="backfill"), build_connectors(
            both.config)
        if progress is None:
            report = run_tick(both.engine, both.config, connectors, options=options)
            return {source: use.calls for source, use in report.api.items()}
        with progress:
            report = run_tick(both.engine, both.config, connectors, options=options,
                              progress=progress)
            return {source: use.calls for source, use in report.api.items()}

    backfill()  # the first one writes; the next two find every field as it should be
    silent = backfill()
    shown = backfill(Bars(Console(file=io.StringIO(), force_terminal=True, width=80)))
    # One count call per stream and CRM (two streams each), nothing else changes.
    assert shown["salesforce"] == silent["salesforce"] + 2
    assert shown["hubspot"] == silent["hubspot"] + 2
