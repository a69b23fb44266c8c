"""Click groups whose subcommands load on first use.

`ecosync --help` and a read-only command must not pay for what other commands import (the
warehouse's migrations, the web server, private matching, the CRM client libraries), so a
group names its subcommands here with the module that defines each and its one-line summary,
and imports a module only when its command runs or its own help is asked for. The summary is
the command's docstring up to its first full stop, as click shortens it; a test checks that
every entry loads and that the listing is what click would print with everything loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class Lazy:
    """Where a subcommand lives ("package.module:attribute") and its one-line summary."""

    target: str
    summary: str

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


class LazyGroup(click.Group):
    """A click group with `lazy` subcommands besides the ones added the usual way."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, Lazy] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, with the summaries of subcommands not loaded yet taken from `lazy`."""
        names = [n for n in self.list_commands(ctx)
                 if n not in self.commands or not self.commands[n].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(n, self.commands[n].get_short_help_str(limit) if n in self.commands
                 else _short_help(self.lazy[n].summary, limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _short_help(summary: str, limit: int) -> str:
    """The summary shortened as click shortens a loaded command's help (click 8.5 deprecated
    its helper for this, so a throwaway command does it through the public API)."""
    return click.Command(None, help=summary).get_short_help_str(limit)
