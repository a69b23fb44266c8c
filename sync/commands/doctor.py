"""`ecosync doctor`: print the production-readiness checklist; exit 0 only when all pass."""

from __future__ import annotations

import json

import click

from sync import terminal
from sync.context import AppContext, pass_app
from sync.doctor import DoctorReport, run_doctor
from sync.logs import configure_logging

MARKS = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red"),
         "skip": ("skip", "bright_black")}


def render_table(report: DoctorReport) -> str:
    """Plain lines, not a rich table: a line and its fix stay whole at any terminal width,
    so they can be grepped and pasted into a ticket."""
    area_width = max((len(c.area) for c in report.checks), default=8)
    lines = []
    for check in report.checks:
        word, colour = MARKS[check.status]
        mark = click.style(f"[{word:^4}]", fg=colour, bold=check.status == "fail")
        # Details may quote CRM or partner-file values: control characters are escaped.
        detail, fix = terminal.plain(check.detail), terminal.plain(check.fix or "")
        lines.append(f"{mark} {check.area:<{area_width}}  {check.name}: {detail}")
        if fix and not check.passed:
            lines.append(f"{'':6} {'':<{area_width}}  fix: {fix}")
        elif fix:
            lines.append(f"{'':6} {'':<{area_width}}  note: {fix}")
    counts = report.counts()
    summary = (f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failed, "
               f"{counts['skip']} skipped")
    verdict = click.style("ready" if report.ok else "NOT ready", fg="green" if report.ok
                          else "red", bold=True)
    lines.append("")
    lines.append(f"{verdict}: {summary}")
    return "\n".join(lines)


@click.command("doctor")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="json: one object with ok, counts and checks.")
@pass_app
def doctor_command(app: AppContext, fmt: str) -> None:
    """Check what a production run needs: config, warehouse, CRM access and owned fields,
    API budget, partner files, sharing policies, the health port. Exit 0 only when all pass."""
    if app.config.logging.level == "info":
        # The checklist is the output: the connectors' info lines (each probe's pull) would
        # only interleave with it. Warnings still show; level = "debug" still shows all.
        configure_logging(app.log_format, "warning", secrets=app.config.secrets())
    report = run_doctor(app.config)
    if fmt == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(render_table(report))
    if not report.ok:
        click.get_current_context().exit(1)
