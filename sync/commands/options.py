"""Options several commands share."""

from __future__ import annotations

import click

# Long commands (sync, backfill, partner import, share export, private matching).
progress_option = click.option(
    "--progress/--no-progress", default=True, show_default=True,
    help="Show each stage's progress on stderr: bars on a terminal, else one line per stage.")
