"""`ecosync demo` and `ecosync sandbox serve`: the product on local CRM emulators."""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
from rich.console import Console

from sync import terminal
from sync.errors import UserError

if TYPE_CHECKING:
    from sandbox.world import World


_today_opt = click.option(
    "--today", type=click.DateTime(["%Y-%m-%d"]), default=None,
    help="Seed dates relative to this day instead of today (records are created in the four "
         "years before it, open deals close after it).")


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Keep the demo's warehouse and files here (default: a temp dir).")
@click.option("--accounts", default=300, show_default=True)
@click.option("--opportunities", default=600, show_default=True)
@click.option("--partners", default=3, show_default=True)
@click.option("--seed", default=7, show_default=True)
@_today_opt
def demo_command(directory: Path | None, accounts: int, opportunities: int, partners: int,
                 seed: int, today: datetime | None) -> None:
    """The whole loop on SQLite and sandbox CRMs; needs no configuration and no network."""
    from sync.demo import run_demo
    from sync.logs import configure_logging

    # The demo prints its own story; log lines would drown it. Warnings still show.
    configure_logging("console", "warning")
    run_demo(directory, accounts=accounts, opportunities=opportunities, partners=partners,
             seed=seed, today=today.date() if today else None)


@click.group("sandbox")
def sandbox_group() -> None:
    """Local emulators of the Salesforce and HubSpot APIs."""


@sandbox_group.command("serve")
@click.option("--seed", default=0, show_default=True)
@click.option("--accounts", default=1000, show_default=True)
@click.option("--opportunities", default=2000, show_default=True)
@click.option("--partners", default=3, show_default=True)
@click.option("--latency-ms", default=0, show_default=True, help="Added to every request.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("ecosync-sandbox"), show_default=True)
@_today_opt
def serve_command(seed: int, accounts: int, opportunities: int, partners: int,
                  latency_ms: int, directory: Path, today: datetime | None) -> None:
    """Serve both emulators with seeded data until Ctrl-C, with a ready-made ecosync config
    in --dir. A restart with the same --dir keeps the URLs and tokens."""
    from sandbox.world import STATE_FILE, SandboxState, running_world

    base = directory.resolve()
    base.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    state = SandboxState.load(base)
    try:
        world_cm = running_world(base, seed=seed, accounts=accounts,
                                 opportunities=opportunities, partners=partners,
                                 latency_s=latency_ms / 1000, state=state,
                                 today=today.date() if today else None)
        world = world_cm.__enter__()
    except OSError as exc:
        raise UserError(
            f"cannot listen on the sandbox's ports ({state.salesforce_port}, "
            f"{state.hubspot_port}, kept in {base / STATE_FILE}): {exc.strerror or exc}; stop "
            f"the sandbox already serving from {base}, or delete {STATE_FILE} to pick new "
            "ports (and tokens)") from None
    try:
        SandboxState.of(world).save(base)
        files = _write_config(base, world)
        _print_connection(terminal.console(), base, world, files)
        stop.wait()
    finally:
        world_cm.__exit__(None, None, None)
    click.echo("stopped")


def _write_config(base: Path, world: World) -> tuple[Path, Path]:
    """The ready-made config (secrets by ${NAME}) and the env file that sets them."""
    config_path = base / "ecosync.toml"
    config_path.write_text(world.config_toml(f"sqlite:///{base / 'ecosync.db'}"),
                           encoding="utf-8")
    env_path = base / "sandbox.env"
    env_path.touch(mode=0o600, exist_ok=True)
    env_path.write_text("".join(f"export {k}={v}\n" for k, v in world.env().items()),
                        encoding="utf-8")
    return config_path, env_path


def _print_connection(out: Console, base: Path, world: World,
                      files: tuple[Path, Path]) -> None:
    sf, hs = world.salesforce, world.hubspot
    assert sf is not None
    assert hs is not None
    config_path, env_path = files
    v = terminal.value
    out.print("[bold]Salesforce sandbox[/bold]")
    out.print(terminal.line("  instance URL   ", v(sf.url)))
    out.print(terminal.line("  client id      ", v(sf.client_id)))
    out.print(terminal.line("  client secret  ", v(sf.client_secret)))
    out.print(terminal.line("  username       ", v(f"{sf.username} / password {sf.password} "
                                                   f"/ security token {sf.security_token}")))
    out.print(terminal.line("  CA file        ", v(sf.ca_file)))
    out.print("[bold]HubSpot sandbox[/bold]")
    out.print(terminal.line("  base URL       ", v(hs.url)))
    out.print(terminal.line("  access token   ", v(hs.access_token)))
    out.print(terminal.line("  CA file        ", v(hs.ca_file)))
    out.print("[bold]Partner CSV files[/bold]")
    for pid, path in world.partner_files.items():
        out.print(terminal.line("  ", v(f"{pid:<28} {path}")))
    out.print(terminal.line("[bold]ready-made ecosync config[/bold] ", v(config_path),
                            " (secrets from the environment: ", v(env_path), ")"))
    out.print("in another shell:")
    # In the order they work on a new warehouse: backfill needs the schema and the fields.
    for command in (f"cd {base}", "source sandbox.env", "ecosync db upgrade",
                    "ecosync fields ensure", "ecosync doctor", "ecosync backfill",
                    "ecosync report accounts", "ecosync sync --once"):
        out.print(terminal.line("  ", v(command)))
    out.print(terminal.line("URLs and tokens stay the same when you restart with --dir ",
                            v(base), " (kept in ", v(base / "sandbox-state.json"), ")"))
    out.print("serving; Ctrl-C to stop")


ALL = [demo_command, sandbox_group]
