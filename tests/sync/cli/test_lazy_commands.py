"""The click groups load their subcommands on first use (sync.commands.lazy), yet `--help`
lists every command with the summary click would print if all of them were loaded."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from sync.cli import cli
from sync.commands.lazy import LazyGroup


def _lazy_groups(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...],
                                                                             LazyGroup]]:
    """Every LazyGroup under `group` (loading all of them on the way)."""
    found = [(path, group)] if isinstance(group, LazyGroup) else []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if isinstance(sub, click.Group):
            found += _lazy_groups(sub, (*path, name))
    return found


def test_every_lazy_entry_loads_the_command_it_names_with_its_summary() -> None:
    groups = _lazy_groups(cli)
    assert {p for p, _ in groups} >= {(), ("report",)}
    for path, group in groups:
        for name, entry in group.lazy.items():
            command = entry.load()
            where = " ".join(("ecosync", *path, name))
            assert command.name == name, f"{where}: {entry.target} is named {command.name!r}"
            assert entry.summary == command.get_short_help_str(10**6), (
                f"{where}: the summary in the lazy table differs from the command's docstring;"
                f" copy its first sentence into {group.name or 'sync/cli.py'}'s table")


def _help(args: list[str], width: int) -> str:
    """`ecosync ARGS --help` in a fresh interpreter: nothing loaded before it."""
    code = ("import sys; from sync.cli import cli; "
            f"cli(sys.argv[1:], prog_name='ecosync', terminal_width={width})")
    done = subprocess.run([sys.executable, "-c", code, *args, "--help"], capture_output=True,
                          text=True, check=True, env={"COLUMNS": str(width), "PATH": "",
                                                      "PYTHONPATH": ":".join(sys.path)})
    return done.stdout


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("args", [[], ["report"]])
def test_help_lists_what_click_prints_with_every_command_loaded(args: list[str],
                                                                width: int) -> None:
    lazy = _help(args, width)
    _lazy_groups(cli)  # load everything in this process
    eager = CliRunner().invoke(cli, [*args, "--help"], prog_name="ecosync",
                               terminal_width=width, env={"ECOSYNC_CONFIG": None})
    assert eager.exit_code == 0, eager.output
    assert lazy == eager.output
    listed = lazy.split("Commands:")[1]
    group = cli if not args else cli.get_command(click.Context(cli), args[0])
    assert isinstance(group, click.Group)
    for name in group.list_commands(click.Context(group)):
        assert f"\n  {name} " in listed


def test_an_unknown_command_is_still_refused_by_name() -> None:
    result = CliRunner().invoke(cli, ["reprot"], prog_name="ecosync")
    assert result.exit_code == 2
    assert "No such command 'reprot'" in result.output
